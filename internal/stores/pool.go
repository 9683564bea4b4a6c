package stores

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/egress"
)

// DefaultRefreshAfter is how long a pooled client is trusted before its Secret is read again to
// see whether the credentials changed.
const DefaultRefreshAfter = 30 * time.Second

// Pool keeps one long-lived connector client per store and rebuilds it when the store's spec or
// its Secrets change. Secrets are read with a direct GET, never through a cache. Clients are
// leased: a replaced client is closed only when the last operation using it releases it.
type Pool struct {
	reader            client.Reader
	operatorNamespace string
	salt              []byte
	refreshAfter      time.Duration
	// DefaultPhoneRegion is the manager's --default-phone-region, handed to every connector;
	// set it before the pool is used.
	DefaultPhoneRegion string
	now                func() time.Time
	// Egress is the policy every store connection is checked against (nil: egress.Default()).
	Egress *egress.Policy

	mu      sync.Mutex
	entries map[Ref]*entry
}

type entry struct {
	mu sync.Mutex
	// current is the client new leases get; nil until the first Acquire and after Forget.
	current     *sharedClient
	fingerprint string
	checkedAt   time.Time
	// dropped: Forget removed the entry from the pool; an Acquire that still holds it looks again.
	dropped bool
}

// sharedClient is a connector client with a count of its leases. A client that the pool replaced
// (rotated Secret, changed spec) or forgot is retired: it is closed when its last lease is
// released, never under an operation that is still using it.
type sharedClient struct {
	client connector.Client

	mu      sync.Mutex
	leases  int
	retired bool
	closed  bool
}

func (c *sharedClient) lease() *Lease {
	c.mu.Lock()
	c.leases++
	c.mu.Unlock()
	return &Lease{shared: c}
}

func (c *sharedClient) release() {
	c.mu.Lock()
	c.leases--
	closeNow := c.retired && c.leases == 0 && !c.closed
	c.closed = c.closed || closeNow
	c.mu.Unlock()
	if closeNow {
		_ = c.client.Close()
	}
}

func (c *sharedClient) retire() {
	c.mu.Lock()
	c.retired = true
	closeNow := c.leases == 0 && !c.closed
	c.closed = c.closed || closeNow
	c.mu.Unlock()
	if closeNow {
		_ = c.client.Close()
	}
}

// Lease is one use of a pooled client. The client stays open until the lease is released, even if
// the pool replaces it meanwhile. Release it when the operation is done (typically deferred);
// releasing twice is harmless.
type Lease struct {
	shared *sharedClient
	once   sync.Once
}

// Client is the leased client. It must not be used after Release, nor closed by the caller.
func (l *Lease) Client() connector.Client { return l.shared.client }

// Release ends the lease; the last release of a replaced client closes it.
func (l *Lease) Release() { l.once.Do(l.shared.release) }

// NewPool returns a pool that reads Secrets with reader (an API reader) and looks for the Secrets
// of ClusterDataStores in operatorNamespace. salt salts the "hash" mask strategy.
func NewPool(reader client.Reader, operatorNamespace string, salt []byte) *Pool {
	return &Pool{reader: reader, operatorNamespace: operatorNamespace, salt: salt,
		refreshAfter: DefaultRefreshAfter, now: time.Now, entries: map[Ref]*entry{}}
}

// SecretError says a store's Secret is missing or lacks its key: the store's owner must fix it.
type SecretError struct{ Msg string }

func (e *SecretError) Error() string { return e.Msg }

// SecretNamespace is where a store's Secrets live.
func (p *Pool) SecretNamespace(ref Ref) string {
	if ref.Kind == privacyv1alpha1.KindClusterDataStore {
		return p.operatorNamespace
	}
	return ref.Namespace
}

// Acquire leases the pooled client of s, building it (or rebuilding it when the store's spec or
// Secrets changed) as needed. fresh forces a re-read of the store's Secrets (the store controller
// passes it, so that a fixed password is seen at once). The caller must Release the lease.
func (p *Pool) Acquire(ctx context.Context, s *Store, fresh bool) (*Lease, error) {
	for {
		e := p.entry(s.Ref)
		lease, err := p.acquire(ctx, e, s, fresh)
		if err != nil || lease != nil {
			return lease, err
		}
		// The store was forgotten while we waited for its entry: start over with a new one.
	}
}

func (p *Pool) entry(ref Ref) *entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.entries[ref]
	if e == nil {
		e = &entry{}
		p.entries[ref] = e
	}
	return e
}

// acquire leases e's client; nil without error when e was dropped.
func (p *Pool) acquire(ctx context.Context, e *entry, s *Store, fresh bool) (*Lease, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dropped {
		return nil, nil
	}
	now := p.now()
	genPrint := fmt.Sprintf("%s/%d", s.UID, s.Generation)
	if e.current != nil && !fresh && now.Sub(e.checkedAt) < p.refreshAfter && prefix(e.fingerprint, genPrint) {
		return e.current.lease(), nil
	}
	cfg, secretPrint, err := p.config(ctx, s)
	if err != nil {
		return nil, err
	}
	fingerprint := genPrint + "|" + secretPrint
	if e.current != nil && e.fingerprint == fingerprint {
		e.checkedAt = now
		return e.current.lease(), nil
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
	if e.current != nil {
		e.current.retire()
	}
	e.current, e.fingerprint, e.checkedAt = &sharedClient{client: c}, fingerprint, now
	return e.current.lease(), nil
}

func prefix(fingerprint, genPrint string) bool {
	return len(fingerprint) > len(genPrint) && fingerprint[:len(genPrint)] == genPrint && fingerprint[len(genPrint)] == '|'
}

// Forget drops the client of a store that was deleted; it is closed once no lease holds it.
func (p *Pool) Forget(ref Ref) {
	p.mu.Lock()
	e := p.entries[ref]
	delete(p.entries, ref)
	p.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		e.dropped = true
		if e.current != nil {
			e.current.retire()
			e.current = nil
		}
		e.mu.Unlock()
	}
}

// Close drops every client; each is closed once no lease holds it.
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
	cfg := &connector.Config{Name: s.Ref.String(), Spec: s.Spec, HashSalt: p.salt, DefaultPhoneRegion: p.DefaultPhoneRegion, Egress: p.Egress}
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
	var secret corev1.Secret
	if err := p.reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &secret); err != nil {
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
