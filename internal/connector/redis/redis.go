package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

const (
	// scanCount is the COUNT hint of SCAN: large enough to cross a big keyspace in few round
	// trips, small enough not to block the server.
	scanCount = 10000
	// unlinkBatch is how many keys go into one pipelined UNLINK.
	unlinkBatch = 500
	// MaxDeepScanKeys bounds a deep verification's scan of the whole keyspace.
	MaxDeepScanKeys = 1_000_000
	// deepLocation names what a deep scan found.
	deepLocation = "(deep scan: key names)"
)

func init() {
	connector.Register(privacyv1alpha1.StoreTypeRedis, NewProvider())
	// The library's own log lines (dial retries) bypass the operator's logger; the errors they
	// describe reach the store's status anyway.
	goredis.SetLogger(quiet{})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Provider builds Redis clients.
type Provider struct{}

// NewProvider returns the Redis provider.
func NewProvider() *Provider { return &Provider{} }

// ValidateSpec checks every key pattern.
func (p *Provider) ValidateSpec(spec *privacyv1alpha1.DataStoreSpec) error {
	if len(spec.Keys) == 0 {
		return connector.Errorf(connector.KindMapping, "validate", "a redis store needs at least one key pattern")
	}
	for _, k := range spec.Keys {
		if _, err := parsePattern(k.Pattern); err != nil {
			return connector.Wrap(connector.KindMapping, "validate", err)
		}
		if k.Action == privacyv1alpha1.KeyActionRetain && strings.TrimSpace(k.RetainReason) == "" {
			return connector.Errorf(connector.KindMapping, "validate", "key pattern %q is retained without a retainReason", k.Pattern)
		}
	}
	return nil
}

// NewClient connects to the Redis server in cfg.Secret (a redis:// or rediss:// URL).
func (p *Provider) NewClient(ctx context.Context, cfg connector.Config) (connector.Client, error) {
	if err := p.ValidateSpec(cfg.Spec); err != nil {
		return nil, err
	}
	opts, err := goredis.ParseURL(strings.TrimSpace(string(cfg.Secret)))
	if err != nil {
		// The parser's message may quote the URL, password included.
		return nil, connector.Errorf(connector.KindInvalid, "connect", "the connection secret is not a valid redis:// or rediss:// URL")
	}
	timeout := 30 * time.Second
	if t := cfg.Spec.Connection.Timeout; t != nil && t.Duration > 0 {
		timeout = t.Duration
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = timeout, timeout, timeout
	opts.MaxRetries = 1
	opts.PoolSize = 10
	// The server's identity is not set by the client library on its own connections.
	opts.DisableIdentity = true
	c := &client{rdb: goredis.NewClient(opts), name: cfg.Name}
	for _, k := range cfg.Spec.Keys {
		pt, _ := parsePattern(k.Pattern)
		c.mappings = append(c.mappings, mapping{pattern: pt, action: k.Action, reason: k.RetainReason})
	}
	return c, nil
}

type mapping struct {
	pattern *pattern
	action  privacyv1alpha1.KeyAction
	reason  string
}

type client struct {
	rdb      *goredis.Client
	name     string
	mappings []mapping
}

func (c *client) Close() error { return c.rdb.Close() }

// Check pings the server and refuses a cluster-enabled one.
func (c *client) Check(ctx context.Context) (*connector.CheckResult, error) {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return nil, classify("check", err)
	}
	info, err := c.rdb.Info(ctx, "cluster").Result()
	if err != nil {
		return nil, classify("check", err)
	}
	if strings.Contains(info, "cluster_enabled:1") {
		return nil, connector.Errorf(connector.KindMapping, "check", "the server runs in Redis Cluster mode, which is not supported: only one node's keys would be searched")
	}
	return &connector.CheckResult{}, nil
}

// located is the keys one mapping found.
type located struct {
	m    *mapping
	keys []string
}

// find returns, per mapping, the keys of the subject. A key under a retained pattern is never
// also reported under a deleted one: the legal hold wins.
func (c *client) find(ctx context.Context, ids connector.Identifiers, op string) ([]located, map[string]bool, error) {
	var out []located
	retained := map[string]bool{}
	order := make([]int, 0, len(c.mappings))
	for i := range c.mappings {
		if c.mappings[i].action == privacyv1alpha1.KeyActionRetain {
			order = append(order, i)
		}
	}
	for i := range c.mappings {
		if c.mappings[i].action != privacyv1alpha1.KeyActionRetain {
			order = append(order, i)
		}
	}
	covered := map[string]bool{}
	for _, i := range order {
		m := &c.mappings[i]
		target, ok, err := m.pattern.expandChecked(ids)
		if err != nil {
			return nil, nil, connector.Wrap(connector.KindRejected, op, err)
		}
		if !ok {
			continue
		}
		var keys []string
		if m.pattern.glob {
			found, err := c.scan(ctx, target, 0)
			if err != nil {
				return nil, nil, classify(op, err)
			}
			keys = found
		} else {
			n, err := c.rdb.Exists(ctx, target).Result()
			if err != nil {
				return nil, nil, classify(op, err)
			}
			if n > 0 {
				keys = []string{target}
			}
		}
		var kept []string
		for _, k := range keys {
			if m.action != privacyv1alpha1.KeyActionRetain && retained[k] || covered[k] {
				continue
			}
			covered[k] = true
			if m.action == privacyv1alpha1.KeyActionRetain {
				retained[k] = true
			}
			kept = append(kept, k)
		}
		out = append(out, located{m: m, keys: kept})
	}
	return out, covered, nil
}

// scan returns the distinct keys matching match (every key when match is ""), at most limit keys
// scanned when limit > 0.
func (c *client) scan(ctx context.Context, match string, limit int) ([]string, error) {
	seen := map[string]bool{}
	var keys []string
	var cursor uint64
	scanned := 0
	for {
		batch, next, err := c.rdb.Scan(ctx, cursor, match, scanCount).Result()
		if err != nil {
			return nil, err
		}
		scanned += len(batch)
		if limit > 0 && scanned > limit {
			return nil, connector.Errorf(connector.KindRejected, "verify", "deep verification stopped after scanning %d keys (the limit): verify without deep, or split the database", limit)
		}
		for _, k := range batch {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	sort.Strings(keys)
	return keys, nil
}

// Erase unlinks the subject's keys under deleted patterns and counts those under retained ones.
func (c *client) Erase(ctx context.Context, req connector.Request) (*connector.EraseResult, error) {
	found, _, err := c.find(ctx, req.Identifiers, "erase")
	if err != nil {
		return nil, err
	}
	res := &connector.EraseResult{}
	for _, l := range found {
		if l.m.action == privacyv1alpha1.KeyActionRetain {
			if len(l.keys) > 0 {
				res.Retained += int64(len(l.keys))
				res.RetainedLocations = append(res.RetainedLocations, connector.LocationCount{Location: l.m.pattern.source, Records: int64(len(l.keys)), Reason: l.m.reason})
			}
			continue
		}
		if req.DryRun {
			res.Erased += int64(len(l.keys))
			continue
		}
		n, err := c.unlink(ctx, l.keys)
		res.Erased += n
		if err != nil {
			return nil, classify("erase", err)
		}
	}
	return res, nil
}

func (c *client) unlink(ctx context.Context, keys []string) (int64, error) {
	var removed int64
	for start := 0; start < len(keys); start += unlinkBatch {
		end := min(start+unlinkBatch, len(keys))
		pipe := c.rdb.Pipeline()
		cmds := make([]*goredis.IntCmd, 0, end-start)
		for _, k := range keys[start:end] {
			cmds = append(cmds, pipe.Unlink(ctx, k))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return removed, err
		}
		for _, cmd := range cmds {
			removed += cmd.Val()
		}
	}
	return removed, nil
}

// Verify counts what still identifies the subject.
func (c *client) Verify(ctx context.Context, req connector.Request) (*connector.VerifyResult, error) {
	found, covered, err := c.find(ctx, req.Identifiers, "verify")
	if err != nil {
		return nil, err
	}
	res := &connector.VerifyResult{}
	for _, l := range found {
		if len(l.keys) == 0 {
			continue
		}
		lc := connector.LocationCount{Location: l.m.pattern.source, Records: int64(len(l.keys))}
		if l.m.action == privacyv1alpha1.KeyActionRetain {
			lc.Reason = l.m.reason
			res.Retained += lc.Records
			res.RetainedLocations = append(res.RetainedLocations, lc)
			continue
		}
		res.Remaining += lc.Records
		res.RemainingLocations = append(res.RemainingLocations, lc)
	}
	if req.Deep {
		all, err := c.scan(ctx, "", MaxDeepScanKeys)
		if err != nil {
			var ce *connector.Error
			if errors.As(err, &ce) {
				return nil, err
			}
			return nil, classify("verify", err)
		}
		var hits int64
		for _, k := range all {
			if covered[k] {
				continue
			}
			for _, v := range req.Identifiers {
				if v != "" && strings.Contains(k, v) {
					hits++
					break
				}
			}
		}
		if hits > 0 {
			res.Remaining += hits
			res.RemainingLocations = append(res.RemainingLocations, connector.LocationCount{Location: deepLocation, Records: hits})
		}
	}
	return res, nil
}

// Collect reads every key of the subject, whatever its type.
func (c *client) Collect(ctx context.Context, req connector.Request) (*connector.Collection, error) {
	found, _, err := c.find(ctx, req.Identifiers, "collect")
	if err != nil {
		return nil, err
	}
	col := &connector.Collection{Records: []connector.Record{}}
	for _, l := range found {
		for _, k := range l.keys {
			data, err := c.read(ctx, k)
			if err != nil {
				return nil, classify("collect", err)
			}
			if data == nil {
				continue // gone between SCAN and read
			}
			col.Records = append(col.Records, connector.Record{Location: l.m.pattern.source, Key: k, Data: data})
		}
	}
	return col, nil
}

func (c *client) read(ctx context.Context, key string) (map[string]any, error) {
	typ, err := c.rdb.Type(ctx, key).Result()
	if err != nil {
		return nil, err
	}
	var value any
	switch typ {
	case "none":
		return nil, nil
	case "string":
		value, err = c.rdb.Get(ctx, key).Result()
	case "hash":
		value, err = c.rdb.HGetAll(ctx, key).Result()
	case "list":
		value, err = c.rdb.LRange(ctx, key, 0, -1).Result()
	case "set":
		var members []string
		members, err = c.rdb.SMembers(ctx, key).Result()
		sort.Strings(members)
		value = members
	case "zset":
		var zs []goredis.Z
		zs, err = c.rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
		items := make([]map[string]any, len(zs))
		for i, z := range zs {
			items[i] = map[string]any{"member": z.Member, "score": z.Score}
		}
		value = items
	case "stream":
		var msgs []goredis.XMessage
		msgs, err = c.rdb.XRange(ctx, key, "-", "+").Result()
		items := make([]map[string]any, len(msgs))
		for i, m := range msgs {
			items[i] = map[string]any{"id": m.ID, "values": m.Values}
		}
		value = items
	default:
		value = fmt.Sprintf("(a %s value, not exported)", typ)
	}
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"type": typ, "value": value}, nil
}

// classify gives a Redis error its kind. Server errors never quote keys; network errors name only
// the address.
func classify(op string, err error) error {
	var ce *connector.Error
	if errors.As(err, &ce) {
		return err
	}
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOAUTH"), strings.Contains(msg, "invalid password"),
		strings.HasPrefix(msg, "NOPERM"):
		return connector.Errorf(connector.KindAuth, op, "the server refused the credentials (%s)", firstWord(msg))
	case strings.HasPrefix(msg, "MOVED"), strings.HasPrefix(msg, "ASK"), strings.HasPrefix(msg, "CROSSSLOT"), strings.HasPrefix(msg, "CLUSTERDOWN"):
		return connector.Errorf(connector.KindMapping, op, "the server runs in Redis Cluster mode, which is not supported")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, goredis.ErrClosed):
		return connector.Wrap(connector.KindUnavailable, op, err)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return connector.Wrap(connector.KindUnavailable, op, err)
	}
	return connector.Errorf(connector.KindUnavailable, op, "redis: %s", firstWord(msg))
}

func firstWord(msg string) string {
	if i := strings.IndexAny(msg, " \n"); i > 0 {
		return msg[:i]
	}
	return msg
}
