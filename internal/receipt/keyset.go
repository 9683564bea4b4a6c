package receipt

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// KeySetKey holds, in the public-key ConfigMap, every public key the installation ever signed with
// (a KeySet as JSON), so that receipts signed before a rotation still verify. KeyPEM and KeyIDKey
// hold the current key only, as before.
const KeySetKey = "keys.json"

// RotationGrace is how long after a key's NotAfter a receipt it signed is still accepted: a running
// operator signs with the old key until it re-reads the key Secret (DefaultReloadInterval), or for
// longer while that Secret cannot be read.
const RotationGrace = time.Hour

// PublishedKey is one public key and the period the operator signed with it.
type PublishedKey struct {
	KeyID     string `json:"keyID"`
	PublicKey string `json:"publicKey"` // PKIX PEM
	// NotBefore is when the operator first published the key; NotAfter when a newer key replaced it
	// (nil while it is the current key).
	NotBefore time.Time  `json:"notBefore"`
	NotAfter  *time.Time `json:"notAfter,omitempty"`
}

// KeySet is every published key, oldest first.
type KeySet []PublishedKey

// ParseKeySet reads a KeySet and checks that each key id is the id of its key.
func ParseKeySet(data []byte) (KeySet, error) {
	var ks KeySet
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ks); err != nil {
		return nil, fmt.Errorf("not a receipt key set: %w", err)
	}
	for _, k := range ks {
		pub, err := ParsePublicKey([]byte(k.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.KeyID, err)
		}
		if KeyID(pub) != k.KeyID {
			return nil, fmt.Errorf("key set entry %s holds the key %s", k.KeyID, KeyID(pub))
		}
	}
	return ks, nil
}

// Marshal encodes the set as indented JSON, oldest key first.
func (ks KeySet) Marshal() []byte {
	sorted := append(KeySet(nil), ks...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].NotBefore.Before(sorted[j].NotBefore) })
	data, _ := json.MarshalIndent(sorted, "", "  ")
	return append(data, '\n')
}

// withCurrent returns the set with pub as the current key: added with NotBefore now if it is new,
// and every other key still open closed at now. A key that is current again (a rotation undone)
// is reopened. changed says whether anything differs from ks.
func (ks KeySet) withCurrent(pub ed25519.PublicKey, now time.Time) (KeySet, bool) {
	id, now := KeyID(pub), now.UTC().Truncate(time.Second)
	out, found, changed := make(KeySet, 0, len(ks)+1), false, false
	for _, k := range ks {
		switch {
		case k.KeyID == id:
			found = true
			if k.NotAfter != nil {
				k.NotAfter, changed = nil, true
			}
		case k.NotAfter == nil:
			closed := now
			k.NotAfter, changed = &closed, true
		}
		out = append(out, k)
	}
	if !found {
		out = append(out, PublishedKey{KeyID: id, PublicKey: string(PublicKeyPEM(pub)), NotBefore: now})
		changed = true
	}
	return out, changed
}

// ErrUnknownKey: the receipt names a key that is not in the key set.
var ErrUnknownKey = errors.New("the receipt was signed by a key that is not in the key set")

// VerifyWithKeySet verifies a receipt with the key its keyID names, and checks that the receipt was
// issued while that key was current (give or take RotationGrace).
func VerifyWithKeySet(data, sigBase64 []byte, ks KeySet) (*Receipt, error) {
	var named struct {
		KeyID string `json:"keyID"`
	}
	if err := json.Unmarshal(data, &named); err != nil {
		return nil, fmt.Errorf("the receipt is not valid receipt JSON: %w", err)
	}
	for _, k := range ks {
		if k.KeyID != named.KeyID {
			continue
		}
		pub, err := ParsePublicKey([]byte(k.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.KeyID, err)
		}
		r, err := Verify(data, sigBase64, pub)
		if err != nil {
			return nil, err
		}
		if r.IssuedAt.Before(k.NotBefore.Add(-RotationGrace)) || (k.NotAfter != nil && r.IssuedAt.After(k.NotAfter.Add(RotationGrace))) {
			return nil, fmt.Errorf("the receipt was issued at %s, outside the validity of key %s (%s)", r.IssuedAt.UTC().Format(time.RFC3339), k.KeyID, k.period())
		}
		return r, nil
	}
	return nil, fmt.Errorf("%w (key %q)", ErrUnknownKey, named.KeyID)
}

func (k PublishedKey) period() string {
	end := "now"
	if k.NotAfter != nil {
		end = k.NotAfter.UTC().Format(time.RFC3339)
	}
	return k.NotBefore.UTC().Format(time.RFC3339) + " to " + end
}
