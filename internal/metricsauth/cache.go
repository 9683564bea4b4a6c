package metricsauth

import (
	"time"

	"k8s.io/apimachinery/pkg/util/cache"
)

// ttlCache is a typed view of apimachinery's LRUExpireCache: entries expire, and the size is
// bounded because the keys are derived from attacker-chosen input (any client may send any token
// or path): without the bound, a flood of distinct tokens would grow memory for as long as the
// flood lasts. When full, the least recently used entry goes.
type ttlCache[K comparable, V any] struct {
	lru *cache.LRUExpireCache
}

// clockFunc adapts the Options' clock to the cache's.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

func newTTLCache[K comparable, V any](maxEntries int, now func() time.Time) *ttlCache[K, V] {
	return &ttlCache[K, V]{lru: cache.NewLRUExpireCacheWithClock(maxEntries, clockFunc(now))}
}

func (c *ttlCache[K, V]) get(key K) (V, bool) {
	v, ok := c.lru.Get(key)
	if !ok {
		var zero V
		return zero, false
	}
	return v.(V), true
}

// set stores value for ttl. A ttl <= 0 means "do not cache", which is how callers turn caching
// off.
func (c *ttlCache[K, V]) set(key K, value V, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	c.lru.Add(key, value, ttl)
}

// len counts the unexpired entries; tests use it.
func (c *ttlCache[K, V]) len() int { return len(c.lru.Keys()) }
