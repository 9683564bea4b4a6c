package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

const (
	// DefaultTimeout bounds dialling and each command when the spec sets no connection timeout.
	DefaultTimeout = 30 * time.Second
	// scanCount is the COUNT hint of SCAN: a deletion pattern walks the whole keyspace, so large
	// steps mean few round trips, while one step is still short work for the server.
	scanCount = 10000
	// keyBatch is how many keys go into one pipeline (UNLINK, EXISTS).
	keyBatch = 500
	// MaxDeepScanKeys bounds the keys a deep verification scans.
	MaxDeepScanKeys = 1_000_000
	// DeepLocation is where deep verification reports what it found.
	DeepLocation = "(deep scan)"
)

// maxDeepScanKeys is MaxDeepScanKeys, lowered by tests.
var maxDeepScanKeys = MaxDeepScanKeys

func init() {
	connector.Register(privacyv1alpha1.StoreTypeRedis, NewProvider())
	// The library logs dial retries on its own, past the operator's logger; the errors it
	// describes reach the store's status anyway.
	goredis.SetLogger(quiet{})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Provider builds Redis clients.
type Provider struct{}

// NewProvider returns the Redis provider.
func NewProvider() *Provider { return &Provider{} }

// ValidateSpec checks the key patterns and actions without I/O.
func (p *Provider) ValidateSpec(spec *privacyv1alpha1.DataStoreSpec) error {
	const op = "validate"
	if spec == nil {
		return connector.Errorf(connector.KindMapping, op, "no spec")
	}
	if spec.Type != privacyv1alpha1.StoreTypeRedis {
		return connector.Errorf(connector.KindMapping, op, "store type %q is not %q", spec.Type, privacyv1alpha1.StoreTypeRedis)
	}
	if len(spec.Tables) > 0 {
		return connector.Errorf(connector.KindMapping, op, "a redis store takes keys, not tables")
	}
	if len(spec.Keys) == 0 {
		return connector.Errorf(connector.KindMapping, op, "a redis store needs at least one key pattern")
	}
	var problems []string
	seen := map[string]bool{}
	for i, k := range spec.Keys {
		if _, err := parsePattern(k.Pattern); err != nil {
			problems = append(problems, fmt.Sprintf("keys[%d]: %v", i, err))
			continue
		}
		if seen[k.Pattern] {
			problems = append(problems, fmt.Sprintf("key pattern %q is listed twice", k.Pattern))
		}
		seen[k.Pattern] = true
		switch k.Action {
		case privacyv1alpha1.KeyActionDelete:
		case privacyv1alpha1.KeyActionRetain:
			if strings.TrimSpace(k.RetainReason) == "" {
				problems = append(problems, fmt.Sprintf("key pattern %q: retain needs a retainReason", k.Pattern))
			}
		default:
			problems = append(problems, fmt.Sprintf("key pattern %q: action %q is neither delete nor retain", k.Pattern, k.Action))
		}
	}
	if len(problems) > 0 {
		return connector.Errorf(connector.KindMapping, op, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// NewClient prepares a pooled client for the server in cfg.Secret, a redis:// or rediss:// URL
// (go-redis reads no file for any of its parameters). It does no I/O: connections are made on
// first use, through the egress policy of cfg.
func (p *Provider) NewClient(_ context.Context, cfg connector.Config) (connector.Client, error) {
	if err := p.ValidateSpec(cfg.Spec); err != nil {
		return nil, err
	}
	opts, err := goredis.ParseURL(strings.TrimSpace(string(cfg.Secret)))
	if err != nil {
		// The parser's message may quote the URL, password included.
		return nil, connector.Errorf(connector.KindInvalid, "connect", "the connection secret is not a valid redis:// or rediss:// URL")
	}
	timeout := DefaultTimeout
	if t := cfg.Spec.Connection.Timeout; t != nil && t.Duration > 0 {
		timeout = t.Duration
	}
	if opts.Network != "tcp" {
		// A unix socket is a file in the operator's own container, never a tenant's store.
		return nil, connector.Errorf(connector.KindInvalid, "connect", "the connection secret must be a redis:// or rediss:// URL: unix sockets are not supported")
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = timeout, timeout, timeout
	opts.Dialer = dialer(cfg.DialContext(timeout), opts.TLSConfig)
	// Without it go-redis bounds reads by ReadTimeout alone and ignores the caller's deadline.
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = 1
	opts.PoolSize = 10
	// CLIENT SETINFO on every new connection needs a permission a least-privilege ACL user
	// has no reason to hold, and servers before 7.2 do not know it.
	opts.DisableIdentity = true
	c := &client{rdb: goredis.NewClient(opts), norm: normalize.Normalizer{Region: cfg.PhoneRegion()}}
	for _, k := range cfg.Spec.Keys {
		pt, _ := parsePattern(k.Pattern) // validated above
		c.mappings = append(c.mappings, mapping{pattern: pt, action: k.Action, reason: k.RetainReason})
	}
	return c, nil
}

// dialer connects through dial, which enforces the egress policy, and then speaks TLS when the
// URL is rediss://: go-redis leaves TLS to a custom dialer.
func dialer(dial connector.DialFunc, tlsConfig *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil || tlsConfig == nil {
			return conn, err
		}
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return tc, nil
	}
}

type mapping struct {
	pattern *pattern
	action  privacyv1alpha1.KeyAction
	reason  string
}

func (m *mapping) retained() bool { return m.action == privacyv1alpha1.KeyActionRetain }

type client struct {
	rdb      *goredis.Client
	mappings []mapping
	// norm puts email and phone identifiers in the form key patterns name (normalize.go).
	norm normalize.Normalizer
	// topology is what INFO said about cluster mode: topologyUnknown until asked.
	topology atomic.Int32
}

// The zero value of topology is "unknown": INFO not asked yet.
const (
	// topologyStandalone: not a cluster, or INFO was refused and Check warned about it.
	topologyStandalone int32 = iota + 1
	topologyCluster
)

func (c *client) Close() error { return c.rdb.Close() }

// located is the keys one mapping found for the subject.
type located struct {
	m    *mapping
	keys []string
}

// find returns, per mapping that applies to the subject, its keys: over every combination of the
// values of the identifiers its pattern names (see expansions). Retained mappings go first
// and a key is reported once: under a retained pattern if any covers it (the legal hold wins),
// else under the first deleted pattern that does. covered holds every key reported.
func (c *client) find(ctx context.Context, op string, req connector.Request) (found []located, covered map[string]bool, err error) {
	if err := c.refuseCluster(ctx, op); err != nil {
		return nil, nil, err
	}
	order := make([]*mapping, 0, len(c.mappings))
	for i := range c.mappings {
		if c.mappings[i].retained() {
			order = append(order, &c.mappings[i])
		}
	}
	for i := range c.mappings {
		if !c.mappings[i].retained() {
			order = append(order, &c.mappings[i])
		}
	}
	// Glob patterns are scanned; the exact keys of every mapping are asked about together, in
	// one round trip.
	all := req.AllValues()
	candidates := make([][]string, len(order))
	applies := make([]bool, len(order))
	var exact []string
	for i, m := range order {
		for _, ids := range expansions(m.pattern, all) {
			keys, ok, err := c.keysOf(ctx, op, m, ids)
			if err != nil {
				return nil, nil, err
			}
			applies[i] = applies[i] || ok
			candidates[i] = append(candidates[i], keys...)
			if ok && !m.pattern.glob {
				exact = append(exact, keys...)
			}
		}
	}
	existing, err := c.existing(ctx, exact)
	if err != nil {
		return nil, nil, fail(ctx, op, err, req.Identifiers)
	}
	covered = map[string]bool{}
	for i, m := range order {
		if !applies[i] {
			continue
		}
		l := located{m: m}
		for _, k := range candidates[i] {
			if (m.pattern.glob || existing[k]) && !covered[k] {
				covered[k] = true
				l.keys = append(l.keys, k)
			}
		}
		found = append(found, l)
	}
	return found, covered, nil
}

// scanMatch returns the distinct keys that match the SCAN pattern match, sorted.
func (c *client) scanMatch(ctx context.Context, match string) ([]string, error) {
	seen := map[string]bool{}
	err := c.scan(ctx, match, 0, func(batch []string) {
		for _, k := range batch {
			seen[k] = true
		}
	})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// errScanLimit stops a scan that went past its limit.
type errScanLimit struct{ limit int }

func (e *errScanLimit) Error() string {
	return fmt.Sprintf("deep verification stopped after scanning %d keys, its limit: the database is too large for a deep scan; verify without deep, or keep personal data in a smaller logical database", e.limit)
}

// scan walks the keyspace with SCAN, never KEYS, and hands each batch to fn. SCAN may return a
// key more than once. With limit > 0 it stops with *errScanLimit after more than limit keys.
func (c *client) scan(ctx context.Context, match string, limit int, fn func([]string)) error {
	var cursor uint64
	scanned := 0
	for {
		batch, next, err := c.rdb.Scan(ctx, cursor, match, scanCount).Result()
		if err != nil {
			return err
		}
		scanned += len(batch)
		if limit > 0 && scanned > limit {
			return &errScanLimit{limit: limit}
		}
		fn(batch)
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// Erase unlinks the subject's keys under deleted patterns and counts those under retained ones.
// Erased counts only the keys UNLINK actually removed, so a second Erase erases zero.
func (c *client) Erase(ctx context.Context, req connector.Request) (*connector.EraseResult, error) {
	found, _, err := c.find(ctx, "erase", req)
	if err != nil {
		return nil, err
	}
	res := &connector.EraseResult{}
	for _, l := range found {
		switch {
		case len(l.keys) == 0:
		case l.m.retained():
			res.Retained += int64(len(l.keys))
			res.RetainedLocations = append(res.RetainedLocations, connector.LocationCount{Location: l.m.pattern.source, Records: int64(len(l.keys)), Reason: l.m.reason})
		case req.DryRun:
			res.Erased += int64(len(l.keys))
		default:
			n, err := c.unlink(ctx, l.keys)
			if err != nil {
				return nil, fail(ctx, "erase", err, req.Identifiers)
			}
			res.Erased += n
		}
	}
	return res, nil
}

// unlink removes keys in pipelined batches and returns how many existed.
func (c *client) unlink(ctx context.Context, keys []string) (int64, error) {
	var removed int64
	err := c.eachKey(ctx, keys, goredis.Pipeliner.Unlink, func(_ string, n int64) { removed += n })
	return removed, err
}

// eachKey sends cmd for every key in pipelined batches and hands each key's reply to got.
func (c *client) eachKey(ctx context.Context, keys []string, cmd func(goredis.Pipeliner, context.Context, ...string) *goredis.IntCmd,
	got func(key string, n int64)) error {
	for start := 0; start < len(keys); start += keyBatch {
		batch := keys[start:min(start+keyBatch, len(keys))]
		pipe := c.rdb.Pipeline()
		cmds := make([]*goredis.IntCmd, len(batch))
		for i, k := range batch {
			cmds[i] = cmd(pipe, ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for i, r := range cmds {
			got(batch[i], r.Val())
		}
	}
	return nil
}

// Verify counts the subject's keys under deleted patterns (Remaining) and retained ones
// (Retained). With req.Deep it also scans every key name for the identifier values.
func (c *client) Verify(ctx context.Context, req connector.Request) (*connector.VerifyResult, error) {
	found, covered, err := c.find(ctx, "verify", req)
	if err != nil {
		return nil, err
	}
	res := &connector.VerifyResult{}
	for _, l := range found {
		if len(l.keys) == 0 {
			continue
		}
		lc := connector.LocationCount{Location: l.m.pattern.source, Records: int64(len(l.keys))}
		if l.m.retained() {
			lc.Reason = l.m.reason
			res.Retained += lc.Records
			res.RetainedLocations = append(res.RetainedLocations, lc)
			continue
		}
		res.Remaining += lc.Records
		res.RemainingLocations = append(res.RemainingLocations, lc)
	}
	if req.Deep {
		n, err := c.deep(ctx, req.Identifiers, covered)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			res.Remaining += n
			res.RemainingLocations = append(res.RemainingLocations, connector.LocationCount{Location: DeepLocation, Records: n})
		}
	}
	return res, nil
}

// holdsAny reports whether key holds one of values (see nameHolds).
func holdsAny(key string, values []string) bool {
	for _, v := range values {
		if connector.NameHolds(key, v) {
			return true
		}
	}
	return false
}

// deep counts the keys, not already reported under a pattern, whose name holds an identifier
// value (see nameHolds), or an email address of the subject in any letter case.
func (c *client) deep(ctx context.Context, ids connector.Identifiers, covered map[string]bool) (int64, error) {
	values := make([]string, 0, 2*len(ids))
	for name, v := range ids {
		if v != "" {
			values = append(values, v)
		}
		if key := c.keyIdentifiers(connector.Identifiers{name: v})[name]; key != v && key != "" {
			values = append(values, key)
		}
	}
	folded := c.foldedEmails(ids)
	hits := map[string]bool{}
	err := c.scan(ctx, "", maxDeepScanKeys, func(batch []string) {
		for _, k := range batch {
			if covered[k] || hits[k] {
				continue
			}
			if holdsAny(k, values) || len(folded) > 0 && holdsAny(normalize.FoldCase(k), folded) {
				hits[k] = true
			}
		}
	})
	if limit := (*errScanLimit)(nil); errors.As(err, &limit) {
		return 0, refused("verify", "", limit)
	}
	if err != nil {
		return 0, fail(ctx, "verify", err, ids)
	}
	return int64(len(hits)), nil
}
