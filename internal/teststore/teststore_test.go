package teststore

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
)

// orphanEnv makes the test binary act as a helper that starts a server and waits to be killed.
const orphanEnv = "TESTSTORE_ORPHAN_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(orphanEnv) == "1" {
		runOrphanHelper()
		return
	}
	code := m.Run()
	CloseShared()
	os.Exit(code)
}

func runOrphanHelper() {
	r, err := StartRedis(context.Background())
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Printf("%d %d %s\n", r.proc.cmd.Process.Pid, r.Port, r.baseDir)
	select {} // wait for the parent test to kill us
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func requireRefused(t *testing.T, host string, port int) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), 2*time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("port %d still accepts TCP connections", port)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial port %d: want connection refused, got %v", port, err)
	}
}

func requireGone(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("directory %s still exists after Close (stat err: %v)", dir, err)
	}
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	begin := time.Now()
	pg, err := StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	t.Logf("postgres started in %s on port %d", time.Since(begin).Round(time.Millisecond), pg.Port)

	if !strings.HasPrefix(pg.DSN("x"), fmt.Sprintf("postgres://dsr:%s@127.0.0.1:%d/x?sslmode=disable", pg.Password, pg.Port)) {
		t.Fatalf("unexpected DSN shape for port %d", pg.Port)
	}

	dsnA, err := pg.CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	dsnB, err := pg.CreateDatabase(ctx, "Named-DB")
	if err != nil {
		t.Fatal(err)
	}
	if dsnA == dsnB {
		t.Fatal("CreateDatabase returned the same DSN twice")
	}
	a := pgConnect(t, ctx, dsnA)
	if _, err := a.Exec(ctx, "CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO users VALUES (1, 'a'), (2, 'b')"); err != nil {
		t.Fatal(err)
	}
	var superuser bool
	if err := a.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&superuser); err != nil || !superuser {
		t.Fatalf("dsr must be superuser: %v, %v", superuser, err)
	}
	a.Close(ctx)

	b := pgConnect(t, ctx, dsnB)
	var exists bool
	if err := b.QueryRow(ctx, "SELECT to_regclass('users') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("table created in one database is visible in another")
	}
	b.Close(ctx)

	wrong := strings.Replace(dsnA, pg.Password, pg.Password+"x", 1)
	_, err = pgx.Connect(ctx, wrong)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("wrong password: want SQLSTATE 28P01 (invalid_password), got %v", err)
	}

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	shortCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = pgx.Connect(shortCtx, dsnA)
	cancel()
	if err == nil {
		t.Fatal("connect succeeded while postgres is stopped")
	}
	requireRefused(t, pg.Host, pg.Port)

	begin = time.Now()
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("postgres restarted in %s", time.Since(begin).Round(time.Millisecond))
	a = pgConnect(t, ctx, dsnA)
	var n int
	if err := a.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("after restart: want 2 rows, got %d", n)
	}
	a.Close(ctx)

	if err := pg.Close(); err != nil {
		t.Fatal(err)
	}
	requireGone(t, pg.baseDir)
	requireRefused(t, pg.Host, pg.Port)
	if err := pg.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := pg.Start(ctx); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

func pgConnect(t *testing.T, ctx context.Context, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestMariaDB(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	begin := time.Now()
	m, err := StartMariaDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	t.Logf("mariadb started in %s on port %d", time.Since(begin).Round(time.Millisecond), m.Port)

	if want := fmt.Sprintf("dsr:%s@tcp(127.0.0.1:%d)/x?parseTime=true&multiStatements=false", m.Password, m.Port); m.DSN("x") != want {
		t.Fatalf("unexpected DSN shape for port %d", m.Port)
	}

	dsnA, err := m.CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	dsnB, err := m.CreateDatabase(ctx, "named-db")
	if err != nil {
		t.Fatal(err)
	}
	if dsnA == dsnB {
		t.Fatal("CreateDatabase returned the same DSN twice")
	}
	a := mysqlOpen(t, dsnA)
	if _, err := a.ExecContext(ctx, "CREATE TABLE users (id int PRIMARY KEY, email varchar(100))"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, "INSERT INTO users VALUES (1, 'a'), (2, 'ü')"); err != nil {
		t.Fatal(err)
	}
	var grants string
	if err := a.QueryRowContext(ctx, "SHOW GRANTS").Scan(&grants); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(grants, "ALL PRIVILEGES ON *.*") {
		t.Fatalf("dsr lacks all privileges: %s", grants)
	}
	// Multi-statement must stay off: connectors rely on the driver refusing stacked queries.
	if _, err := a.ExecContext(ctx, "SELECT 1; SELECT 2"); err == nil {
		t.Fatal("multi-statement query accepted")
	}

	b := mysqlOpen(t, dsnB)
	var tables int
	if err := b.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("table created in one database is visible in another (%d tables)", tables)
	}

	wrong := strings.Replace(dsnA, m.Password, m.Password+"x", 1)
	err = mysqlOpen(t, wrong).PingContext(ctx)
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) || myErr.Number != 1045 {
		t.Fatalf("wrong password: want error 1045 (access denied), got %v", err)
	}

	a.Close()
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := mysqlOpen(t, dsnA).PingContext(ctx); err == nil {
		t.Fatal("ping succeeded while mariadb is stopped")
	}
	requireRefused(t, m.Host, m.Port)

	begin = time.Now()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("mariadb restarted in %s", time.Since(begin).Round(time.Millisecond))
	var n int
	if err := mysqlOpen(t, dsnA).QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("after restart: want 2 rows, got %d", n)
	}

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	requireGone(t, m.baseDir)
	requireRefused(t, m.Host, m.Port)
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func mysqlOpen(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRedis(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	begin := time.Now()
	r, err := StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	t.Logf("redis started in %s on port %d", time.Since(begin).Round(time.Millisecond), r.Port)

	if want := fmt.Sprintf("redis://:%s@127.0.0.1:%d/3", r.Password, r.Port); r.URL(3) != want {
		t.Fatalf("unexpected URL shape for port %d", r.Port)
	}
	db1 := redisClient(t, r.URL(1))
	db2 := redisClient(t, r.URL(2))
	if err := db1.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := db1.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("get from db 1: %q, %v", got, err)
	}
	if err := db2.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("key from db 1 visible in db 2: %v", err)
	}

	wrong := redisClient(t, strings.Replace(r.URL(0), r.Password, r.Password+"x", 1))
	if err := wrong.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: want WRONGPASS, got %v", err)
	}
	noPass := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(r.Host, strconv.Itoa(r.Port))})
	defer noPass.Close()
	if err := noPass.Get(ctx, "k").Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("no password: want NOAUTH, got %v", err)
	}

	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := db1.Ping(ctx).Err(); err == nil {
		t.Fatal("ping succeeded while redis is stopped")
	}
	requireRefused(t, r.Host, r.Port)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db1.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
	// Persistence is off, so a restart is also a wipe.
	if err := db1.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("key survived a restart without persistence: %v", err)
	}
	if entries, err := os.ReadDir(r.baseDir); err != nil {
		t.Fatal(err)
	} else {
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".rdb") || strings.HasSuffix(e.Name(), ".aof") || e.Name() == "appendonlydir" {
				t.Fatalf("redis wrote persistence file %s", e.Name())
			}
		}
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	requireGone(t, r.baseDir)
	requireRefused(t, r.Host, r.Port)
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSharedServersAreReused(t *testing.T) {
	ctx := testCtx(t)
	pg := SharedPostgres(t)
	if SharedPostgres(t) != pg {
		t.Fatal("SharedPostgres started a second server")
	}
	if _, err := pg.CreateDatabase(ctx, ""); err != nil {
		t.Fatal(err)
	}
	m := SharedMariaDB(t)
	if SharedMariaDB(t) != m {
		t.Fatal("SharedMariaDB started a second server")
	}
	if _, err := m.CreateDatabase(ctx, ""); err != nil {
		t.Fatal(err)
	}
	r := SharedRedis(t)
	if SharedRedis(t) != r {
		t.Fatal("SharedRedis started a second server")
	}
	if err := redisClient(t, r.URL(0)).Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	dir := r.baseDir
	CloseShared()
	requireGone(t, dir)
	if SharedRedis(t) == r {
		t.Fatal("SharedRedis returned a closed server after CloseShared")
	}
}

// A test binary killed by a timeout or SIGKILL must not leave a server running.
func TestServerDiesWithKilledTestBinary(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), orphanEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("helper output: %v", err)
	}
	var serverPID, port int
	var baseDir string
	if _, err := fmt.Sscanf(line, "%d %d %s", &serverPID, &port, &baseDir); err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("helper said %q: %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// The leader thread turns zombie before the other threads have released the socket, so wait
	// for both signs of death.
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(serverPID) || portOpen(port) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(serverPID, syscall.SIGKILL)
			t.Fatalf("redis-server %d outlived its killed test binary (alive %v, port open %v)",
				serverPID, processAlive(serverPID), portOpen(port))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The orphaned directory is swept by the next binary that starts a server.
	if _, err := os.Stat(baseDir); err != nil {
		t.Fatalf("expected orphaned dir %s to exist before the sweep: %v", baseDir, err)
	}
	removeStaleDirs()
	requireGone(t, baseDir)
}

func portOpen(port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// A test that starts a server from a goroutine locked to its OS thread, which then exits, must
// not lose the server: Pdeathsig follows the forking thread, and Go ends such a thread (except
// the main thread, which it parks; the goroutine is kept off that one so the test can fail).
func TestServerSurvivesExitOfStartingThread(t *testing.T) {
	ctx := testCtx(t)
	type outcome struct {
		onMainThread bool
		server       *Redis
		err          error
	}
	releaseMain := make(chan struct{})
	defer close(releaseMain)
	var got outcome
	for attempt := 0; ; attempt++ {
		if attempt > 10 {
			t.Fatal("could not get a goroutine onto a non-main thread")
		}
		outcomes := make(chan outcome)
		go func() {
			runtime.LockOSThread() // never unlocked off the main thread: the thread exits with the goroutine
			if syscall.Gettid() == os.Getpid() {
				outcomes <- outcome{onMainThread: true}
				<-releaseMain // occupy the main thread so the next attempt lands elsewhere
				runtime.UnlockOSThread()
				return
			}
			r, err := StartRedis(ctx)
			outcomes <- outcome{server: r, err: err}
		}()
		if got = <-outcomes; !got.onMainThread {
			break
		}
	}
	if got.err != nil {
		t.Fatal(got.err)
	}
	r := got.server
	t.Cleanup(func() { _ = r.Close() })
	time.Sleep(300 * time.Millisecond) // let the thread exit and any death signal arrive
	if !processAlive(r.proc.cmd.Process.Pid) {
		t.Fatal("redis-server died when the thread that started it exited")
	}
	if err := redisClient(t, r.URL(0)).Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after the starting thread exited: %v", err)
	}
}

// processAlive treats zombies as dead: a container's init may never reap reparented children.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

func TestSweepKeepsLiveOwners(t *testing.T) {
	dir, err := os.MkdirTemp("", dirPrefix+"sweeptest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getppid())), 0o644); err != nil {
		t.Fatal(err)
	}
	removeStaleDirs()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("dir of a live owner was swept: %v", err)
	}
}

// Another process may take the probed port before the server binds it; each server must notice
// from its own log and retry on a new port. Not parallel: it swaps pickPort.
func TestStartRetriesWhenPortIsTaken(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		name  string
		start func(context.Context) (port int, logPath string, closeFn func() error, err error)
	}{
		{"postgres", func(ctx context.Context) (int, string, func() error, error) {
			s, err := StartPostgres(ctx)
			if err != nil {
				return 0, "", nil, err
			}
			return s.Port, s.proc.logPath, s.Close, nil
		}},
		{"mariadb", func(ctx context.Context) (int, string, func() error, error) {
			s, err := StartMariaDB(ctx)
			if err != nil {
				return 0, "", nil, err
			}
			return s.Port, s.proc.logPath, s.Close, nil
		}},
		{"redis", func(ctx context.Context) (int, string, func() error, error) {
			s, err := StartRedis(ctx)
			if err != nil {
				return 0, "", nil, err
			}
			return s.Port, s.proc.logPath, s.Close, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			takenPort := taken.Addr().(*net.TCPAddr).Port
			calls := 0
			pickPort = func() (int, error) {
				calls++
				if calls == 1 {
					return takenPort, nil
				}
				return freePort()
			}
			defer func() { pickPort = freePort }()

			begin := time.Now()
			port, logPath, closeFn, err := tc.start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			log := logTail(logPath)
			defer func() { _ = closeFn() }()
			t.Logf("started after losing a port in %s", time.Since(begin).Round(time.Millisecond))
			if calls != 2 || port == takenPort {
				t.Fatalf("want a retry on a second port: %d port picks, port %d (taken %d)", calls, port, takenPort)
			}
			if !strings.Contains(strings.ToLower(log), "address already in use") {
				t.Fatalf("log does not show the failed bind:\n%s", log)
			}
		})
	}
}

func TestMissingBinaryErrorNamesBinaryAndInstaller(t *testing.T) {
	_, err := findBinary("no-such-server-binary", "some-package")
	if err == nil {
		t.Fatal("found a binary that does not exist")
	}
	for _, want := range []string{`"no-such-server-binary"`, "make test", "apt", "some-package"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestFindSiblingPrefersSameDirectory(t *testing.T) {
	initdb, err := findBinary("initdb", "postgresql")
	if err != nil {
		t.Fatal(err)
	}
	server, err := findSibling(initdb, "postgres", "postgresql")
	if err != nil {
		t.Fatal(err)
	}
	resolved, _ := filepath.EvalSymlinks(initdb)
	if filepath.Dir(server) != filepath.Dir(resolved) {
		t.Fatalf("postgres %s is not next to initdb %s", server, resolved)
	}
}
