package redis

import (
	"context"
	"strings"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

var _ connector.Sweeper = (*client)(nil)

// Sweep walks, with SCAN, the keys of every mapped pattern (its placeholders as wildcards), reads
// each placeholder's value out of the key name, and reports a key whose values Match accepts.
// A pattern with adjacent placeholders cannot be read back (two values can form the same key)
// and is skipped; Check already warns about it.
func (c *client) Sweep(ctx context.Context, opts connector.SweepOptions, visit func(connector.SweepHit) error) (*connector.SweepStats, error) {
	const op = "sweep"
	if err := c.refuseCluster(ctx, op); err != nil {
		return nil, err
	}
	stats := &connector.SweepStats{}
	pacer := connector.NewPacer(opts.RowsPerSecond)
	for i := range c.mappings {
		m := &c.mappings[i]
		match, ok := m.pattern.sweepMatch()
		if !ok {
			continue
		}
		var visitErr error
		err := c.scan(ctx, match, 0, func(keys []string) {
			for _, key := range keys {
				if visitErr != nil {
					return
				}
				stats.Scanned++
				for name, value := range m.pattern.read(key) {
					kind := normalize.KindFor(name, "")
					if opts.Match == nil || !opts.Match(name, kind, value) {
						continue
					}
					visitErr = visit(connector.SweepHit{Location: m.pattern.source, Identifier: name, Kind: kind,
						Value: value, Retained: m.retained()})
					break
				}
			}
			if visitErr == nil {
				visitErr = pacer.Wait(ctx, len(keys))
			}
		})
		if visitErr != nil {
			return stats, visitErr
		}
		if err != nil {
			return stats, fail(ctx, op, err, connector.Identifiers{})
		}
	}
	return stats, nil
}

// sweepMatch is the SCAN pattern of every key the pattern can name: its literals escaped, each
// placeholder a wildcard. ok is false for adjacent placeholders.
func (p *pattern) sweepMatch() (string, bool) {
	var b strings.Builder
	for i, pt := range p.parts {
		if pt.Placeholder == "" {
			b.WriteString(escapeGlob(pt.Literal))
			continue
		}
		if i+1 < len(p.parts) && p.parts[i+1].Placeholder != "" {
			return "", false
		}
		b.WriteByte('*')
	}
	if p.glob {
		b.WriteByte('*')
	}
	return b.String(), true
}

// read takes the placeholders' values out of a key the pattern names: each value runs up to the
// first occurrence of the literal that follows it (or to the end of the key). nil when the key
// does not have the pattern's shape.
func (p *pattern) read(key string) map[string]string {
	out := map[string]string{}
	rest := key
	for i, pt := range p.parts {
		if pt.Placeholder == "" {
			var ok bool
			if rest, ok = strings.CutPrefix(rest, pt.Literal); !ok {
				return nil
			}
			continue
		}
		end := len(rest)
		if i+1 < len(p.parts) {
			next := p.parts[i+1].Literal
			j := strings.Index(rest, next)
			if j < 0 {
				return nil
			}
			end = j
		} else if p.glob {
			return nil // the CRD puts a separator literal before the glob
		}
		if end == 0 {
			return nil
		}
		out[pt.Placeholder] = rest[:end]
		rest = rest[end:]
	}
	if rest != "" && !p.glob {
		return nil
	}
	return out
}
