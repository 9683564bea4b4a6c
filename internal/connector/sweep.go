package connector

import (
	"context"
	"time"

	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// Sweeper is implemented by clients that can stream every value of their mapped identifier
// columns or key patterns, for the sweeps of a SuppressionList (docs/suppression.md). The
// connector streams; the operator normalises, hashes and matches (SweepOptions.Match), so that
// the list's hashes never leave the operator and the store is asked nothing about anyone.
type Sweeper interface {
	// Sweep visits every value of every identifier the mapping matches on, in bounded pages,
	// and calls visit for each value Match accepts. It changes nothing. A failure of visit ends
	// the sweep with that error.
	Sweep(ctx context.Context, opts SweepOptions, visit func(SweepHit) error) (*SweepStats, error)
}

// SweepOptions bound a sweep and decide what is a hit.
type SweepOptions struct {
	// Match reports whether value, a stored value of identifier compared as kind, belongs to
	// someone on the list. It must be safe for concurrent use.
	Match func(identifier string, kind normalize.Kind, value string) bool
	// PageSize is the most values one query or SCAN step reads (default 1000).
	PageSize int
	// RowsPerSecond bounds the values read per second (0: unbounded), so that a sweep does not
	// flatten a production database.
	RowsPerSecond int
	// Digests, when set, lets stores that send salted digests instead of values (http stores
	// with the sweep capability, see sweep_digest.go) be swept. Only a list whose entries are
	// unkeyed SHA-256 of DROP-normalised values (a DROP list) can set it; without it such a
	// store answers ErrSweepNeedsDigests.
	Digests *DigestMatch
}

// SweepHit is one stored value of someone on the list. Value is personal data: never log it.
type SweepHit struct {
	// Location is the table or key pattern the value was found at.
	Location Location
	// Identifier is the identifier name the mapping matches the value as.
	Identifier string
	// Kind the value compares as.
	Kind normalize.Kind
	// Value as stored.
	Value string
	// Retained: the location's mapping retains its records under a legal hold.
	Retained bool
}

// SweepStats count what a sweep read.
type SweepStats struct {
	// Scanned values (rows times match columns, or keys).
	Scanned int64
}

// DefaultSweepPageSize is SweepOptions.PageSize when unset.
const DefaultSweepPageSize = 1000

// PageSizeOrDefault is PageSize, or DefaultSweepPageSize when unset.
func (o SweepOptions) PageSizeOrDefault() int {
	if o.PageSize <= 0 {
		return DefaultSweepPageSize
	}
	return o.PageSize
}

// Pacer keeps a sweep under RowsPerSecond: after each page it waits until the values read so far
// could have been read at that rate.
type Pacer struct {
	rate  int
	start time.Time
	read  int64
}

// NewPacer starts a pacer at rate values per second; 0 never waits.
func NewPacer(rate int) *Pacer { return &Pacer{rate: rate, start: time.Now()} }

// Wait records n more values read and sleeps as long as the rate asks, or until ctx ends.
func (p *Pacer) Wait(ctx context.Context, n int) error {
	p.read += int64(n)
	if p.rate <= 0 {
		return ctx.Err()
	}
	due := p.start.Add(time.Duration(float64(p.read) / float64(p.rate) * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
