// Package teststore starts real, throwaway PostgreSQL, MariaDB and Redis servers, and FerretDB (a
// server of the MongoDB wire protocol over SQLite, built into bin/ by `make ferretdb`), for tests.
//
// Every server listens on a free port on 127.0.0.1, keeps its data in a fresh directory under
// os.TempDir(), and never touches a system instance or its configuration. Connector tests run
// against these real servers: no mocks, and no skipping when a binary is missing (the error
// says which binary and that `make test` installs it with apt).
//
// # Shared servers (the usual pattern)
//
// Starting a server costs about a second, so a test binary starts each kind at most once and
// gives every test its own database on it. Call CloseShared from TestMain so the servers and
// their data are removed when the package's tests finish:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		teststore.CloseShared()
//		os.Exit(code)
//	}
//
//	func TestEraseDeletesRows(t *testing.T) {
//		ctx := context.Background()
//		dsn, err := teststore.SharedPostgres(t).CreateDatabase(ctx, "")
//		if err != nil {
//			t.Fatal(err)
//		}
//		// connect to dsn with pgx, create tables, run the connector, count the rows left
//	}
//
// SharedPostgres, SharedMariaDB and SharedRedis fail the test when their server cannot start.
// CreateDatabase with an empty name picks a unique name, so tests may run in parallel without
// seeing each other's tables. Redis has no CreateDatabase: use a logical database number per
// test (Redis.URL(n), n in 0..15) or unique key prefixes, and FLUSHDB what you own.
//
// # Outage tests
//
// Stop, Start and Close act on the server they are called on, so a test that takes its server
// down must start its own instead of using a shared one:
//
//	pg, err := teststore.StartPostgres(ctx)
//	if err != nil {
//		t.Fatal(err)
//	}
//	t.Cleanup(func() { pg.Close() })
//	pg.Stop()      // connections now fail with "connection refused"
//	pg.Start(ctx)  // same port, same data (Redis restarts empty: it has no persistence)
//
// # Credentials
//
// PostgreSQL and MariaDB have a superuser (all privileges) named "dsr" with a random password;
// Redis requires a random password. The fields User, Password, Host and Port are there for tests
// that build their own connection settings (for example a Kubernetes Secret), and for tests that
// check a wrong password is reported as an authentication error.
//
// # Processes
//
// The servers are child processes of the test binary with Pdeathsig set, so they die with it
// even when `go test` kills it on timeout. Their directories are then left behind and are
// removed by the next test binary that starts a server. When running as root, PostgreSQL runs
// as the OS user "postgres" (it refuses root) and MariaDB with --user=root. Durability is
// traded for speed (fsync off and similar), which is fine for data that is deleted afterwards
// but means a test cannot simulate a power loss. When a server fails to start, the error holds
// the tail of its log.
package teststore
