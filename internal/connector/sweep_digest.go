package connector

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"

	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// A store that must not send its values to the operator (an http store, docs/connector-protocol.md
// "Sweeps") sends, for each stored email or phone value v, SaltedDigest(salt, SHA-256(n)), n being
// v normalised as the DROP platform prescribes (email trimmed and lower-cased, phone the last ten
// of its digits), under a salt drawn afresh for each sweep. The operator computes the same salted
// digest of each entry of a DROP list, whose entries are SHA-256(n), and compares. The salt makes
// what the store sends worthless outside the one sweep: it cannot be matched against a DROP
// download or a precomputed table of hashed addresses, nor linked across sweeps.
//
// Keyed entries (HMAC-SHA-256 under the installation's key) cannot be matched this way: the
// operator holds no value to hash under the salt, and the store cannot compute the keyed hash
// without the key, which never leaves the operator.

// SweepSaltSize is the length of a sweep's salt.
const SweepSaltSize = 32

// DigestMatch is how a digest-sending store's answers are matched against a list.
type DigestMatch struct {
	// Salt is sent to the store; fresh and random for each sweep (NewSweepSalt).
	Salt []byte
	// Match reports whether salted, the salted digest of a stored value compared as kind
	// (normalize.Email or normalize.Phone), belongs to someone on the list. Safe for concurrent use.
	Match func(kind normalize.Kind, salted [sha256.Size]byte) bool
}

// NewSweepSalt draws a sweep's salt.
func NewSweepSalt() ([]byte, error) {
	salt := make([]byte, SweepSaltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return salt, nil
}

// SaltedDigest is SHA-256(salt || hash): hash the SHA-256 of a DROP-normalised value.
func SaltedDigest(salt []byte, hash [sha256.Size]byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(hash[:])
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// DigestIndex is the salted digests of a list's unkeyed entries for one sweep, sorted for
// lookups: 33 bytes an entry, so a list of 1,000,000 entries takes about 33 MB while it sweeps.
type DigestIndex struct {
	salt    []byte
	entries []saltedEntry
	sorted  bool
}

type saltedEntry struct {
	digest [sha256.Size]byte
	kind   normalize.Kind
}

// NewDigestIndex starts an index under salt for about n entries.
func NewDigestIndex(salt []byte, n int) *DigestIndex {
	return &DigestIndex{salt: slices.Clone(salt), entries: make([]saltedEntry, 0, n)}
}

// Add adds an entry: hash, the SHA-256 of a DROP-normalised value of kind.
func (x *DigestIndex) Add(kind normalize.Kind, hash [sha256.Size]byte) {
	x.entries = append(x.entries, saltedEntry{digest: SaltedDigest(x.salt, hash), kind: kind})
	x.sorted = false
}

// Match is the DigestMatch of the index; call it after the last Add.
func (x *DigestIndex) Match() *DigestMatch {
	if !x.sorted {
		slices.SortFunc(x.entries, compareSalted)
		x.sorted = true
	}
	entries := x.entries
	return &DigestMatch{Salt: slices.Clone(x.salt), Match: func(kind normalize.Kind, salted [sha256.Size]byte) bool {
		_, found := slices.BinarySearchFunc(entries, saltedEntry{digest: salted, kind: kind}, compareSalted)
		return found
	}}
}

func compareSalted(a, b saltedEntry) int {
	if c := bytes.Compare(a.digest[:], b.digest[:]); c != 0 {
		return c
	}
	switch {
	case a.kind < b.kind:
		return -1
	case a.kind > b.kind:
		return 1
	}
	return 0
}

// ErrSweepNeedsDigests is the answer of a digest-sending store asked to sweep for a list that
// cannot be matched by digests (a keyed list): not a failure of the store.
var ErrSweepNeedsDigests = Hinted(KindRejected, "sweep",
	"this store sends salted digests only, which can be matched against DROP lists only: a list fed by DeletionRequests holds keyed hashes")

// ErrSweepNotOffered is the answer of an http store whose service does not declare the sweep
// capability: the store cannot be swept, which is not a failure either.
var ErrSweepNotOffered = Hinted(KindRejected, "sweep",
	`the service does not declare the "sweep" capability in its check answer`)

// IsSweepUnsupported reports whether err says that the store cannot be swept for this list
// (ErrSweepNotOffered, ErrSweepNeedsDigests): to be reported as unsupported, not as a failure.
func IsSweepUnsupported(err error) bool {
	return errors.Is(err, ErrSweepNotOffered) || errors.Is(err, ErrSweepNeedsDigests)
}
