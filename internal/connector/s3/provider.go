// Package s3 is the connector for S3-compatible object stores (AWS S3, MinIO, Ceph RGW,
// versitygw). A mapping names objects by bucket and key with {identifier} placeholders; a key
// ending in "/" is a prefix. Erasure removes every version of each object (a delete marker alone
// leaves the data there); versions held by Object Lock are reported retained with the lock as the
// reason. Listing and deletion stream in pages of at most 1000 keys, so memory stays bounded.
package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// DefaultTimeout bounds dialling and each call when the spec sets no connection timeout.
const DefaultTimeout = 30 * time.Second

func init() {
	connector.Register(privacyv1alpha1.StoreTypeS3, NewProvider())
}

// Provider builds S3 clients.
type Provider struct{}

// NewProvider returns the S3 provider.
func NewProvider() *Provider { return &Provider{} }

// IdentifierNames returns the placeholders of the object keys, in spec order, repeats included.
func (p *Provider) IdentifierNames(spec *privacyv1alpha1.DataStoreSpec) (names []string, acceptsAny bool) {
	for _, o := range spec.Objects {
		names = append(names, connector.TemplateNames(o.Key)...)
	}
	return names, false
}

// ValidateSpec checks buckets, keys and actions without I/O.
func (p *Provider) ValidateSpec(spec *privacyv1alpha1.DataStoreSpec) error {
	const op = "validate"
	if spec == nil {
		return connector.Errorf(connector.KindMapping, op, "no spec")
	}
	if spec.Type != privacyv1alpha1.StoreTypeS3 {
		return connector.Errorf(connector.KindMapping, op, "store type %q is not %q", spec.Type, privacyv1alpha1.StoreTypeS3)
	}
	if len(spec.Tables) > 0 || len(spec.Keys) > 0 {
		return connector.Errorf(connector.KindMapping, op, "an s3 store takes objects, not tables or keys")
	}
	if len(spec.Objects) == 0 {
		return connector.Errorf(connector.KindMapping, op, "an s3 store needs at least one object mapping")
	}
	var problems []string
	seen := map[string]bool{}
	for i, o := range spec.Objects {
		if !bucketRE.MatchString(o.Bucket) || strings.Contains(o.Bucket, "..") {
			problems = append(problems, fmt.Sprintf("objects[%d]: bucket %q is not a valid bucket name", i, o.Bucket))
		}
		if _, err := parseKey(o.Key); err != nil {
			problems = append(problems, fmt.Sprintf("objects[%d]: %v", i, err))
			continue
		}
		if id := o.Bucket + "/" + o.Key; seen[id] {
			problems = append(problems, fmt.Sprintf("object key %q of bucket %q is listed twice", o.Key, o.Bucket))
		} else {
			seen[id] = true
		}
		switch o.Action {
		case privacyv1alpha1.ObjectActionDelete:
		case privacyv1alpha1.ObjectActionRetain:
			if strings.TrimSpace(o.RetainReason) == "" {
				problems = append(problems, fmt.Sprintf("object key %q: retain needs a retainReason", o.Key))
			}
		default:
			problems = append(problems, fmt.Sprintf("object key %q: action %q is neither delete nor retain", o.Key, o.Action))
		}
	}
	if len(problems) > 0 {
		return connector.Hinted(connector.KindMapping, op, strings.Join(problems, "; "))
	}
	return nil
}

// NewClient builds a client for the endpoint of cfg. It does no I/O.
func (p *Provider) NewClient(_ context.Context, cfg connector.Config) (connector.Client, error) {
	const op = "connect"
	if err := p.ValidateSpec(cfg.Spec); err != nil {
		return nil, err
	}
	timeout := DefaultTimeout
	if t := cfg.Spec.Connection.Timeout; t != nil && t.Duration > 0 {
		timeout = t.Duration
	}
	mc, transport, err := Endpoint{Field: "connection", OptIn: "spec.connection.allowInsecureHTTP", SecretName: "the connection secret",
		URL: cfg.Spec.Connection.URL, Credentials: cfg.Secret, CABundle: cfg.CABundle, AllowInsecureHTTP: cfg.Spec.Connection.AllowInsecureHTTP,
		Egress: cfg.Egress, Timeout: timeout, MaxIdleConns: 8,
		// A few retries ride out a restart; more would hold a request for minutes.
		MaxRetries: 3}.Client()
	if errors.Is(err, ErrPlainHTTP) {
		return nil, connector.Hinted(connector.KindEgressDenied, op, err.Error())
	}
	if err != nil {
		return nil, connector.Hinted(connector.KindInvalid, op, err.Error())
	}
	c := &client{mc: mc, transport: transport, norm: normalize.Normalizer{Region: cfg.PhoneRegion()}}
	for _, o := range cfg.Spec.Objects {
		t, _ := parseKey(o.Key) // validated above
		c.mappings = append(c.mappings, mapping{bucket: o.Bucket, key: t, action: o.Action, reason: o.RetainReason})
	}
	return c, nil
}

type mapping struct {
	bucket string
	key    *keyTemplate
	action privacyv1alpha1.ObjectAction
	reason string
}

func (m *mapping) retained() bool { return m.action == privacyv1alpha1.ObjectActionRetain }

// location names the mapping in results: bucket and key template, never a value.
func (m *mapping) location() string { return m.bucket + "/" + m.key.source }

type client struct {
	mc        *minio.Client
	transport *http.Transport
	mappings  []mapping
	// norm puts email and phone identifiers in the form keys name (see keyIdentifiers).
	norm normalize.Normalizer
}

func (c *client) Close() error {
	c.transport.CloseIdleConnections()
	return nil
}
