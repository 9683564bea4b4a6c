package suppression

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dsr-operator/dsr-operator/internal/subject"
)

// KeySecretName is the per-installation Secret, in the operator's namespace, whose "key" keys
// the hashes of lists fed by DeletionRequests. Losing it makes those lists unmatchable (the
// operator then creates a new key and their entries never match again): back it up with the
// receipt signing key (docs/suppression.md).
const (
	KeySecretName = "dsr-operator-suppression-key"
	keyDataKey    = "key"
)

// EnsureKey returns the installation's suppression key, creating it on first use.
func EnsureKey(ctx context.Context, c client.Client, namespace string) ([]byte, error) {
	return subject.EnsureRandomSecret(ctx, c, namespace, KeySecretName, keyDataKey, "suppression key")
}
