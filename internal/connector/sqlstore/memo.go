package sqlstore

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/cache"
)

// A deletion is derived, planned and erased in one reconcile, tens of milliseconds apart, and each
// of these searched the normalised match columns for the subject's spellings again. The erasure
// now starts from the spellings its derivation found (spellingMemo) and searches only for values
// it did not have. A spelling written in between is not erased by it; the verification that
// follows searches again, finds the row and the erasure is repeated, so the memo costs nothing
// in correctness. Verification never uses it.

const (
	// spellingMemoTTL is how long a derivation's spellings wait for their erasure: longer than one
	// reconcile, short enough that no stale spelling outlives a retry.
	spellingMemoTTL = time.Minute
	// spellingMemoMax bounds the requests remembered at once (each holds a few spellings).
	spellingMemoMax = 4096
)

// spellings are a derivation's finds: per quoted table and column, per value, the stored spellings.
type spellings map[string]map[string][]string

// spellingMemo holds the spellings of the deletions derived recently, by request ID, until their
// erasure takes them. They are the subject's data, so they stay in memory only, briefly. The zero
// value is ready to use.
type spellingMemo struct {
	once    sync.Once
	entries *cache.Expiring
}

func (m *spellingMemo) expiring() *cache.Expiring {
	m.once.Do(func() { m.entries = cache.NewExpiring() })
	return m.entries
}

// put remembers found for the request id, and nothing when spellingMemoMax requests are
// remembered already (expired ones are dropped first).
func (m *spellingMemo) put(id string, found spellings) {
	if id == "" || len(found) == 0 {
		return
	}
	c := m.expiring()
	c.Set(id, found, spellingMemoTTL)
	if c.Len() > spellingMemoMax {
		c.Delete(id)
	}
}

// take returns and forgets what put remembered for id, if it has not expired.
func (m *spellingMemo) take(id string) spellings {
	c := m.expiring()
	found, ok := c.Get(id)
	if !ok {
		return nil
	}
	c.Delete(id)
	return found.(spellings)
}

// spellingsOf collects what bind found in tables' normalised match columns.
func spellingsOf(tables []*Table) spellings {
	found := spellings{}
	for _, t := range tables {
		for i, m := range t.match {
			if !m.normalised() || len(t.spellings[i]) == 0 {
				continue
			}
			key := memoKey(t, m)
			byValue := found[key]
			if byValue == nil {
				byValue = map[string][]string{}
				found[key] = byValue
			}
			for raw, sp := range t.spellings[i] {
				byValue[raw] = sp
			}
		}
	}
	return found
}

// memoKey names a column the same way whichever mapping of its table resolved it: the spellings
// stored in a column do not depend on the mapping.
func memoKey(t *Table, m matchColumn) string { return t.quoted + "." + m.quoted }
