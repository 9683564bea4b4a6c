package receipt

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultReloadInterval is how long a Signer from EnsureSigner signs with the key it last read
// before it reads the key Secret again: a rotation (`kubectl dsr keys rotate`, or an edit of the
// Secret) takes effect within it, without a restart, well inside RotationGrace.
const DefaultReloadInterval = 30 * time.Second

// reloadTimeout bounds one read of the key Secret (and the publication of a new key).
const reloadTimeout = 10 * time.Second

// keyFollower is where a Signer re-reads its key. Only the one Secret is read, by name, on use:
// the operator neither lists nor watches Secrets.
type keyFollower struct {
	c         client.Client
	reader    client.Reader
	namespace string
	interval  time.Duration
	// readAt is when the key Secret was last read successfully.
	readAt time.Time
}

// followKeySecret makes s re-read the key Secret in namespace once interval has passed since the
// last read.
func (s *Signer) followKeySecret(c client.Client, reader client.Reader, namespace string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.follow = &keyFollower{c: c, reader: reader, namespace: namespace, interval: DefaultReloadInterval, readAt: time.Now()}
}

// SetReloadInterval changes how often a Signer from EnsureSigner re-reads the key Secret; 0 reads
// it on every signature. It does nothing on a Signer that keeps its key.
func (s *Signer) SetReloadInterval(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.follow != nil {
		s.follow.interval = d
	}
}

// current returns the key to sign with, re-reading the key Secret when it is due.
//
// When the Secret cannot be read (the API server is away, the Secret was broken by hand), the key
// last read is used for up to RotationGrace after that read: it was the current key then, so a
// rotation since closed its validity no earlier than that read, and what it signs still verifies.
// After that the signature fails, and the request that wanted it is retried.
func (s *Signer) current() (ed25519.PrivateKey, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.follow
	if f == nil || time.Since(f.readAt) < f.interval {
		return s.key, s.keyID, nil
	}
	priv, err := f.read()
	if err != nil {
		if time.Since(f.readAt) < RotationGrace-f.interval {
			return s.key, s.keyID, nil
		}
		return nil, "", err
	}
	if !priv.Equal(s.key) {
		ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
		defer cancel()
		// A key written into the Secret by hand is published here; after `kubectl dsr keys rotate`
		// it already is, and this changes nothing. Never sign with a key nobody can verify.
		if err := publish(ctx, f.c, f.reader, f.namespace, NewSigner(priv)); err != nil {
			if time.Since(f.readAt) < RotationGrace-f.interval {
				return s.key, s.keyID, nil
			}
			return nil, "", err
		}
		s.key, s.keyID = priv, KeyID(priv.Public().(ed25519.PublicKey))
	}
	f.readAt = time.Now()
	return s.key, s.keyID, nil
}

func (f *keyFollower) read() (ed25519.PrivateKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	var secret corev1.Secret
	if err := f.reader.Get(ctx, types.NamespacedName{Namespace: f.namespace, Name: KeySecretName}, &secret); err != nil {
		return nil, fmt.Errorf("re-reading the receipt signing key Secret %s/%s: %w", f.namespace, KeySecretName, err)
	}
	priv, err := parsePrivateKey(secret.Data[KeyPEM])
	if err != nil {
		return nil, fmt.Errorf("receipt signing key Secret %s/%s, key %q: %w", f.namespace, KeySecretName, KeyPEM, err)
	}
	return priv, nil
}
