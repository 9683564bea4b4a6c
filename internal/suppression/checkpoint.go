package suppression

import (
	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// StatusFound marks an entry found in a store during the sweep in progress and left in place
// (action report). It is the operator's own mark, never reported to DROP: it keeps a complete
// sweep from calling the item "not found" after a restart, and is cleared when the sweep ends.
const StatusFound Status = 1

// erasingFlag marks an entry whose data a sweep is about to erase in the store it is sweeping.
// It is saved before the erasure, so that after an interruption the store's next pass, which no
// longer finds what was erased, knows it was (deleted), instead of calling it not found.
const erasingFlag Status = 0x80

// Erasing reports whether st carries the erasing mark.
func (st Status) Erasing() bool { return st&erasingFlag != 0 }

// WithErasing is st with the erasing mark.
func (st Status) WithErasing() Status { return st | erasingFlag }

// Base is st without the erasing mark.
func (st Status) Base() Status { return st &^ erasingFlag }

// Reportable reports whether st is (or, with the erasing mark, was) a status of the DROP report.
func (st Status) Reportable() bool { return st.Base() != StatusNone && st.Base() != StatusFound }

// SweepCheckpoint is a sweep in progress, saved in the index after every store it finished, so
// that a manager stopped mid-sweep resumes with the next store instead of sweeping the finished
// ones again (whose erasures it would no longer find, or count twice). It holds counts and store
// names, never a value or a hash.
type SweepCheckpoint struct {
	// Number is the sweep's number: the list's status.sweeps + 1 when it started. A checkpoint of
	// another number is stale and ignored.
	Number int64 `json:"number"`
	// Stores are the stores finished, with what they found and did.
	Stores []StoreResult `json:"stores,omitempty"`
}

// StoreResult is one store's part of a sweep.
type StoreResult struct {
	privacyv1alpha1.SuppressionStoreStatus `json:",inline"`
	// Reappeared counts records found outside their erased state.
	Reappeared int64 `json:"reappeared,omitempty"`
	// Failed: the store could not be swept; the sweep reports it and is retried.
	Failed bool `json:"failed,omitempty"`
}

// Done returns the result of the store named kind/name, if the checkpoint has it.
func (c *SweepCheckpoint) Done(kind, name string) (StoreResult, bool) {
	if c == nil {
		return StoreResult{}, false
	}
	for _, r := range c.Stores {
		if string(r.Kind) == kind && r.Name == name {
			return r, true
		}
	}
	return StoreResult{}, false
}

// Key identifies an entry across loads: the set is re-read between stores and may have grown
// meanwhile, so positions do not carry over.
type Key struct {
	Hash Hash
	Kind Kind
	ID   string
}

// KeyOf is entry i's key.
func (s *Set) KeyOf(i int) Key {
	e := s.entries[i]
	return Key{Hash: e.Hash, Kind: e.Kind, ID: e.ID}
}

// Find returns the position of the entry with key k.
func (s *Set) Find(k Key) (int, bool) {
	for _, i := range s.Lookup(k.Hash, k.Kind) {
		if s.entries[i].ID == k.ID {
			return i, true
		}
	}
	return 0, false
}
