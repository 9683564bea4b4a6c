// Package subject reads a data subject's identifiers and derives the salted digest that stands in for
// them everywhere the operator writes (status, receipts, exports' metadata).
package subject

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/secretref"
)

// MaxIdentifierBytes bounds one identifier value; longer values are refused as invalid, not cut.
const MaxIdentifierBytes = 16 << 10

var identifierName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)

// Problem says why a request's subject cannot be accepted; Reason is a condition reason.
type Problem struct {
	Reason  string
	Message string
}

func (p *Problem) Error() string { return p.Message }

// Read gets the identifiers Secret with a direct GET (reader should be the manager's API reader:
// the operator never caches Secrets cluster-wide), only if it is labelled as identifiers
// (secretref.Get), and validates it. A *Problem is returned for what
// the request's author must fix; other errors are transient.
func Read(ctx context.Context, reader client.Reader, namespace, name string) (connector.Identifiers, error) {
	secret, err := secretref.Get(ctx, reader, namespace, name, privacyv1alpha1.SecretTypeIdentifiers)
	if err != nil {
		if secretref.IsNotOptedIn(err) {
			return nil, &Problem{Reason: privacyv1alpha1.ReasonSecretNotOptedIn, Message: err.Error()}
		}
		if apierrors.IsNotFound(err) {
			return nil, &Problem{Reason: "IdentifiersSecretNotFound",
				Message: fmt.Sprintf("identifiers Secret %q not found in namespace %q", name, namespace)}
		}
		return nil, fmt.Errorf("reading identifiers Secret %q: %w", name, err)
	}
	return FromSecretData(name, secret.Data)
}

// FromSecretData validates the data of an identifiers Secret.
func FromSecretData(secretName string, data map[string][]byte) (connector.Identifiers, error) {
	if len(data) == 0 {
		return nil, &Problem{Reason: "IdentifiersInvalid",
			Message: fmt.Sprintf("identifiers Secret %q holds no identifiers", secretName)}
	}
	ids := make(connector.Identifiers, len(data))
	for name, value := range data {
		switch {
		case !identifierName.MatchString(name) || len(name) > 63:
			return nil, &Problem{Reason: "IdentifiersInvalid",
				Message: fmt.Sprintf("identifiers Secret %q: key %q is not an identifier name (letters, digits, _ . -; at most 63)", secretName, name)}
		case len(value) == 0:
			return nil, &Problem{Reason: "IdentifiersInvalid",
				Message: fmt.Sprintf("identifiers Secret %q: identifier %q is empty", secretName, name)}
		case len(value) > MaxIdentifierBytes:
			return nil, &Problem{Reason: "IdentifiersInvalid",
				Message: fmt.Sprintf("identifiers Secret %q: identifier %q is longer than %d bytes", secretName, name, MaxIdentifierBytes)}
		case !utf8.Valid(value):
			return nil, &Problem{Reason: "IdentifiersInvalid",
				Message: fmt.Sprintf("identifiers Secret %q: identifier %q is not valid UTF-8", secretName, name)}
		}
		ids[name] = string(value)
	}
	return ids, nil
}

// Digest is the salted SHA-256 of the identifiers, "sha256:<hex>". Names and values are
// length-prefixed in name order, so that no two different sets of identifiers encode alike.
func Digest(salt []byte, ids connector.Identifiers) string {
	h := sha256.New()
	h.Write(salt)
	var n [8]byte
	write := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for _, name := range ids.Names() {
		write(name)
		write(ids[name])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
