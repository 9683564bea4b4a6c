package stores

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/secretref"
)

// DefaultRefreshAfter is how long a pooled client is trusted before its Secret is read again to
// see whether the credentials changed.
const DefaultRefreshAfter = 30 * time.Second

// Pool keeps one long-lived connector client per store and rebuilds it when the store's spec or
// its Secrets change. Secrets are read with a direct GET, never through a cache.
type Pool struct {
	reader            client.Reader
	operatorNamespace string
	salt              []byte
	refreshAfter      time.Duration
	now               func() time.Time

	mu      sync.Mutex
	entries map[Ref]*entry
}

type entry struct {
	mu          sync.Mutex
	client      connector.Client
	fingerprint string
	checkedAt   time.Time
}

// NewPool returns a pool that reads Secrets with reader (an API reader) and looks for the Secrets
// of ClusterDataStores in operatorNamespace. salt salts the "hash" mask strategy.
func NewPool(reader client.Reader, operatorNamespace string, salt []byte) *Pool {
	return &Pool{reader: reader, operatorNamespace: operatorNamespace, salt: salt,
		refreshAfter: DefaultRefreshAfter, now: time.Now, entries: map[Ref]*entry{}}
}

// SecretError says a store's Secret is missing or lacks its key: the store's owner must fix it.
type SecretError struct {
	Msg string
	Err error // the cause, when there is one worth telling apart (secretref.NotOptedInError)
}

func (e *SecretError) Error() string { return e.Msg }
func (e *SecretError) Unwrap() error { return e.Err }

// SecretNamespace is where a store's Secrets live.
func (p *Pool) SecretNamespace(ref Ref) string {
	if ref.Kind == privacyv1alpha1.KindClusterDataStore {
		return p.operatorNamespace
	}
	return ref.Namespace
}

// Client returns the pooled client of s. fresh forces a re-read of the store's Secrets (the store
// controller passes it, so that a fixed password is seen at once).
func (p *Pool) Client(ctx context.Context, s *Store, fresh bool) (connector.Client, error) {
	p.mu.Lock()
	e := p.entries[s.Ref]
	if e == nil {
		e = &entry{}
		p.entries[s.Ref] = e
	}
	p.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := p.now()
	genPrint := fmt.Sprintf("%s/%d", s.UID, s.Generation)
	if e.client != nil && !fresh && now.Sub(e.checkedAt) < p.refreshAfter && prefix(e.fingerprint, genPrint) {
		return e.client, nil
	}
	cfg, secretPrint, err := p.config(ctx, s)
	if err != nil {
		return nil, err
	}
	fingerprint := genPrint + "|" + secretPrint
	if e.client != nil && e.fingerprint == fingerprint {
		e.checkedAt = now
		return e.client, nil
	}
	provider, err := connector.ProviderFor(s.Spec.Type)
	if err != nil {
		return nil, err
	}
	if err := provider.ValidateSpec(s.Spec); err != nil {
		return nil, err
	}
	c, err := provider.NewClient(ctx, *cfg)
	if err != nil {
		return nil, err
	}
	if e.client != nil {
		_ = e.client.Close()
	}
	e.client, e.fingerprint, e.checkedAt = c, fingerprint, now
	return c, nil
}

func prefix(fingerprint, genPrint string) bool {
	return len(fingerprint) > len(genPrint) && fingerprint[:len(genPrint)] == genPrint && fingerprint[len(genPrint)] == '|'
}

// Forget closes and drops the client of a store that was deleted.
func (p *Pool) Forget(ref Ref) {
	p.mu.Lock()
	e := p.entries[ref]
	delete(p.entries, ref)
	p.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		if e.client != nil {
			_ = e.client.Close()
		}
		e.mu.Unlock()
	}
}

// Close closes every client.
func (p *Pool) Close() {
	p.mu.Lock()
	refs := make([]Ref, 0, len(p.entries))
	for r := range p.entries {
		refs = append(refs, r)
	}
	p.mu.Unlock()
	for _, r := range refs {
		p.Forget(r)
	}
}

func (p *Pool) config(ctx context.Context, s *Store) (*connector.Config, string, error) {
	cfg := &connector.Config{Name: s.Ref.String(), Spec: s.Spec, HashSalt: p.salt}
	ns := p.SecretNamespace(s.Ref)
	print := ""
	if ref := s.Spec.Connection.SecretRef; ref != nil {
		value, rv, err := p.secretValue(ctx, ns, ref.Name, ref.Key, "connection")
		if err != nil {
			return nil, "", err
		}
		cfg.Secret, print = value, rv
	}
	if ref := s.Spec.Connection.CASecretRef; ref != nil {
		value, rv, err := p.secretValue(ctx, ns, ref.Name, ref.Key, "CA bundle")
		if err != nil {
			return nil, "", err
		}
		cfg.CABundle, print = value, print+"|"+rv
	}
	return cfg, print, nil
}

func (p *Pool) secretValue(ctx context.Context, namespace, name, key, what string) ([]byte, string, error) {
	secret, err := secretref.Get(ctx, p.reader, namespace, name, privacyv1alpha1.SecretTypeConnection)
	if err != nil {
		if secretref.IsNotOptedIn(err) {
			return nil, "", &SecretError{Msg: what + " " + err.Error(), Err: err}
		}
		if apierrors.IsNotFound(err) {
			return nil, "", &SecretError{Msg: fmt.Sprintf("%s Secret %q not found in namespace %q", what, name, namespace)}
		}
		return nil, "", fmt.Errorf("reading %s Secret %q: %w", what, name, err)
	}
	value, ok := secret.Data[key]
	if !ok || len(value) == 0 {
		return nil, "", &SecretError{Msg: fmt.Sprintf("%s Secret %q in namespace %q has no key %q", what, name, namespace, key)}
	}
	return value, string(secret.UID) + "/" + secret.ResourceVersion, nil
}

// IsSecretError reports whether err is a missing or incomplete store Secret.
func IsSecretError(err error) bool {
	var se *SecretError
	return errors.As(err, &se)
}
