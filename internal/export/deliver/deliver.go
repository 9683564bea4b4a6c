// Package deliver sends an access export's files to an S3-compatible bucket (spec.destination.s3 of
// an AccessRequest), signs download links for them, and deletes every version of them when the
// export expires, then lists what is left to prove it.
//
// Files are streamed: each is written into an io.Pipe that the upload reads in parts of PartSize,
// hashing on the way, so nothing is held beyond what the renderer produces and one part. Errors
// carry the S3 error code and HTTP status or the kind of network error only, never a URL (a
// presigned URL is a credential) nor server text.
package deliver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/s3"
	"github.com/dsr-operator/dsr-operator/internal/egress"
)

// PartSize is the part of a multipart upload held in memory at a time (minio-go's smallest).
const PartSize = 16 << 20

// MaxLinkLifetime is the longest a SigV4 presigned link may be valid (7 days).
const MaxLinkLifetime = 7 * 24 * time.Hour

// timeout bounds dialling and waiting for each response header.
const timeout = 30 * time.Second

// Target is a request's folder in the destination bucket: <prefix>/<request uid>/.
type Target struct {
	mc        *minio.Client
	transport *http.Transport
	// Bucket and Prefix (ending in "/") the files go under.
	Bucket, Prefix string
}

// Config is what a Target is built from: the destination, the values of its Secrets, the
// manager's egress policy and the request's UID.
type Config struct {
	Destination *privacyv1alpha1.S3Destination
	// Credentials is "<accessKeyId>:<secretAccessKey>".
	Credentials []byte
	// CABundle is the PEM bundle of caSecretRef, if any.
	CABundle []byte
	// Egress is the policy every connection is checked against (nil: egress.Default()).
	Egress     *egress.Policy
	RequestUID string
}

// New builds a Target. It does no I/O. Its errors are safe for status: they quote no Secret.
func New(cfg Config) (*Target, error) {
	d := cfg.Destination
	if cfg.RequestUID == "" || strings.ContainsAny(cfg.RequestUID, "/\\") {
		return nil, errors.New("the request has no usable UID")
	}
	mc, transport, err := s3.Endpoint{Field: "destination.s3", OptIn: "destination.s3.allowInsecureHTTP", SecretName: "the destination's secret",
		URL: d.URL, Credentials: cfg.Credentials, CABundle: cfg.CABundle, AllowInsecureHTTP: d.AllowInsecureHTTP,
		Egress: cfg.Egress, Timeout: timeout, MaxIdleConns: 4, MaxRetries: 2}.Client()
	if errors.Is(err, s3.ErrPlainHTTP) {
		return nil, &connector.Error{Kind: connector.KindEgressDenied, Op: "connect", Hint: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	return &Target{mc: mc, transport: transport, Bucket: d.Bucket, Prefix: FolderOf(d.Prefix, cfg.RequestUID)}, nil
}

// FolderOf is the request's folder: <prefix>/<uid>/ (or <uid>/ without a prefix).
func FolderOf(prefix, uid string) string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return uid + "/"
	}
	return prefix + "/" + uid + "/"
}

// Close lets the idle connections go.
func (t *Target) Close() { t.transport.CloseIdleConnections() }

// Uploaded is one file in the bucket.
type Uploaded struct {
	Name        string
	Object      string
	ContentType string
	SHA256      string
	Bytes       int64
}

// Upload streams what write produces to <folder>/<name>, hashing it on the way. write is run in
// its own goroutine and must return once its writes fail.
func (t *Target) Upload(ctx context.Context, name, contentType string, write func(io.Writer) error) (*Uploaded, error) {
	pr, pw := io.Pipe()
	h := &hashCounter{h: sha256.New()}
	done := make(chan error, 1)
	go func() {
		err := write(io.MultiWriter(pw, h))
		pw.CloseWithError(err) // nil closes it cleanly
		done <- err
	}()
	object := t.Prefix + name
	_, err := t.mc.PutObject(ctx, t.Bucket, object, pr, -1, minio.PutObjectOptions{
		ContentType: contentType, PartSize: PartSize,
		// The person's browser shows the file rather than guessing.
		ContentDisposition: fmt.Sprintf("inline; filename=%q", name),
	})
	// Unblock a writer the upload stopped reading from, then wait for it.
	pr.CloseWithError(errors.New("upload ended"))
	writeErr := <-done
	if writeErr != nil && err == nil {
		err = writeErr
	}
	if err != nil {
		return nil, describe(ctx, "upload", err)
	}
	return &Uploaded{Name: name, Object: object, ContentType: contentType,
		SHA256: "sha256:" + hex.EncodeToString(h.h.Sum(nil)), Bytes: h.n}, nil
}

type hashCounter struct {
	h hash.Hash
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// Link signs a GET link to the object, valid for lifetime (at most MaxLinkLifetime). The link is a
// credential: callers put it in the export Secret only.
func (t *Target) Link(ctx context.Context, object string, lifetime time.Duration) (string, time.Duration, error) {
	lifetime = min(max(lifetime, time.Second), MaxLinkLifetime)
	u, err := t.mc.PresignedGetObject(ctx, t.Bucket, object, lifetime, nil)
	if err != nil {
		return "", 0, describe(ctx, "sign a link", err)
	}
	return u.String(), lifetime, nil
}

// Expiry is what an expiry did.
type Expiry struct {
	// Removed counts the versions (delete markers included) deleted.
	Removed int64
	// Remaining counts what a listing after the deletion still found under the folder.
	Remaining int64
}

// Expire deletes every version under the folder, in batches of at most 1000, then lists the
// versions again: Remaining is what that listing found.
func (t *Target) Expire(ctx context.Context) (*Expiry, error) {
	res := &Expiry{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	objs := make(chan minio.ObjectInfo, 1000)
	listErr := make(chan error, 1)
	go func() {
		defer close(objs)
		listErr <- t.walk(ctx, func(o minio.ObjectInfo) error {
			select {
			case objs <- minio.ObjectInfo{Key: o.Key, VersionID: o.VersionID}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var firstErr error
	for r := range t.mc.RemoveObjectsWithResult(ctx, t.Bucket, objs, minio.RemoveObjectsOptions{}) {
		if r.Err != nil {
			if firstErr == nil {
				firstErr = r.Err
				cancel()
			}
			continue
		}
		res.Removed++
	}
	if err := <-listErr; firstErr == nil && err != nil {
		firstErr = err
	}
	if firstErr != nil {
		return res, describe(ctx, "delete", firstErr)
	}
	err := t.walk(ctx, func(minio.ObjectInfo) error {
		res.Remaining++
		return nil
	})
	if err != nil {
		return res, describe(ctx, "verify the deletion", err)
	}
	return res, nil
}

// walk lists every version under the folder, skipping the repeat versitygw's posix backend
// (v1.8.0) puts at the start of a page.
func (t *Target) walk(ctx context.Context, fn func(minio.ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lastKey, lastVersion string
	for o := range t.mc.ListObjects(ctx, t.Bucket, minio.ListObjectsOptions{Prefix: t.Prefix, Recursive: true, WithVersions: true, MaxKeys: 1000}) {
		if o.Err != nil {
			return o.Err
		}
		if o.Key == lastKey && o.VersionID == lastVersion {
			continue
		}
		lastKey, lastVersion = o.Key, o.VersionID
		if err := fn(o); err != nil {
			return err
		}
	}
	return ctx.Err()
}
