// Package receipt issues and verifies signed deletion receipts: canonical JSON signed with the
// installation's Ed25519 key, whose public half is published for auditors.
package receipt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

const (
	// KeySecretName is the Secret, in the operator namespace, holding the signing key under KeyPEM.
	KeySecretName = "dsr-operator-receipt-signing-key"
	// PublicKeyConfigMapName is the ConfigMap, in the operator namespace, publishing the public key
	// under KeyPEM and its id under KeyIDKey.
	PublicKeyConfigMapName = "dsr-operator-receipt-public-key"
	KeyPEM                 = "ed25519.pem"
	KeyIDKey               = "keyID"
	// ConfigMapSuffix: a request's receipt is the ConfigMap <request name>-receipt.
	ConfigMapSuffix = "-receipt"
	// DataKey holds the receipt's canonical JSON; SignatureKey the base64 Ed25519 signature of
	// exactly those bytes.
	DataKey      = "receipt.json"
	SignatureKey = "receipt.sig"
	// PlanKey holds, from before anything was erased, what the reconcile that accepted the request
	// counted in each store (JSON, see controllers). It is not signed: the receipt is.
	PlanKey = "plan.json"
	// Version names the receipt format.
	Version = "privacy.dsr.dev/receipt/v1"
)

// Receipt says what was erased for whom, where, and when it was verified.
type Receipt struct {
	Version       string     `json:"version"`
	Request       RequestRef `json:"request"`
	SubjectDigest string     `json:"subjectDigest"`
	Regulation    string     `json:"regulation"`
	ReceivedAt    time.Time  `json:"receivedAt"`
	Deadline      time.Time  `json:"deadline"`
	CompletedAt   time.Time  `json:"completedAt"`
	Stores        []Store    `json:"stores"`
	IssuedAt      time.Time  `json:"issuedAt"`
	KeyID         string     `json:"keyID"`
}

// RequestRef identifies the request the receipt is for.
type RequestRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	UID        string `json:"uid"`
}

// Store is one store's outcome.
type Store struct {
	Kind            string           `json:"kind"`
	Name            string           `json:"name"`
	Type            string           `json:"type"`
	Erased          int64            `json:"erased"`
	Masked          int64            `json:"masked"`
	Retained        int64            `json:"retained"`
	RetainedReasons []RetainedReason `json:"retainedReasons"`
	Remaining       int64            `json:"remaining"`
	VerifiedAt      time.Time        `json:"verifiedAt"`
	// Shared records (linked data) were reached only through a derived value that also belongs
	// to someone else, and were left untouched. Omitted when there are none, so that receipts
	// without linked data keep their exact bytes.
	Shared          int64           `json:"shared,omitempty"`
	SharedLocations []LocationCount `json:"sharedLocations,omitempty"`
	// Unmapped records are copies of the subject's identifiers that a deep verification found
	// outside the mapping, by table and column: findings for a human, not remaining records.
	Unmapped          int64           `json:"unmapped,omitempty"`
	UnmappedLocations []LocationCount `json:"unmappedLocations,omitempty"`
}

// LocationCount counts records at one location; it never holds a value.
type LocationCount struct {
	Location string `json:"location"`
	Records  int64  `json:"records"`
}

// RetainedReason is why records at a location were kept.
type RetainedReason struct {
	Location string `json:"location"`
	Records  int64  `json:"records"`
	Reason   string `json:"reason"`
}

// ConfigMapName is the name of a request's receipt ConfigMap.
func ConfigMapName(requestName string) string { return requestName + ConfigMapSuffix }

// Canonical returns the receipt's canonical bytes: UTC times in whole seconds (RFC 3339), stores
// sorted by kind then name (so ClusterDataStores before DataStores), each store's retained reasons by
// location, reason and records, fields in declaration order, no HTML escaping, no trailing newline. The same receipt
// always gives the same bytes, and canonicalising a verified receipt gives back the signed bytes.
func Canonical(r *Receipt) ([]byte, error) {
	if r == nil {
		return nil, errors.New("no receipt")
	}
	c := *r
	c.ReceivedAt, c.Deadline, c.CompletedAt, c.IssuedAt = norm(c.ReceivedAt), norm(c.Deadline), norm(c.CompletedAt), norm(c.IssuedAt)
	c.Stores = make([]Store, len(r.Stores))
	for i, s := range r.Stores {
		s.VerifiedAt = norm(s.VerifiedAt)
		// Empty, never null, whether the slice was nil or parsed from "[]".
		rr := make([]RetainedReason, len(s.RetainedReasons))
		copy(rr, s.RetainedReasons)
		sort.SliceStable(rr, func(a, b int) bool {
			if rr[a].Location != rr[b].Location {
				return rr[a].Location < rr[b].Location
			}
			if rr[a].Reason != rr[b].Reason {
				return rr[a].Reason < rr[b].Reason
			}
			return rr[a].Records < rr[b].Records
		})
		s.RetainedReasons = rr
		s.SharedLocations = sortedLocations(s.SharedLocations)
		s.UnmappedLocations = sortedLocations(s.UnmappedLocations)
		c.Stores[i] = s
	}
	sort.SliceStable(c.Stores, func(i, j int) bool {
		if c.Stores[i].Kind != c.Stores[j].Kind {
			return c.Stores[i].Kind < c.Stores[j].Kind
		}
		return c.Stores[i].Name < c.Stores[j].Name
	})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// sortedLocations is a sorted copy (by location, then records); nil stays nil (omitted).
func sortedLocations(locs []LocationCount) []LocationCount {
	if len(locs) == 0 {
		return nil
	}
	out := make([]LocationCount, len(locs))
	copy(out, locs)
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].Location != out[b].Location {
			return out[a].Location < out[b].Location
		}
		return out[a].Records < out[b].Records
	})
	return out
}

func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// Signed is a signed receipt.
type Signed struct {
	JSON      []byte
	Signature []byte
	// SHA256 is "sha256:<hex>" of JSON.
	SHA256 string
	KeyID  string
}

// Signer signs receipts with the installation's key. A Signer from EnsureSigner follows the key
// Secret, so that a rotation takes effect without a restart (see reload.go); one from NewSigner
// keeps its key.
type Signer struct {
	mu     sync.Mutex
	key    ed25519.PrivateKey
	keyID  string
	follow *keyFollower
}

// NewSigner wraps a private key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	return &Signer{key: key, keyID: KeyID(key.Public().(ed25519.PublicKey))}
}

// KeyID is the first 16 hex characters of the SHA-256 of the raw public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])[:16]
}

// KeyID of the signer's key, as last read.
func (s *Signer) KeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyID
}

// PublicKey of the signer, as last read.
func (s *Signer) PublicKey() ed25519.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key.Public().(ed25519.PublicKey)
}

// Sign fills in KeyID (and IssuedAt when zero, and Version when empty) and signs the canonical
// bytes. IssuedAt is left as signed (UTC, whole seconds) so that a caller copying it into status
// states the same instant as the receipt.
func (s *Signer) Sign(r *Receipt) (*Signed, error) {
	if r == nil {
		return nil, errors.New("no receipt")
	}
	key, keyID, err := s.current()
	if err != nil {
		return nil, err
	}
	r.KeyID = keyID
	if r.IssuedAt.IsZero() {
		r.IssuedAt = time.Now()
	}
	r.IssuedAt = norm(r.IssuedAt)
	if r.Version == "" {
		r.Version = Version
	}
	data, err := Canonical(r)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return &Signed{JSON: data, Signature: ed25519.Sign(key, data), SHA256: "sha256:" + hex.EncodeToString(sum[:]), KeyID: keyID}, nil
}

// EncodeSignature is how signatures are stored: standard base64.
func EncodeSignature(sig []byte) string { return base64.StdEncoding.EncodeToString(sig) }

// Digest is "sha256:<hex>" of data.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ErrSignatureMismatch: the signature does not match the receipt and key.
var ErrSignatureMismatch = errors.New("the signature does not match the receipt: the receipt, the signature or the key was altered")

// Verify checks the signature (base64) over data with pub, then parses the receipt.
func Verify(data, sigBase64 []byte, pub ed25519.PublicKey) (*Receipt, error) {
	sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(sigBase64)))
	if err != nil {
		return nil, fmt.Errorf("the signature is not valid base64: %w", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("the signature is %d bytes, an Ed25519 signature is %d", len(sig), ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, data, sig) {
		return nil, ErrSignatureMismatch
	}
	var r Receipt
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("the receipt is not valid receipt JSON: %w", err)
	}
	if r.Version != Version {
		return nil, fmt.Errorf("unknown receipt version %q (want %q)", r.Version, Version)
	}
	if r.KeyID != KeyID(pub) {
		return nil, fmt.Errorf("the receipt names key %s but was verified with key %s", r.KeyID, KeyID(pub))
	}
	return &r, nil
}
