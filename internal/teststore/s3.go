package teststore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// VersityGWEnv names an explicit versitygw binary; otherwise bin/versitygw of the repository
// (hack/build-versitygw.sh, run by `make test`) and then PATH are searched.
const VersityGWEnv = "VERSITYGW_BIN"

// S3 is a throwaway S3 server: versitygw's posix backend over a fresh directory on a free loopback
// port, plain http, path-style. Buckets are directories; versioned buckets keep their old
// versions under a separate versioning directory, and object metadata (Object Lock retention and
// legal holds included) lives in extended attributes. Stop and Start keep port and data.
type S3 struct {
	Host      string
	Port      int
	AccessKey string
	SecretKey string

	// CAPEM is the PEM certificate that signed the server's certificate when it serves https
	// (StartS3TLS); nil for plain http.
	CAPEM []byte

	lifecycle
}

// StartS3 starts versitygw on plain http with fresh root credentials and waits until it answers
// a signed request.
func StartS3(ctx context.Context) (*S3, error) { return startS3(ctx, false) }

// StartS3TLS is StartS3 serving https with a certificate for 127.0.0.1 signed by a fresh CA (CAPEM).
func StartS3TLS(ctx context.Context) (*S3, error) { return startS3(ctx, true) }

func startS3(ctx context.Context, withTLS bool) (_ *S3, err error) {
	bin, err := findVersityGW()
	if err != nil {
		return nil, err
	}
	base, err := makeBaseDir("s3")
	if err != nil {
		return nil, err
	}
	s := &S3{Host: "127.0.0.1", AccessKey: "AK" + randomHex(8), SecretKey: randomHex(20)}
	s.baseDir, s.relaunch = base, s.launch
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	for _, d := range []string{s.dataDir(), s.versionsDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("teststore: create s3 directory: %w", err)
		}
	}
	if withTLS {
		if s.CAPEM, err = writeServerCert(base); err != nil {
			return nil, err
		}
	}
	s.proc = &process{name: "versitygw", bin: bin, dir: base, logPath: filepath.Join(base, "versitygw.log")}
	port, err := startWithPortRetry(ctx, func(ctx context.Context, port int) (*process, error) {
		s.Port = port
		return s.proc, s.launch(ctx)
	})
	if err != nil {
		return nil, err
	}
	s.Port = port
	return s, nil
}

// findVersityGW looks in $VERSITYGW_BIN, bin/versitygw of the enclosing repository, then PATH.
func findVersityGW() (string, error) {
	if p := os.Getenv(VersityGWEnv); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("teststore: %s=%q is not an executable", VersityGWEnv, p)
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				if p := filepath.Join(dir, "bin", "versitygw"); isExecutable(p) {
					return p, nil
				}
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if p, err := findBinary("versitygw", "versitygw"); err == nil {
		return p, nil
	}
	return "", errors.New("teststore: versitygw not found in $VERSITYGW_BIN, bin/ of the repository or PATH; " +
		"build it with `make versitygw` (hack/build-versitygw.sh, about 3 minutes, once)")
}

func (s *S3) dataDir() string     { return filepath.Join(s.baseDir, "data") }
func (s *S3) versionsDir() string { return filepath.Join(s.baseDir, "versions") }

func (s *S3) launch(ctx context.Context) error {
	s.proc.args = []string{
		"--port", "127.0.0.1:" + strconv.Itoa(s.Port),
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", "us-east-1",
		"--quiet",
	}
	if s.CAPEM != nil {
		s.proc.args = append(s.proc.args, "--cert", filepath.Join(s.baseDir, "tls.crt"), "--key", filepath.Join(s.baseDir, "tls.key"))
	}
	s.proc.args = append(s.proc.args,
		"posix",
		"--versioning-dir", s.versionsDir(),
		s.dataDir(),
	)
	return s.proc.startAndWait(ctx, func(ctx context.Context) error {
		client, err := s.Client()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err = client.ListBuckets(ctx)
		return err
	})
}

// Endpoint is the server's http:// (https:// with TLS) URL, the connection.url of an s3 store.
func (s *S3) Endpoint() string {
	scheme := "http"
	if s.CAPEM != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s:%d", scheme, s.Host, s.Port)
}

// Secret is the connection Secret of an s3 store: "<accessKeyId>:<secretAccessKey>".
func (s *S3) Secret() string { return s.AccessKey + ":" + s.SecretKey }

// Client is a root client for seeding and inspecting buckets in tests. It does not retry, so a
// probe of a stopped server fails at once.
func (s *S3) Client() (*minio.Client, error) {
	var transport http.RoundTripper
	if s.CAPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.CAPEM)
		transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return minio.New(fmt.Sprintf("%s:%d", s.Host, s.Port), &minio.Options{
		Secure:       s.CAPEM != nil,
		Transport:    transport,
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
}

// CreateBucket creates a bucket named uniquely after prefix (lower-case letters, digits and
// dashes), with versioning turned on when versioned, and Object Lock (which implies versioning)
// when locked. It returns the bucket's name.
func (s *S3) CreateBucket(ctx context.Context, prefix string, versioned, locked bool) (string, error) {
	client, err := s.Client()
	if err != nil {
		return "", err
	}
	name := prefix + "-" + randomHex(6)
	if err := client.MakeBucket(ctx, name, minio.MakeBucketOptions{ObjectLocking: locked}); err != nil {
		return "", fmt.Errorf("teststore: create bucket: %w", err)
	}
	if versioned && !locked {
		if err := client.EnableVersioning(ctx, name); err != nil {
			return "", fmt.Errorf("teststore: enable versioning: %w", err)
		}
	}
	return name, nil
}

// writeServerCert writes tls.crt and tls.key for 127.0.0.1, signed by a fresh CA, into dir and
// returns the CA's PEM certificate.
func writeServerCert(dir string) ([]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "teststore CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}
