package metricsauth

import (
	"sync"
	"time"
)

// ttlCache is a map whose entries expire and whose size is bounded. It exists so that this package
// does not need k8s.io/apiserver's or k8s.io/utils' caches, and because the keys are derived from
// attacker-chosen input (any client may send any token or path): without the bound, a flood of
// distinct tokens would grow memory for as long as the flood lasts.
type ttlCache[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	entries map[K]cacheEntry[V]
}

type cacheEntry[V any] struct {
	value   V
	expires time.Time
}

func newTTLCache[K comparable, V any](maxEntries int) *ttlCache[K, V] {
	return &ttlCache[K, V]{max: maxEntries, entries: make(map[K]cacheEntry[V])}
}

func (c *ttlCache[K, V]) get(key K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		var zero V
		return zero, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, key)
		var zero V
		return zero, false
	}
	return e.value, true
}

// set stores value until now+ttl. A ttl <= 0 means "do not cache", which is how callers turn
// caching of one kind of result off.
func (c *ttlCache[K, V]) set(key K, value V, now time.Time, ttl time.Duration) {
	if ttl <= 0 || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.entries[key]; !exists && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[key] = cacheEntry[V]{value: value, expires: now.Add(ttl)}
}

// evictLocked makes room for one entry: expired entries go first, and if none had expired, the
// entry closest to expiry goes, being the one whose loss costs the least. The scan is O(max), which
// only happens when the cache is full and is negligible next to the API request that a miss costs.
func (c *ttlCache[K, V]) evictLocked(now time.Time) {
	var (
		victim  K
		soonest time.Time
		found   bool
	)
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
			continue
		}
		if !found || e.expires.Before(soonest) {
			victim, soonest, found = k, e.expires, true
		}
	}
	if len(c.entries) >= c.max && found {
		delete(c.entries, victim)
	}
}

func (c *ttlCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
