package httpstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/export"
)

func init() {
	connector.Register(privacyv1alpha1.StoreTypeHTTP, NewProvider(Options{}))
}

// ProtocolVersion is the version of the connector protocol this client speaks.
const ProtocolVersion = "v1"

// Defaults of Options and of the spec.
const (
	// DefaultMaxResponseBytes bounds the answers of check, erase and verify.
	DefaultMaxResponseBytes = 1 << 20
	// DefaultMaxCollectBytes bounds the answer of collect, which holds the subject's records:
	// no more than an export can hold, so that a service cannot make the operator buffer what
	// would be refused anyway (16 requests x 8 stores of it are in memory at once).
	DefaultMaxCollectBytes = export.MaxBytes
	// DefaultTimeout bounds a call when spec.connection.timeout is not set.
	DefaultTimeout = 30 * time.Second
)

// Options tune the provider; the zero value takes the defaults.
type Options struct {
	// MaxResponseBytes bounds the body of an answer to check, erase and verify, and of an
	// error answer (default DefaultMaxResponseBytes).
	MaxResponseBytes int64
	// MaxCollectBytes bounds the body of an answer to collect (default DefaultMaxCollectBytes).
	MaxCollectBytes int64
}

func (o Options) withDefaults() Options {
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.MaxCollectBytes <= 0 {
		o.MaxCollectBytes = DefaultMaxCollectBytes
	}
	return o
}

// Provider is the connector.Provider of http stores.
type Provider struct {
	Options Options
}

var _ connector.Provider = (*Provider)(nil)

// NewProvider returns an http provider with opts.
func NewProvider(opts Options) *Provider {
	return &Provider{Options: opts}
}

// ValidateSpec checks that the store has a usable base URL and no SQL or Redis mapping: an http
// service owns its mapping.
func (p *Provider) ValidateSpec(spec *privacyv1alpha1.DataStoreSpec) error {
	const op = "validate"
	if spec == nil {
		return connector.Errorf(connector.KindMapping, op, "no spec")
	}
	if spec.Type != privacyv1alpha1.StoreTypeHTTP {
		return connector.Errorf(connector.KindMapping, op, "store type %q is not %q", spec.Type, privacyv1alpha1.StoreTypeHTTP)
	}
	var problems []string
	if len(spec.Tables) > 0 {
		problems = append(problems, "an http store takes no tables: the service maps its own data")
	}
	if len(spec.Keys) > 0 {
		problems = append(problems, "an http store takes no keys: the service maps its own data")
	}
	if _, err := ParseBaseURL(spec.Connection.URL); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return connector.Errorf(connector.KindMapping, op, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// ParseBaseURL checks connection.url: http or https, a host, no credentials, no query or
// fragment (the endpoints are appended to its path). Its errors never quote the URL, which
// might hold credentials after all.
func ParseBaseURL(raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("connection.url is required for an http store")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("connection.url is not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("connection.url must start with https:// or http://")
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("connection.url has no host")
	case u.User != nil:
		return nil, fmt.Errorf("connection.url must not hold credentials: put the bearer token in the Secret of connection.secretRef")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, fmt.Errorf("connection.url must not have a query")
	case u.Fragment != "":
		return nil, fmt.Errorf("connection.url must not have a fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, nil
}

// NewClient builds a client for the service of cfg. It does no I/O: Check is the first call
// that reaches the service.
func (p *Provider) NewClient(_ context.Context, cfg connector.Config) (connector.Client, error) {
	const op = "connect"
	if cfg.Spec == nil {
		return nil, connector.Errorf(connector.KindInvalid, op, "no spec")
	}
	if err := p.ValidateSpec(cfg.Spec); err != nil {
		var ce *connector.Error
		if errors.As(err, &ce) {
			err = ce.Err
		}
		return nil, connector.Wrap(connector.KindInvalid, op, err)
	}
	base, _ := ParseBaseURL(cfg.Spec.Connection.URL)
	policy := cfg.Egress.OrDefault()
	if base.Scheme == "http" && !policy.InsecureHTTPAllowed(cfg.Spec.Connection.AllowInsecureHTTP) {
		// Refused before any connection: the token and the identifiers would cross in clear.
		return nil, connector.Errorf(connector.KindEgressDenied, op,
			"connection.url is plain http://: use https://, or opt in with spec.connection.allowInsecureHTTP (or the manager's --allow-insecure-http)")
	}
	token := strings.TrimSpace(string(cfg.Secret))
	if !isHeaderToken(token) {
		// Never quote the token, not even a part of it.
		return nil, connector.Errorf(connector.KindInvalid, op, "the bearer token in the Secret holds characters an Authorization header cannot carry (spaces, control or non-ASCII characters)")
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	hasCABundle := len(strings.TrimSpace(string(cfg.CABundle))) > 0
	if hasCABundle {
		if base.Scheme != "https" {
			return nil, connector.Errorf(connector.KindInvalid, op, "a CA bundle is set but connection.url is not https://: nothing would be verified")
		}
		// Only the bundle: a private service's certificate must chain to the CA its owner
		// named, not to any public CA that could be made to issue one for its name.
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CABundle) {
			return nil, connector.Errorf(connector.KindInvalid, op, "the CA bundle of connection.caSecretRef holds no PEM certificate")
		}
		tlsConfig.RootCAs = pool
	}
	timeout := DefaultTimeout
	if t := cfg.Spec.Connection.Timeout; t != nil && t.Duration > 0 {
		timeout = t.Duration
	}
	transport := &http.Transport{
		// Behind a proxy the policy checks the proxy's address: the proxy then decides.
		Proxy: http.ProxyFromEnvironment,
		// Every connection is checked against the egress policy after resolution.
		DialContext:           connector.DialThrough(policy, timeout),
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   min(timeout, 10*time.Second),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          8,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	opts := p.Options.withDefaults()
	return &Client{
		name:        cfg.Name,
		base:        base,
		token:       token,
		hasCABundle: hasCABundle,
		transport:   transport,
		http: &http.Client{
			Transport: transport,
			Timeout:   timeout,
			// A redirect would resend the subject's identifiers to wherever it points, and Go
			// drops the Authorization header on the way to another host: neither is wanted.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout: timeout,
		opts:    opts,
		region:  cfg.PhoneRegion(),
	}, nil
}

// isHeaderToken reports whether a token can go into an Authorization header unchanged: visible
// ASCII only. The empty token means no header.
func isHeaderToken(token string) bool {
	for i := 0; i < len(token); i++ {
		if token[i] < 0x21 || token[i] > 0x7e {
			return false
		}
	}
	return true
}

// isLoopback reports whether host names this machine, where plain http is not on the wire.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
