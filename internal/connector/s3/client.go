package s3

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// planned is one mapping that applies to the subject, with its expanded keys.
type planned struct {
	m       *mapping
	targets []target
}

// plan expands every mapping for the subject, retained mappings first: an object under both a
// retained and a deleted mapping is reported once, under the retained one (the legal ground wins),
// and an object under two deleted mappings is counted once, under the first.
func (c *client) plan(op string, req connector.Request) ([]planned, error) {
	all := req.AllValues()
	var out []planned
	for _, retainedPass := range []bool{true, false} {
		for i := range c.mappings {
			m := &c.mappings[i]
			if m.retained() != retainedPass {
				continue
			}
			p := planned{m: m}
			for _, ids := range expansions(m.key, all) {
				key, ok, err := m.key.expand(c.keyIdentifiers(ids))
				if err != nil {
					return nil, refused(op, m.location(), err)
				}
				if ok {
					p.targets = append(p.targets, target{bucket: m.bucket, key: key, prefix: m.key.prefix})
				}
			}
			if len(p.targets) > 0 {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// keyIdentifiers are the subject's identifiers as keys name them, as in Redis key patterns: keys
// are exact strings, so an email or phone identifier (by its name) is substituted in its
// normalised form (trimmed and case-folded email with an ASCII domain; E.164 phone), every other
// value as given. A value that does not normalise stays as given.
func (c *client) keyIdentifiers(ids connector.Identifiers) connector.Identifiers {
	out := make(connector.Identifiers, len(ids))
	for name, v := range ids {
		out[name] = c.norm.Key(normalize.KindFor(name, ""), v)
	}
	return out
}

// earlierTargets are the targets of the plans before index i.
func earlierTargets(plans []planned, i int) []target {
	var out []target
	for _, p := range plans[:i] {
		out = append(out, p.targets...)
	}
	return out
}

// walk streams every version (delete markers included) of the objects of plan p to fn, page by
// page, skipping objects an earlier plan covers. Nothing is held beyond one page.
func (c *client) walk(ctx context.Context, p planned, earlier []target, fn func(minio.ObjectInfo) error) error {
	for _, t := range p.targets {
		if len(t.key) > maxKeyBytes {
			continue // no object can have this key
		}
		if err := c.walkTarget(ctx, t, earlier, fn); err != nil {
			return err
		}
	}
	return nil
}

func (c *client) walkTarget(ctx context.Context, t target, earlier []target, fn func(minio.ObjectInfo) error) error {
	// Cancelling stops the listing goroutine when fn fails or the walk ends early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var last versionRef
	for obj := range c.mc.ListObjects(ctx, t.bucket, minio.ListObjectsOptions{Prefix: t.key, Recursive: true, WithVersions: true, MaxKeys: 1000}) {
		if obj.Err != nil {
			return obj.Err
		}
		if last.repeats(obj) {
			continue
		}
		if !t.covers(t.bucket, obj.Key) || coveredBy(earlier, t.bucket, obj.Key) {
			continue
		}
		if err := fn(obj); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// versionRef is the last version a listing returned. Versions come sorted by key, so a repeat
// is always the next entry: versitygw's posix backend (v1.8.0) repeats the last version of a page
// at the start of the next one, which would be counted twice.
type versionRef struct{ key, versionID string }

func (r *versionRef) repeats(obj minio.ObjectInfo) bool {
	if obj.Key == r.key && obj.VersionID == r.versionID {
		return true
	}
	r.key, r.versionID = obj.Key, obj.VersionID
	return false
}

func coveredBy(targets []target, bucket, key string) bool {
	for _, t := range targets {
		if t.covers(bucket, key) {
			return true
		}
	}
	return false
}

// tally counts records by location and reason, in the order they are first seen.
type tally struct {
	total int64
	locs  []connector.LocationCount
}

func (t *tally) add(location, reason string, n int64) {
	t.total += n
	for i := range t.locs {
		if t.locs[i].Location == location && t.locs[i].Reason == reason {
			t.locs[i].Records += n
			return
		}
	}
	t.locs = append(t.locs, connector.LocationCount{Location: location, Records: n, Reason: reason})
}

// locks answers, per bucket, whether Object Lock is on, and per version what holds it.
type locks struct {
	c       *client
	enabled map[string]bool
}

func (c *client) newLocks() *locks { return &locks{c: c, enabled: map[string]bool{}} }

func (l *locks) bucketEnabled(ctx context.Context, bucket string) (bool, error) {
	if on, ok := l.enabled[bucket]; ok {
		return on, nil
	}
	state, _, _, _, err := l.c.mc.GetObjectLockConfig(ctx, bucket)
	if err != nil && !isNotFound(err) {
		return false, err
	}
	l.enabled[bucket] = err == nil && state == "Enabled"
	return l.enabled[bucket], nil
}

// reason is why a version cannot be deleted now: a legal hold or a retention period that has not
// ended; "" when neither holds it (or the bucket has no Object Lock). It reads the lock headers of
// a HEAD of the version (one call, and the same answer GetObjectRetention and GetObjectLegalHold
// give: versitygw v1.8.0 answers GetObjectRetention with an XML root minio-go does not read).
func (l *locks) reason(ctx context.Context, bucket string, obj minio.ObjectInfo) (string, error) {
	if obj.IsDeleteMarker {
		return "", nil
	}
	on, err := l.bucketEnabled(ctx, bucket)
	if err != nil || !on {
		return "", err
	}
	st, err := l.c.mc.StatObject(ctx, bucket, obj.Key, minio.StatObjectOptions{VersionID: obj.VersionID})
	if err != nil {
		if isNotFound(err) {
			return "", nil // deleted meanwhile
		}
		return "", err
	}
	if strings.EqualFold(st.Metadata.Get("X-Amz-Object-Lock-Legal-Hold"), "ON") {
		return "Object Lock legal hold", nil
	}
	mode := st.Metadata.Get("X-Amz-Object-Lock-Mode")
	until, err := time.Parse(time.RFC3339, st.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date"))
	if mode != "" && err == nil && until.After(time.Now()) {
		return fmt.Sprintf("Object Lock retention (%s mode)", PlainCode(mode)), nil
	}
	return "", nil
}

// Erase deletes every version of the subject's objects under deleted mappings, in batches of at
// most 1000 (DeleteObjects), and counts those under retained mappings or held by Object Lock.
// Erased counts the versions (delete markers included) the store deleted, so a second Erase
// erases zero.
func (c *client) Erase(ctx context.Context, req connector.Request) (*connector.EraseResult, error) {
	const op = "erase"
	plans, err := c.plan(op, req)
	if err != nil {
		return nil, err
	}
	res := &connector.EraseResult{}
	var retained tally
	lk := c.newLocks()
	for i, p := range plans {
		earlier := earlierTargets(plans, i)
		var err error
		switch {
		case p.m.retained():
			err = c.walk(ctx, p, earlier, func(minio.ObjectInfo) error {
				retained.add(p.m.location(), p.m.reason, 1)
				return nil
			})
		case req.DryRun:
			err = c.walk(ctx, p, earlier, func(obj minio.ObjectInfo) error {
				reason, err := lk.reason(ctx, p.m.bucket, obj)
				if reason != "" {
					retained.add(p.m.location(), reason, 1)
				} else if err == nil {
					res.Erased++
				}
				return err
			})
		default:
			var n int64
			n, err = c.remove(ctx, p, earlier, lk, &retained)
			res.Erased += n
		}
		if err != nil {
			return nil, fail(ctx, op, p.m.location(), err)
		}
	}
	res.Retained, res.RetainedLocations = retained.total, retained.locs
	return res, nil
}

// remove streams the versions of plan p into DeleteObjects batches. A version the store refuses
// to delete is looked up: held by Object Lock, it is counted as retained with the lock as the
// reason; otherwise the erasure fails (and a later run finishes it).
func (c *client) remove(ctx context.Context, p planned, earlier []target, lk *locks, retained *tally) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	objs := make(chan minio.ObjectInfo, 1000)
	var walkErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(objs)
		walkErr = c.walk(ctx, p, earlier, func(obj minio.ObjectInfo) error {
			select {
			case objs <- minio.ObjectInfo{Key: obj.Key, VersionID: obj.VersionID, IsDeleteMarker: obj.IsDeleteMarker}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var removed int64
	var firstErr error
	for r := range c.mc.RemoveObjectsWithResult(ctx, p.m.bucket, objs, minio.RemoveObjectsOptions{}) {
		if firstErr != nil {
			continue // drain
		}
		if r.Err == nil {
			removed++
			continue
		}
		reason, err := lk.reason(ctx, p.m.bucket, minio.ObjectInfo{Key: r.ObjectName, VersionID: r.ObjectVersionID})
		switch {
		case err != nil:
			firstErr = err
		case reason != "":
			retained.add(p.m.location(), reason, 1)
			continue
		default:
			firstErr = r.Err
		}
		cancel()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = walkErr
	}
	return removed, firstErr
}

// Verify lists the versions of the subject's objects again: under deleted mappings they remain
// (unless Object Lock holds them: retained), under retained mappings they are retained. With
// req.Deep it also searches the key names of every object in the mapped buckets (deep.go).
func (c *client) Verify(ctx context.Context, req connector.Request) (*connector.VerifyResult, error) {
	const op = "verify"
	plans, err := c.plan(op, req)
	if err != nil {
		return nil, err
	}
	var remaining, retained tally
	lk := c.newLocks()
	for i, p := range plans {
		err := c.walk(ctx, p, earlierTargets(plans, i), func(obj minio.ObjectInfo) error {
			if p.m.retained() {
				retained.add(p.m.location(), p.m.reason, 1)
				return nil
			}
			reason, err := lk.reason(ctx, p.m.bucket, obj)
			switch {
			case err != nil:
				return err
			case reason != "":
				retained.add(p.m.location(), reason, 1)
			default:
				remaining.add(p.m.location(), "", 1)
			}
			return nil
		})
		if err != nil {
			return nil, fail(ctx, op, p.m.location(), err)
		}
	}
	res := &connector.VerifyResult{
		Remaining: remaining.total, RemainingLocations: remaining.locs,
		Retained: retained.total, RetainedLocations: retained.locs,
	}
	if req.Deep {
		if err := c.deep(ctx, req, plans, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}
