package teststore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sharedStartTimeout covers binary lookup, data dir bootstrap and readiness together.
const sharedStartTimeout = 2 * time.Minute

// shared holds one lazily started server per test binary. A failed start is remembered so
// every test reports the same cause instead of retrying a broken setup.
type shared[T interface{ Close() error }] struct {
	mu      sync.Mutex
	started bool
	server  T
	err     error
	start   func(context.Context) (T, error)
}

func (s *shared[T]) get(t testing.TB, kind string) T {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		ctx, cancel := context.WithTimeout(context.Background(), sharedStartTimeout)
		begin := time.Now()
		s.server, s.err = s.start(ctx)
		cancel()
		if s.err == nil {
			t.Logf("teststore: shared %s started in %s", kind, time.Since(begin).Round(time.Millisecond))
		}
	}
	if s.err != nil {
		t.Fatalf("teststore: shared %s unavailable: %v", kind, s.err)
	}
	return s.server
}

func (s *shared[T]) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.started && s.err == nil {
		err = s.server.Close()
	}
	var zero T
	s.started, s.server, s.err = false, zero, nil
	return err
}

var (
	sharedPostgres = shared[*Postgres]{start: StartPostgres}
	sharedMariaDB  = shared[*MariaDB]{start: StartMariaDB}
	sharedRedis    = shared[*Redis]{start: StartRedis}
	sharedMongo    = shared[*Mongo]{start: StartMongo}
)

// SharedPostgres returns the test binary's PostgreSQL server, starting it on first use.
// It fails the test (never skips) when the server cannot start.
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	return sharedPostgres.get(t, "postgres")
}

// SharedMariaDB returns the test binary's MariaDB server, starting it on first use.
func SharedMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	return sharedMariaDB.get(t, "mariadb")
}

// SharedRedis returns the test binary's Redis server, starting it on first use.
func SharedRedis(t testing.TB) *Redis {
	t.Helper()
	return sharedRedis.get(t, "redis")
}

// SharedMongo returns the test binary's FerretDB server, starting it on first use.
func SharedMongo(t testing.TB) *Mongo {
	t.Helper()
	return sharedMongo.get(t, "mongo")
}

// CloseShared stops and removes every shared server; call it from TestMain after m.Run().
// A later Shared* call starts a new server.
func CloseShared() {
	err := errors.Join(sharedPostgres.close(), sharedMariaDB.close(), sharedRedis.close(), sharedMongo.close())
	if err != nil {
		// TestMain has no testing.TB to report to, and a failed cleanup must not hide test results.
		fmt.Fprintf(os.Stderr, "teststore: CloseShared: %v\n", err)
	}
}

var dbCounter atomic.Uint64

// uniqueDBName is unique within the test binary (counter) and across binaries sharing nothing
// but a habit of reusing names (random suffix); it is a valid unquoted identifier everywhere.
func uniqueDBName() string {
	return fmt.Sprintf("t%d_%s", dbCounter.Add(1), randomHex(4))
}
