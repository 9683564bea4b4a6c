package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// Options tune how a Store works; the zero value takes the defaults.
type Options struct {
	// BatchSize is the most rows one DELETE or UPDATE touches in an erasure above MaxAtomicRows
	// (default 1000), where every batch commits on its own and so releases its locks.
	BatchSize int
	// ScanBatchRows is about how many rows one statement reads when a normalised column that
	// no index serves is scanned (default DefaultScanBatchRows; see scan.go).
	ScanBatchRows int
	// MaxAtomicRows is the most rows an erasure changes in a single transaction (default 10000);
	// above it every batch commits on its own. See Store.Erase.
	MaxAtomicRows int64
	// MaxOpenConns caps the pool of each client (default 4).
	MaxOpenConns int
	// AfterBatch, when set, is called after every batch statement of an erasure with the table's
	// location; tests use it to interrupt an erasure at a known point. Statements a Pipeliner
	// sends together are reported once their transaction has committed.
	AfterBatch func(location connector.Location)
	// CatalogTTL is how long the mapped tables read from the catalog are reused (default 30s;
	// negative: read in every operation). Any failed operation forgets them.
	CatalogTTL time.Duration
	// OnSpellingSearch, when set, is called with the text of every statement that searches a
	// normalised column for the subject's spellings (each batch of a scan, see scan.go), and its
	// number of arguments (never their values); tests EXPLAIN it to prove which index serves it.
	OnSpellingSearch func(query string, args int)
	// OnStatement, when set, is called with the text of every statement that Derive, Erase and
	// Verify send (never the values: they are bound arguments); tests count them.
	OnStatement func(query string)
	// UnmappedMaxRelations and UnmappedMaxColumns cap what a deep verification of the whole
	// database searches outside the mapping (defaults DefaultUnmappedMaxRelations and
	// DefaultUnmappedMaxColumns); see unmapped.go.
	UnmappedMaxRelations int
	UnmappedMaxColumns   int
}

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.ScanBatchRows <= 0 {
		o.ScanBatchRows = DefaultScanBatchRows
	}
	if o.MaxAtomicRows <= 0 {
		o.MaxAtomicRows = 10000
	}
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = 4
	}
	if o.CatalogTTL == 0 {
		o.CatalogTTL = 30 * time.Second
	}
	return o
}

// Provider is the connector.Provider of one SQL dialect.
type Provider struct {
	Dialect Dialect
	Options Options
}

var _ connector.Provider = (*Provider)(nil)

// NewProvider returns the provider for d.
func NewProvider(d Dialect, opts Options) *Provider {
	return &Provider{Dialect: d, Options: opts}
}

// ValidateSpec checks a SQL store's mapping without I/O: tables are required and unique, names
// are identifiers, actions carry what they need, mask columns do not repeat.
func (p *Provider) ValidateSpec(spec *privacyv1alpha1.DataStoreSpec) error {
	const op = "validate"
	if spec == nil {
		return connector.Errorf(connector.KindMapping, op, "no spec")
	}
	if spec.Type != p.Dialect.Type() {
		return connector.Errorf(connector.KindMapping, op, "store type %q is not %q", spec.Type, p.Dialect.Type())
	}
	if len(spec.Tables) == 0 {
		return connector.Errorf(connector.KindMapping, op, "a %s store needs tables", spec.Type)
	}
	if len(spec.Keys) > 0 {
		return connector.Errorf(connector.KindMapping, op, "a %s store takes tables, not keys", spec.Type)
	}
	var problems []string
	if err := normalize.ValidateRegion(spec.DefaultRegion); err != nil {
		problems = append(problems, err.Error())
	}
	for i, t := range spec.Tables {
		where := fmt.Sprintf("tables[%d]", i)
		if _, err := ParseTableName(t.Name); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", where, err))
		} else {
			where = "table " + t.Name
		}
		problems = append(problems, p.tableProblems(where, t)...)
	}
	problems = append(problems, repeatedTableProblems(spec.Tables)...)
	if p := deepScopeProblem(p.Dialect, spec); p != "" {
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		return connector.Hinted(connector.KindMapping, op, strings.Join(problems, "; "))
	}
	return nil
}

func (p *Provider) tableProblems(where string, t privacyv1alpha1.TableMapping) []string {
	var problems []string
	if len(t.Match) == 0 {
		problems = append(problems, where+": match lists no column")
	}
	for _, m := range t.Match {
		if m.As != "" && !normalize.Kind(m.As).Valid() {
			problems = append(problems, fmt.Sprintf("%s: match column %s compares as unknown kind %q", where, m.Column, m.As))
		}
		if err := ValidateColumnName(m.Column); err != nil {
			problems = append(problems, fmt.Sprintf("%s: match: %v", where, err))
		}
		if m.Identifier == "" {
			problems = append(problems, fmt.Sprintf("%s: match column %s names no identifier", where, m.Column))
		}
	}
	switch t.Action {
	case privacyv1alpha1.ActionDelete:
	case privacyv1alpha1.ActionRetain:
		if strings.TrimSpace(t.RetainReason) == "" {
			problems = append(problems, where+": retain needs a retainReason")
		}
	case privacyv1alpha1.ActionMask:
		if len(t.Mask) == 0 {
			problems = append(problems, where+": mask needs columns to mask")
		}
	default:
		problems = append(problems, fmt.Sprintf("%s: unknown action %q", where, t.Action))
	}
	if t.Action != privacyv1alpha1.ActionMask && len(t.Mask) > 0 {
		problems = append(problems, fmt.Sprintf("%s: mask columns are only allowed with action mask", where))
	}
	masked := map[string]bool{}
	for _, m := range t.Mask {
		if err := ValidateColumnName(m.Column); err != nil {
			problems = append(problems, fmt.Sprintf("%s: mask: %v", where, err))
			continue
		}
		key := foldName(p.Dialect, m.Column)
		if masked[key] {
			problems = append(problems, fmt.Sprintf("%s: column %s is masked twice", where, m.Column))
		}
		masked[key] = true
		switch m.Strategy {
		case privacyv1alpha1.MaskNullify, privacyv1alpha1.MaskRedact, privacyv1alpha1.MaskHash:
		default:
			problems = append(problems, fmt.Sprintf("%s: column %s has unknown mask strategy %q", where, m.Column, m.Strategy))
		}
	}
	return problems
}

func usesHash(spec *privacyv1alpha1.DataStoreSpec) bool {
	for _, t := range spec.Tables {
		for _, m := range t.Mask {
			if m.Strategy == privacyv1alpha1.MaskHash {
				return true
			}
		}
	}
	return false
}

// NewClient validates the spec, opens a pool and pings the store.
func (p *Provider) NewClient(ctx context.Context, cfg connector.Config) (connector.Client, error) {
	const op = "connect"
	if err := p.ValidateSpec(cfg.Spec); err != nil {
		return nil, err
	}
	if usesHash(cfg.Spec) && len(cfg.HashSalt) == 0 {
		// An unsalted SHA-256 of an email is reversed by a dictionary; refuse rather than write it.
		return nil, connector.Errorf(connector.KindInvalid, op, "the hash mask strategy needs a salt")
	}
	timeout := DefaultTimeout
	if t := cfg.Spec.Connection.Timeout; t != nil && t.Duration > 0 {
		timeout = t.Duration
	}
	db, err := p.Dialect.Open(cfg.Secret, cfg.DialContext(timeout))
	if err != nil {
		return nil, Classify(p.Dialect, op, "", err, nil)
	}
	opts := p.Options.withDefaults()
	db.SetMaxOpenConns(opts.MaxOpenConns)
	db.SetMaxIdleConns(opts.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{
		d:       p.Dialect,
		db:      db,
		tables:  cfg.Spec.DeepCopy().Tables,
		salt:    append([]byte(nil), cfg.HashSalt...),
		opts:    opts,
		timeout: timeout,
		norm:    normalize.Normalizer{Region: cfg.PhoneRegion()},

		deepScope: deepScopeOf(cfg.Spec),
	}
	if err := s.ping(ctx); err != nil {
		_ = db.Close()
		return nil, s.fail(op, err, connector.Request{})
	}
	return s, nil
}
