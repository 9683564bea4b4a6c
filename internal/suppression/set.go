package suppression

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Status is a DROP work item's deletion status, in the codes the DROP platform takes.
type Status uint8

// DROP statuses. StatusNone: no sweep has decided yet.
const (
	StatusNone     Status = 0
	StatusExempted Status = 2
	StatusDeleted  Status = 3
	StatusOptedOut Status = 4
	StatusNotFound Status = 5
)

// MaxIDLen bounds a DROP item ID.
const MaxIDLen = 128

// Entry is one hashed identifier on a list.
type Entry struct {
	Hash Hash
	Kind Kind
	// Status of a DROP item; StatusNone for a keyed entry.
	Status Status
	// ID of a DROP work item; empty for a keyed entry.
	ID string
}

func compareEntries(a, b Entry) int {
	if c := a.Hash.Compare(b.Hash); c != 0 {
		return c
	}
	if a.Kind != b.Kind {
		return int(a.Kind) - int(b.Kind)
	}
	if a.ID < b.ID {
		return -1
	}
	if a.ID > b.ID {
		return 1
	}
	return 0
}

// Set is a list's entries, sorted by hash, kind and ID, without repeats.
type Set struct {
	entries []Entry
}

// NewSet sorts entries and drops repeats (same hash, kind and ID; the first status wins). It
// takes entries over and sorts them in place: a list of 1,000,000 entries is 56 MB, and a copy
// would double the manager's peak while a list loads.
func NewSet(entries []Entry) *Set {
	e := entries
	slices.SortStableFunc(e, compareEntries)
	e = slices.CompactFunc(e, func(a, b Entry) bool { return compareEntries(a, b) == 0 })
	return &Set{entries: e}
}

// Len is the number of entries.
func (s *Set) Len() int { return len(s.entries) }

// Entries are the entries in order; callers must not modify them.
func (s *Set) Entries() []Entry { return s.entries }

// Lookup returns the indexes of the entries with hash h and kind k.
func (s *Set) Lookup(h Hash, k Kind) []int {
	i, _ := slices.BinarySearchFunc(s.entries, Entry{Hash: h, Kind: k}, compareEntries)
	var out []int
	for ; i < len(s.entries) && s.entries[i].Hash == h && s.entries[i].Kind == k; i++ {
		out = append(out, i)
	}
	return out
}

// Contains reports whether some entry has hash h and kind k.
func (s *Set) Contains(h Hash, k Kind) bool { return len(s.Lookup(h, k)) > 0 }

// SetStatus sets the status of entry i.
func (s *Set) SetStatus(i int, st Status) { s.entries[i].Status = st }

// Add merges entries in and reports how many were new.
func (s *Set) Add(entries ...Entry) int {
	before := len(s.entries)
	*s = *NewSet(append(slices.Clone(s.entries), entries...))
	return len(s.entries) - before
}

// RemoveIDs removes the entries whose ID is in ids and reports how many went.
func (s *Set) RemoveIDs(ids map[string]bool) int {
	before := len(s.entries)
	s.entries = slices.DeleteFunc(slices.Clone(s.entries), func(e Entry) bool { return e.ID != "" && ids[e.ID] })
	return before - len(s.entries)
}

// chunkMagic starts every encoded chunk, so that a Secret of another format is never read as one.
var chunkMagic = []byte("DSRSUPL1")

const entryFixedLen = len(Hash{}) + 3

// encodeChunk writes entries as magic, then per entry: hash, kind, status, ID length, ID.
func encodeChunk(entries []Entry) []byte {
	n := len(chunkMagic)
	for _, e := range entries {
		n += entryFixedLen + len(e.ID)
	}
	out := make([]byte, 0, n)
	out = append(out, chunkMagic...)
	for _, e := range entries {
		out = append(out, e.Hash[:]...)
		out = append(out, byte(e.Kind), byte(e.Status), byte(len(e.ID)))
		out = append(out, e.ID...)
	}
	return out
}

var errBadChunk = errors.New("malformed suppression chunk")

func decodeChunk(data []byte) ([]Entry, error) {
	if len(data) < len(chunkMagic) || string(data[:len(chunkMagic)]) != string(chunkMagic) {
		return nil, errBadChunk
	}
	data = data[len(chunkMagic):]
	var out []Entry
	for len(data) > 0 {
		if len(data) < entryFixedLen {
			return nil, fmt.Errorf("%w: entry %d is cut short", errBadChunk, len(out))
		}
		var e Entry
		copy(e.Hash[:], data)
		e.Kind, e.Status = Kind(data[32]), Status(data[33])
		idLen := int(data[34])
		data = data[entryFixedLen:]
		if len(data) < idLen {
			return nil, fmt.Errorf("%w: entry %d is cut short", errBadChunk, len(out))
		}
		e.ID = string(data[:idLen])
		data = data[idLen:]
		out = append(out, e)
	}
	return out, nil
}

// bucketOf is the chunk an entry goes to when the set is split into 1<<bits chunks: the top bits
// of its hash, so that adding an entry changes one chunk only.
func bucketOf(h Hash, bits int) int {
	if bits == 0 {
		return 0
	}
	return int(binary.BigEndian.Uint16(h[:2]) >> (16 - bits))
}

// maxBits: 65,536 chunks of up to MaxChunkBytes hold far more than any list needs.
const maxBits = 16

// split cuts the set into 1<<bits chunks, bits the smallest that keeps every encoded chunk at
// most maxBytes. Empty chunks are left out.
func (s *Set) split(maxBytes int) ([][]Entry, int, error) {
	for bits := 0; bits <= maxBits; bits++ {
		sizes := make([]int, 1<<bits)
		fits := true
		for _, e := range s.entries {
			b := bucketOf(e.Hash, bits)
			sizes[b] += entryFixedLen + len(e.ID)
			if sizes[b]+len(chunkMagic) > maxBytes {
				fits = false
				break
			}
		}
		if !fits {
			continue
		}
		chunks := make([][]Entry, 1<<bits)
		for _, e := range s.entries {
			b := bucketOf(e.Hash, bits)
			chunks[b] = append(chunks[b], e)
		}
		return slices.DeleteFunc(chunks, func(c []Entry) bool { return len(c) == 0 }), bits, nil
	}
	return nil, 0, fmt.Errorf("%d entries do not fit in %d chunks of %d bytes", len(s.entries), 1<<maxBits, maxBytes)
}
