package suppression

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"unicode"

	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// Hash is one SHA-256 or HMAC-SHA-256.
type Hash [sha256.Size]byte

// Compare orders hashes byte by byte.
func (h Hash) Compare(o Hash) int { return bytes.Compare(h[:], o[:]) }

// Kind is an entry's identifier kind, stored as one byte.
type Kind uint8

// Kinds of entries.
const (
	KindExact Kind = 1
	KindEmail Kind = 2
	KindPhone Kind = 3
)

// KindOf maps a normalize.Kind to an entry kind.
func KindOf(k normalize.Kind) Kind {
	switch k {
	case normalize.Email:
		return KindEmail
	case normalize.Phone:
		return KindPhone
	default:
		return KindExact
	}
}

func (k Kind) String() string {
	switch k {
	case KindEmail:
		return "email"
	case KindPhone:
		return "phone"
	case KindExact:
		return "exact"
	}
	return "unknown"
}

// KeyedHasher hashes values for a list fed by DeletionRequests.
type KeyedHasher struct {
	Key  []byte
	Norm normalize.Normalizer
}

// Hash is the keyed hash of value as an identifier of kind: HMAC-SHA-256 under the key, of the
// kind's name, a NUL and the value's normalised form. The kind is in the hash so that an opaque
// id never matches an email that happens to have the same spelling. ok is false for an empty
// value.
func (h KeyedHasher) Hash(kind normalize.Kind, value string) (Hash, bool) {
	return h.HashOf("", kind, value)
}

// HashOf is the keyed hash of value as identifier, compared as kind. An exact value is hashed
// with its identifier's name: an opaque value means something only as the identifier it is of
// (order id 10 is not customer id 10), and a sweep that matched it under another identifier
// would erase a bystander. Emails and phone numbers mean the same person whatever the
// identifier is called, so their hashes leave the name out.
func (h KeyedHasher) HashOf(identifier string, kind normalize.Kind, value string) (Hash, bool) {
	key := h.Norm.Key(kind, value)
	if strings.TrimSpace(key) == "" {
		return Hash{}, false
	}
	mac := hmac.New(sha256.New, h.Key)
	mac.Write([]byte(KindOf(kind).String()))
	mac.Write([]byte{0})
	if KindOf(kind) == KindExact && identifier != "" {
		mac.Write([]byte(identifier))
		mac.Write([]byte{0})
	}
	mac.Write([]byte(key))
	var out Hash
	copy(out[:], mac.Sum(nil))
	return out, true
}

// DropNormalize is a value normalised as the DROP platform prescribes: an email trimmed and
// lower-cased; a phone number reduced to its digits, of which the last ten are kept. ok is false
// for a kind DROP does not list or a value that is empty after normalisation.
func DropNormalize(kind Kind, value string) (string, bool) {
	switch kind {
	case KindEmail:
		v := strings.ToLower(strings.TrimSpace(value))
		return v, v != ""
	case KindPhone:
		var b strings.Builder
		for _, r := range value {
			if r >= '0' && r <= '9' {
				b.WriteRune(r)
			} else if unicode.IsDigit(r) {
				// Other scripts' digits are not what DROP hashes; such a value is no DROP phone.
				return "", false
			}
		}
		d := b.String()
		if len(d) > 10 {
			d = d[len(d)-10:]
		}
		return d, len(d) == 10
	}
	return "", false
}

// DropHash is DROP's hash of value as an identifier of kind.
func DropHash(kind Kind, value string) (Hash, bool) {
	norm, ok := DropNormalize(kind, value)
	if !ok {
		return Hash{}, false
	}
	return sha256.Sum256([]byte(norm)), true
}
