package sqlstore

import (
	"sync"
	"time"
)

// catalogCache holds the mapped tables as last resolved. Reading the catalog is most of what a
// small erasure costs the database (MariaDB's information_schema especially), and a request
// reads it three times (plan, erase, verify).
type catalogCache struct {
	mu     sync.Mutex
	tables []*Table
	until  time.Time
	// fks are the catalog's foreign keys, read for every derive and erase of a linked mapping
	// (110-170 ms a read on MariaDB): cached for the same time and forgotten with the tables.
	fks      []ForeignKey
	fksUntil time.Time
}

func (c *catalogCache) get(now time.Time) []*Table {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tables == nil || !now.Before(c.until) {
		return nil
	}
	return c.tables
}

func (c *catalogCache) set(tables []*Table, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tables, c.until = tables, until
}

func (c *catalogCache) getForeignKeys(now time.Time) ([]ForeignKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !now.Before(c.fksUntil) {
		return nil, false
	}
	return c.fks, true
}

func (c *catalogCache) setForeignKeys(fks []ForeignKey, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fks, c.fksUntil = fks, until
}

func (c *catalogCache) forget() {
	c.set(nil, time.Time{})
	c.setForeignKeys(nil, time.Time{})
}
