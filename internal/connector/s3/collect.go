package s3

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

const (
	// MaxInlineBytes: an object up to this size has its content in the access export.
	MaxInlineBytes = 64 << 10
	// MaxInlineTotal bounds the content one Collect inlines; later objects are listed without it.
	// An export kept in a Secret is bounded again by what a Secret holds (export.MaxBytes).
	MaxInlineTotal = 4 << 20
	// MaxCollectObjects bounds the object versions one Collect lists.
	MaxCollectObjects = 100_000
	// MaxDeepScanKeys bounds the object versions a deep verification lists per bucket.
	MaxDeepScanKeys = 1_000_000
)

// Collect lists every version of the subject's objects (not delete markers) with key, version,
// size, last modified time and content type, and carries the content of small objects: as text
// when it is valid UTF-8, else base64.
func (c *client) Collect(ctx context.Context, req connector.Request) (*connector.Collection, error) {
	return connector.CollectAll(ctx, c, req)
}

// CollectTo hands each version's record to emit as it is listed (connector.CollectStreamer).
func (c *client) CollectTo(ctx context.Context, req connector.Request, emit func(connector.Record) error) (bool, error) {
	const op = "collect"
	plans, err := c.plan(op, req)
	if err != nil {
		return false, err
	}
	budget := MaxInlineTotal
	n := 0
	var emitErr error
	for i, p := range plans {
		err := c.walk(ctx, p, earlierTargets(plans, i), func(obj minio.ObjectInfo) error {
			if obj.IsDeleteMarker {
				return nil
			}
			if n >= MaxCollectObjects {
				return refused(op, p.m.location(), fmt.Errorf("the subject has more than %d object versions in the mapped keys: too many for one access export", MaxCollectObjects))
			}
			rec, err := c.record(ctx, p.m, obj, &budget)
			if err != nil {
				return err
			}
			n++
			if emitErr = emit(rec); emitErr != nil {
				return emitErr
			}
			return nil
		})
		if emitErr != nil {
			return false, emitErr // the caller's own error
		}
		if err != nil {
			return false, fail(ctx, op, p.m.location(), err)
		}
	}
	return false, nil
}

// record describes one version, reading its content when it fits the budget.
func (c *client) record(ctx context.Context, m *mapping, obj minio.ObjectInfo, budget *int) (connector.Record, error) {
	data := map[string]any{
		"bucket":       m.bucket,
		"key":          obj.Key,
		"size":         obj.Size,
		"lastModified": obj.LastModified.UTC(),
		"latest":       obj.IsLatest,
	}
	if obj.VersionID != "" && obj.VersionID != "null" {
		data["versionId"] = obj.VersionID
	}
	rec := connector.Record{Location: m.location(), Key: obj.Key, Data: data}
	if obj.Size > MaxInlineBytes || obj.Size > int64(*budget) {
		st, err := c.mc.StatObject(ctx, m.bucket, obj.Key, minio.StatObjectOptions{VersionID: versionID(obj)})
		if err != nil {
			return rec, err
		}
		data["contentType"] = st.ContentType
		data["contentOmitted"] = fmt.Sprintf("larger than the %d bytes an export carries inline", min(int64(MaxInlineBytes), int64(*budget)))
		return rec, nil
	}
	o, err := c.mc.GetObject(ctx, m.bucket, obj.Key, minio.GetObjectOptions{VersionID: versionID(obj)})
	if err != nil {
		return rec, err
	}
	defer o.Close()
	st, err := o.Stat()
	if err != nil {
		return rec, err
	}
	data["contentType"] = st.ContentType
	body, err := io.ReadAll(io.LimitReader(o, MaxInlineBytes+1))
	if err != nil {
		return rec, err
	}
	*budget -= len(body)
	if utf8.Valid(body) {
		data["content"] = string(body)
	} else {
		data["contentBase64"] = base64.StdEncoding.EncodeToString(body)
	}
	return rec, nil
}

// versionID is the version to address: none for the "null" version of an unversioned object.
func versionID(obj minio.ObjectInfo) string {
	if obj.VersionID == "null" {
		return ""
	}
	return obj.VersionID
}

// deep lists every object version of every mapped bucket and reports, per bucket, those outside
// the subject's mapped keys whose key name holds one of the subject's values (direct or derived)
// as unmapped findings. Object contents are not searched: that would read the whole bucket.
func (c *client) deep(ctx context.Context, req connector.Request, plans []planned, res *connector.VerifyResult) error {
	const op = "verify"
	var all []target
	for _, p := range plans {
		all = append(all, p.targets...)
	}
	var values []string
	for name, vals := range req.AllValues() {
		for _, v := range vals {
			values = append(values, v)
			if k := c.keyIdentifiers(connector.Identifiers{name: v})[name]; k != v {
				values = append(values, k)
			}
		}
	}
	buckets := map[string]bool{}
	for _, m := range c.mappings {
		buckets[m.bucket] = true
	}
	names := make([]string, 0, len(buckets))
	for b := range buckets {
		names = append(names, b)
	}
	sort.Strings(names)
	for _, bucket := range names {
		n, err := c.deepBucket(ctx, bucket, all, values)
		if err != nil {
			return fail(ctx, op, bucket, err)
		}
		if n > 0 {
			res.Unmapped += n
			res.UnmappedLocations = append(res.UnmappedLocations, connector.LocationCount{Location: bucket + " (key names)", Records: n})
		}
	}
	return nil
}

func (c *client) deepBucket(ctx context.Context, bucket string, covered []target, values []string) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var hits int64
	scanned := 0
	var last versionRef
	for obj := range c.mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true, MaxKeys: 1000}) {
		if obj.Err != nil {
			return 0, obj.Err
		}
		if last.repeats(obj) {
			continue
		}
		if scanned++; scanned > MaxDeepScanKeys {
			return 0, refused("verify", bucket, fmt.Errorf("deep verification stopped after listing %d object versions, its limit: verify without deep", MaxDeepScanKeys))
		}
		if coveredBy(covered, bucket, obj.Key) {
			continue
		}
		for _, v := range values {
			if connector.NameHolds(obj.Key, v) {
				hits++
				break
			}
		}
	}
	return hits, ctx.Err()
}

// Check confirms that every mapped bucket exists and can be listed with versions, and warns about
// buckets under Object Lock, whose locked versions an erasure reports as retained.
func (c *client) Check(ctx context.Context) (*connector.CheckResult, error) {
	const op = "check"
	res := &connector.CheckResult{}
	seen := map[string]bool{}
	lk := c.newLocks()
	for _, m := range c.mappings {
		if seen[m.bucket] {
			continue
		}
		seen[m.bucket] = true
		ok, err := c.mc.BucketExists(ctx, m.bucket)
		if err != nil {
			return nil, fail(ctx, op, m.bucket, err)
		}
		if !ok {
			return nil, connector.Hinted(connector.KindMapping, op, fmt.Sprintf("bucket %q does not exist", m.bucket))
		}
		if err := c.probeList(ctx, m.bucket); err != nil {
			return nil, fail(ctx, op, m.bucket, err)
		}
		locked, err := lk.bucketEnabled(ctx, m.bucket)
		if err != nil {
			return nil, fail(ctx, op, m.bucket, err)
		}
		if locked {
			res.Warnings = append(res.Warnings, fmt.Sprintf("bucket %q has Object Lock: versions under a retention period or legal hold are reported retained and erased only once the lock ends", m.bucket))
		}
	}
	return res, nil
}

// probeList lists at most one version under a prefix no subject has, to test the permission.
func (c *client) probeList(ctx context.Context, bucket string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range c.mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: strings.Repeat("~", 8) + "dsr-probe/", WithVersions: true, MaxKeys: 1}) {
		return obj.Err
	}
	return nil
}
