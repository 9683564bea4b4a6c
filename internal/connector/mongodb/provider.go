package mongodb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

func init() {
	connector.Register(privacyv1alpha1.StoreTypeMongoDB, NewProvider(Options{}))
}

// DefaultTimeout bounds each server operation when the spec sets no connection timeout.
const DefaultTimeout = 30 * time.Second

// Options tune a Store; the zero value takes the defaults.
type Options struct {
	// BatchSize is the most documents one delete removes (default 500).
	BatchSize int
	// MaxDocuments is the most documents of one subject one mapping may match (default 100000).
	MaxDocuments int
	// MaxAtomicDocuments is the most documents an erasure changes in one transaction, where the
	// deployment has transactions (default 10000); above it the per-document order applies.
	MaxAtomicDocuments int
	// UnmappedMaxCollections caps what a deep verification of the whole database searches outside
	// the mapping (default DefaultUnmappedMaxCollections).
	UnmappedMaxCollections int
	// AfterWrite, when set, is called after every delete batch and every masked document with the
	// collection's location; tests use it to interrupt an erasure at a known point.
	AfterWrite func(location connector.Location)
}

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.MaxAtomicDocuments <= 0 {
		o.MaxAtomicDocuments = 10000
	}
	if o.UnmappedMaxCollections <= 0 {
		o.UnmappedMaxCollections = DefaultUnmappedMaxCollections
	}
	if o.MaxDocuments <= 0 {
		o.MaxDocuments = 100000
	}
	return o
}

// Provider is the connector.Provider of type mongodb.
type Provider struct{ opts Options }

var _ connector.Provider = (*Provider)(nil)

// NewProvider returns a provider whose clients use opts.
func NewProvider(opts Options) *Provider { return &Provider{opts: opts} }

// IdentifierNames are the identifiers the collections match on.
func (p *Provider) IdentifierNames(spec *privacyv1alpha1.DataStoreSpec) ([]string, bool) {
	var names []string
	for _, c := range spec.Collections {
		for _, m := range c.Match {
			names = append(names, m.Identifier)
		}
	}
	return names, false
}

// ValidateSpec checks the mapping without I/O.
func (p *Provider) ValidateSpec(spec *privacyv1alpha1.DataStoreSpec) error {
	const op = "validate"
	if spec == nil {
		return connector.Errorf(connector.KindMapping, op, "no spec")
	}
	if spec.Type != privacyv1alpha1.StoreTypeMongoDB {
		return connector.Errorf(connector.KindMapping, op, "store type %q is not %q", spec.Type, privacyv1alpha1.StoreTypeMongoDB)
	}
	if len(spec.Collections) == 0 {
		return connector.Errorf(connector.KindMapping, op, "a mongodb store needs collections")
	}
	if len(spec.Tables) > 0 || len(spec.Keys) > 0 {
		return connector.Errorf(connector.KindMapping, op, "a mongodb store takes collections, not tables or keys")
	}
	var problems []string
	if err := normalize.ValidateRegion(spec.DefaultRegion); err != nil {
		problems = append(problems, err.Error())
	}
	if scope := deepScopeOf(spec); scope != privacyv1alpha1.DeepScopeMapped && scope != privacyv1alpha1.DeepScopeDatabase {
		problems = append(problems, fmt.Sprintf("verification.deepScope %q is neither mapped nor database", scope))
	}
	seen := map[string]bool{}
	for i, c := range spec.Collections {
		where := fmt.Sprintf("collections[%d]", i)
		if _, err := parseCollectionName(c.Name); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", where, err))
		} else {
			where = "collection " + c.Name
		}
		key := fmt.Sprintf("%s|%v|%s", c.Name, c.Match, c.Action)
		if seen[key] {
			problems = append(problems, where+" is listed twice with the same match and action")
		}
		seen[key] = true
		problems = append(problems, mappingProblems(where, c)...)
	}
	if len(problems) > 0 {
		return connector.Hinted(connector.KindMapping, op, strings.Join(problems, "; "))
	}
	return nil
}

func mappingProblems(where string, c privacyv1alpha1.CollectionMapping) []string {
	var problems []string
	if len(c.Match) == 0 {
		problems = append(problems, where+": match lists no field")
	}
	for _, m := range c.Match {
		if err := validateField(m.Field); err != nil {
			problems = append(problems, fmt.Sprintf("%s: match: %v", where, err))
		}
		if m.Identifier == "" {
			problems = append(problems, fmt.Sprintf("%s: match field %s names no identifier", where, m.Field))
		}
		if m.As != "" && !normalize.Kind(m.As).Valid() {
			problems = append(problems, fmt.Sprintf("%s: match field %s compares as unknown kind %q", where, m.Field, m.As))
		}
	}
	for _, p := range c.Provides {
		if err := validateField(p.Field); err != nil {
			problems = append(problems, fmt.Sprintf("%s: provides: %v", where, err))
		}
		if p.Identifier == "" {
			problems = append(problems, fmt.Sprintf("%s: provides field %s names no identifier", where, p.Field))
		}
	}
	switch c.Action {
	case privacyv1alpha1.ActionDelete:
	case privacyv1alpha1.ActionRetain:
		if strings.TrimSpace(c.RetainReason) == "" {
			problems = append(problems, where+": retain needs a retainReason")
		}
	case privacyv1alpha1.ActionMask:
		if len(c.Mask) == 0 {
			problems = append(problems, where+": mask needs fields to mask")
		}
	default:
		problems = append(problems, fmt.Sprintf("%s: unknown action %q", where, c.Action))
	}
	if c.Action != privacyv1alpha1.ActionMask && len(c.Mask) > 0 {
		problems = append(problems, where+": mask fields are only allowed with action mask")
	}
	masked := map[string]bool{}
	for _, m := range c.Mask {
		if err := validateField(m.Field); err != nil {
			problems = append(problems, fmt.Sprintf("%s: mask: %v", where, err))
			continue
		}
		if isIDPath(m.Field) {
			problems = append(problems, fmt.Sprintf("%s: field %s cannot be masked (MongoDB never changes _id)", where, m.Field))
		}
		if masked[m.Field] {
			problems = append(problems, fmt.Sprintf("%s: field %s is masked twice", where, m.Field))
		}
		masked[m.Field] = true
		switch m.Strategy {
		case privacyv1alpha1.MaskNullify, privacyv1alpha1.MaskRedact, privacyv1alpha1.MaskHash:
		default:
			problems = append(problems, fmt.Sprintf("%s: field %s has unknown mask strategy %q", where, m.Field, m.Strategy))
		}
	}
	for other := range masked {
		for field := range masked {
			if other != field && strings.HasPrefix(field, other+".") {
				problems = append(problems, fmt.Sprintf("%s: field %s is inside masked field %s", where, field, other))
			}
		}
	}
	return problems
}

// dialer hands the driver the egress-checked dial function, and remembers a refusal: the driver
// reports a failed server selection with the dial error as text only, so the refusal would
// otherwise read as an unreachable server.
type dialer struct {
	dial   connector.DialFunc
	denied atomic.Pointer[connector.Error]
}

func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	conn, err := d.dial(ctx, network, address)
	var ce *connector.Error
	switch {
	case errors.As(err, &ce) && ce.Kind == connector.KindEgressDenied:
		d.denied.Store(ce)
	case err == nil:
		d.denied.Store(nil)
	}
	return conn, err
}

// fail is classify, except that an unavailable store whose last dial the egress policy refused
// is reported as that refusal.
func (d *dialer) fail(op string, err error, req connector.Request) error {
	out := classify(op, err, req)
	if connector.KindOf(out) == connector.KindUnavailable {
		if denied := d.denied.Load(); denied != nil {
			cp := *denied
			cp.Op = op
			return &cp
		}
	}
	return out
}

// NewClient validates the spec, connects with the URI in the Secret and pings the server.
func (p *Provider) NewClient(ctx context.Context, cfg connector.Config) (connector.Client, error) {
	const op = "connect"
	if err := p.ValidateSpec(cfg.Spec); err != nil {
		return nil, err
	}
	for _, c := range cfg.Spec.Collections {
		for _, m := range c.Mask {
			if m.Strategy == privacyv1alpha1.MaskHash && len(cfg.HashSalt) == 0 {
				return nil, connector.Errorf(connector.KindInvalid, op, "the hash mask strategy needs a salt")
			}
		}
	}
	timeout := DefaultTimeout
	if t := cfg.Spec.Connection.Timeout; t != nil && t.Duration > 0 {
		timeout = t.Duration
	}
	uri := strings.TrimSpace(string(cfg.Secret))
	clientOpts := options.Client().ApplyURI(uri)
	if clientOpts.Validate() != nil || (!strings.HasPrefix(uri, "mongodb://") && !strings.HasPrefix(uri, "mongodb+srv://")) {
		// The driver's text would quote the URI, password included.
		return nil, connector.Hinted(connector.KindInvalid, op, "the connection Secret does not hold a valid MongoDB URI (mongodb:// or mongodb+srv://)")
	}
	dial := &dialer{dial: cfg.DialContext(timeout)}
	clientOpts.SetDialer(dial).
		SetServerSelectionTimeout(timeout).
		SetConnectTimeout(timeout).
		SetAppName("dsr-operator")
	client, err := mongo.Connect(clientOpts)
	if err != nil {
		return nil, connector.Hinted(connector.KindInvalid, op, "the connection Secret does not hold a usable MongoDB URI")
	}
	mappings, err := newMappings(cfg.Spec.DeepCopy())
	if err != nil {
		_ = client.Disconnect(context.Background())
		return nil, connector.Hinted(connector.KindMapping, op, err.Error())
	}
	s := &Store{
		client:   client,
		mappings: mappings,
		salt:     append([]byte(nil), cfg.HashSalt...),
		opts:     p.opts.withDefaults(),
		timeout:  timeout,
		norm:     normalize.Normalizer{Region: cfg.PhoneRegion()},

		deepScope: deepScopeOf(cfg.Spec),
		dialer:    dial,
	}
	if err := s.ping(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, s.fail(op, err, connector.Request{})
	}
	return s, nil
}
