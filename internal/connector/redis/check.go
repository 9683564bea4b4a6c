package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Check pings the server, refuses Redis Cluster, and runs every command the mapping needs on a
// key of each pattern's shape that no subject has, so that a missing ACL permission shows up
// here rather than in the middle of an erasure. Commands that only an access request needs
// (TYPE, GET, HGETALL, ...) are warnings when refused.
func (c *client) Check(ctx context.Context) (*connector.CheckResult, error) {
	const op = "check"
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return nil, fail(ctx, op, err, nil)
	}
	res := &connector.CheckResult{}
	cluster, err := c.clusterMode(ctx)
	switch {
	case err != nil && goredis.IsPermissionError(err):
		res.Warnings = append(res.Warnings, "the Redis user may not run INFO, so whether the server runs in Redis Cluster mode (not supported) cannot be checked")
	case err != nil:
		return nil, fail(ctx, op, err, nil)
	case cluster:
		return nil, errCluster(op)
	}
	for _, m := range c.mappings {
		res.Warnings = append(res.Warnings, m.pattern.warnings()...)
	}
	warnings, err := c.probe(ctx)
	if err != nil {
		return nil, err
	}
	res.Warnings = append(res.Warnings, warnings...)
	return res, nil
}

// probe runs the mapping's commands on keys no subject has. UNLINK of a key that does not exist
// changes nothing.
func (c *client) probe(ctx context.Context) ([]string, error) {
	const op = "check"
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, connector.Wrap(connector.KindUnavailable, op, err)
	}
	token := "dsr-operator-check-" + hex.EncodeToString(raw[:])
	type probe struct {
		m        *mapping
		name     string
		cmd      goredis.Cmder
		required bool
	}
	var probes []probe
	pipe := c.rdb.Pipeline()
	for i := range c.mappings {
		m := &c.mappings[i]
		key := m.pattern.probeKey(token)
		add := func(name string, required bool, cmd goredis.Cmder) {
			probes = append(probes, probe{m: m, name: name, cmd: cmd, required: required})
		}
		add("EXISTS", true, pipe.Exists(ctx, key))
		if m.pattern.glob {
			add("SCAN", true, pipe.Scan(ctx, 0, escapeGlob(key), 1))
		}
		if !m.retained() {
			add("UNLINK", true, pipe.Unlink(ctx, key))
		}
		add("TYPE", false, pipe.Type(ctx, key))
		add("GET", false, pipe.Get(ctx, key))
		add("HGETALL", false, pipe.HGetAll(ctx, key))
		add("LRANGE", false, pipe.LRange(ctx, key, 0, 0))
		add("SMEMBERS", false, pipe.SMembers(ctx, key))
		add("ZRANGE", false, pipe.ZRangeWithScores(ctx, key, 0, 0))
		add("XRANGE", false, pipe.XRangeN(ctx, key, "-", "+", 1))
	}
	_, _ = pipe.Exec(ctx) // each command's own error is inspected below
	denied := map[*mapping][]string{}
	deniedRead := map[*mapping][]string{}
	for _, p := range probes {
		err := p.cmd.Err()
		switch {
		case err == nil || errors.Is(err, goredis.Nil):
		case goredis.IsPermissionError(err) && p.required:
			denied[p.m] = append(denied[p.m], p.name)
		case goredis.IsPermissionError(err):
			deniedRead[p.m] = append(deniedRead[p.m], p.name)
		default:
			return nil, fail(ctx, op, err, nil)
		}
	}
	var problems, warnings []string
	for i := range c.mappings {
		m := &c.mappings[i]
		if names := denied[m]; len(names) > 0 {
			problems = append(problems, fmt.Sprintf("the Redis user may not run %s on the keys of pattern %q", strings.Join(names, ", "), m.pattern.source))
		}
		if names := deniedRead[m]; len(names) > 0 {
			warnings = append(warnings, fmt.Sprintf("the Redis user may not run %s on the keys of pattern %q: access requests fail for keys that need them", strings.Join(names, ", "), m.pattern.source))
		}
	}
	if len(problems) > 0 {
		return nil, connector.Errorf(connector.KindAuth, op, "%s (NOPERM: grant the ACL user these commands on these keys)", strings.Join(problems, "; "))
	}
	return warnings, nil
}

// clusterMode asks INFO whether the server runs in Redis Cluster mode and remembers the answer.
func (c *client) clusterMode(ctx context.Context) (bool, error) {
	info, err := c.rdb.Info(ctx, "cluster").Result()
	if err != nil {
		return false, err
	}
	if strings.Contains(info, "cluster_enabled:1") {
		c.topology.Store(topologyCluster)
		return true, nil
	}
	c.topology.Store(topologyStandalone)
	return false, nil
}

// refuseCluster fails an operation on a Redis Cluster node: SCAN there sees one node's keys, so
// an erasure would silently miss the rest. A user who may not run INFO is let through (Check
// warns); commands on keys of other nodes then fail with MOVED.
func (c *client) refuseCluster(ctx context.Context, op string) error {
	switch c.topology.Load() {
	case topologyStandalone:
		return nil
	case topologyCluster:
		return errCluster(op)
	}
	cluster, err := c.clusterMode(ctx)
	switch {
	case err != nil && goredis.IsPermissionError(err):
		c.topology.Store(topologyStandalone)
		return nil
	case err != nil:
		return fail(ctx, op, err, nil)
	case cluster:
		return errCluster(op)
	}
	return nil
}

func errCluster(op string) error {
	return connector.Errorf(connector.KindMapping, op, "the server runs in Redis Cluster mode, which the redis connector does not support: SCAN would search one node's keys only")
}
