package s3

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/egress"
)

// Endpoint is how an S3-compatible endpoint is reached: an s3 store's connection, or an access
// export's destination (internal/export/deliver). Its settings are named in messages by Field.
type Endpoint struct {
	// Field prefixes the names of the settings in messages: "connection" or "destination.s3".
	Field string
	// OptIn names the setting that allows plain http://, SecretName the credentials' Secret.
	OptIn, SecretName string
	URL               string
	// Credentials is "<accessKeyId>:<secretAccessKey>"; CABundle, when set, the only trust.
	Credentials, CABundle []byte
	AllowInsecureHTTP     bool
	Egress                *egress.Policy
	// Timeout bounds dialling and waiting for each response header.
	Timeout                  time.Duration
	MaxIdleConns, MaxRetries int
}

// ErrPlainHTTP is the refusal of a plain http:// endpoint that was not opted in.
var ErrPlainHTTP = errors.New("plain http:// endpoint not opted in")

// endpointError is a refusal of an Endpoint's settings: its text names settings, never a value
// of the Secret.
type endpointError struct {
	msg   string
	cause error
}

func (e *endpointError) Error() string { return e.msg }
func (e *endpointError) Unwrap() error { return e.cause }

func (e Endpoint) refuse(msg string) error { return &endpointError{msg: msg} }

// parse accepts an http(s) URL with a host and nothing else: buckets are addressed path-style
// under it.
func (e Endpoint) parse() (*url.URL, error) {
	field := e.Field + ".url"
	u, err := url.Parse(strings.TrimSpace(e.URL))
	switch {
	case err != nil:
		return nil, e.refuse(field + " is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, e.refuse(field + " must start with https:// or http://")
	case u.Host == "" || u.Hostname() == "":
		return nil, e.refuse(field + " has no host")
	case u.User != nil:
		return nil, e.refuse(field + " must not hold credentials: put them in the Secret of " + e.Field + ".secretRef")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, e.refuse(field + " must be the endpoint alone (scheme, host, port): buckets are addressed path-style under it")
	}
	return u, nil
}

// Client builds a minio client for the endpoint, path-style, dialling through the egress policy.
// It does no I/O. A refusal of a plain http:// endpoint wraps ErrPlainHTTP.
func (e Endpoint) Client() (*minio.Client, *http.Transport, error) {
	endpoint, err := e.parse()
	if err != nil {
		return nil, nil, err
	}
	policy := e.Egress.OrDefault()
	if endpoint.Scheme == "http" && !policy.InsecureHTTPAllowed(e.AllowInsecureHTTP) {
		return nil, nil, &endpointError{cause: ErrPlainHTTP, msg: e.Field + ".url is plain http://: use https://, or opt in with " +
			e.OptIn + " (or the manager's --allow-insecure-http)"}
	}
	accessKey, secretKey, found := strings.Cut(strings.TrimSpace(string(e.Credentials)), ":")
	if !found || accessKey == "" || secretKey == "" {
		// Never quote the Secret, not even a part of it.
		return nil, nil, e.refuse(e.SecretName + " must be <accessKeyId>:<secretAccessKey>")
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(strings.TrimSpace(string(e.CABundle))) > 0 {
		if endpoint.Scheme != "https" {
			return nil, nil, e.refuse("a CA bundle is set but " + e.Field + ".url is not https://: nothing would be verified")
		}
		// Only the bundle: a private endpoint's certificate must chain to the CA its owner named.
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(e.CABundle) {
			return nil, nil, e.refuse("the CA bundle of " + e.Field + ".caSecretRef holds no PEM certificate")
		}
		tlsConfig.RootCAs = pool
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           connector.DialThrough(policy, e.Timeout),
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   min(e.Timeout, 10*time.Second),
		ResponseHeaderTimeout: e.Timeout,
		MaxIdleConns:          e.MaxIdleConns,
		MaxIdleConnsPerHost:   e.MaxIdleConns,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	mc, err := minio.New(endpoint.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure:       endpoint.Scheme == "https",
		Transport:    transport,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   e.MaxRetries,
	})
	if err != nil {
		return nil, nil, e.refuse("the S3 client could not be built from " + e.Field + ".url")
	}
	return mc, transport, nil
}
