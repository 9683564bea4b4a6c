package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// expansions are the single-valued identifier sets a pattern is expanded with
// (connector.Expansions).
func expansions(p *pattern, all connector.Values) []connector.Identifiers {
	return connector.Expansions(connector.TemplateNames(p.source), all)
}

// keysOf returns the keys of m for one expansion: the keys a glob pattern matches now, or the
// one key an exact pattern names, whether it exists or not (find asks about all of those at
// once). ok is false when the pattern does not apply.
func (c *client) keysOf(ctx context.Context, op string, m *mapping, ids connector.Identifiers) ([]string, bool, error) {
	target, ok, err := m.pattern.expand(c.keyIdentifiers(ids))
	if err != nil {
		return nil, false, refused(op, m.pattern.source, err)
	}
	if !ok {
		return nil, false, nil
	}
	if m.pattern.glob {
		keys, err := c.scanMatch(ctx, target)
		if err != nil {
			return nil, false, fail(ctx, op, err, ids)
		}
		return keys, true, nil
	}
	return []string{target}, true, nil
}

// existing says which of keys exist, asking in pipelined batches.
func (c *client) existing(ctx context.Context, keys []string) (map[string]bool, error) {
	out := make(map[string]bool, len(keys))
	err := c.eachKey(ctx, keys, goredis.Pipeliner.Exists, func(k string, n int64) {
		if n > 0 {
			out[k] = true
		}
	})
	return out, err
}
