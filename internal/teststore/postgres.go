package teststore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway PostgreSQL server on a free loopback port with a temp data dir,
// password (scram-sha-256) auth for superuser User with password Password.
type Postgres struct {
	Host     string
	Port     int
	User     string
	Password string

	mu      sync.Mutex
	baseDir string
	dataDir string
	proc    *process
	cred    *syscall.Credential
	closed  bool
}

// StartPostgres initialises a fresh cluster in a temp dir and starts it.
func StartPostgres(ctx context.Context) (_ *Postgres, err error) {
	initdb, err := findBinary("initdb", "postgresql")
	if err != nil {
		return nil, err
	}
	server, err := findSibling(initdb, "postgres", "postgresql")
	if err != nil {
		return nil, err
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	base, err := makeBaseDir("pg")
	if err != nil {
		return nil, err
	}
	p := &Postgres{
		Host:     "127.0.0.1",
		User:     "dsr",
		Password: randomHex(16),
		baseDir:  base,
		dataDir:  filepath.Join(base, "data"),
		cred:     cred,
	}
	defer func() {
		if err != nil {
			_ = p.Close()
		}
	}()
	if cred != nil {
		// initdb creates the data dir inside base, and postgres refuses a data dir it does not own.
		if err := os.Chown(base, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("teststore: chown %s to postgres: %w", base, err)
		}
	}
	pwFile := filepath.Join(base, "pwfile")
	if err := writeOwnedFile(pwFile, p.Password+"\n", cred); err != nil {
		return nil, err
	}
	logPath := filepath.Join(base, "postgres.log")
	err = runTool(ctx, logPath, base, cred, initdb,
		"-D", p.dataDir, "-U", p.User, "--auth=scram-sha-256", "--pwfile="+pwFile,
		"--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	_ = os.Remove(pwFile)
	if err != nil {
		return nil, err
	}
	p.proc = &process{name: "postgres", bin: server, dir: base, cred: cred, logPath: logPath}
	port, err := startWithPortRetry(ctx, func(ctx context.Context, port int) (*process, error) {
		p.Port = port
		return p.proc, p.launch(ctx)
	})
	if err != nil {
		return nil, err
	}
	p.Port = port
	return p, nil
}

// postgresCredential returns the identity to run PostgreSQL as: it refuses to run as root.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("teststore: running as root, and PostgreSQL refuses to run as root, but the OS user "+
			"\"postgres\" (created by the Debian postgresql package, which `make test` installs with apt) is missing: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("teststore: postgres uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("teststore: postgres gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func writeOwnedFile(path, content string, cred *syscall.Credential) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("teststore: write %s: %w", path, err)
	}
	if cred != nil {
		if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("teststore: chown %s: %w", path, err)
		}
	}
	return nil
}

// launch starts postgres on p.Port and waits for a real login. Settings trade durability for
// speed: the data is disposable, and CI starts many of these.
func (p *Postgres) launch(ctx context.Context) error {
	p.proc.args = []string{
		"-D", p.dataDir,
		"-p", strconv.Itoa(p.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + p.baseDir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB",
		"-c", "max_connections=200",
		"-c", "max_wal_size=256MB",
		"-c", "checkpoint_timeout=1h",
		"-c", "autovacuum=off",
		"-c", "log_min_messages=warning",
		"-c", "logging_collector=off",
	}
	return p.proc.startAndWait(ctx, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, p.DSN("postgres"))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
}

// DSN returns a pgx/libpq URL for database db.
func (p *Postgres) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(p.User, p.Password),
		Host:     fmt.Sprintf("%s:%d", p.Host, p.Port),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates a fresh database (a unique name if name == "") and returns its DSN.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	if name == "" {
		name = uniqueDBName()
	}
	conn, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("teststore: connect to postgres: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("teststore: create postgres database %q: %w", name, err)
	}
	return p.DSN(name), nil
}

// Stop shuts the server down (fast shutdown) and keeps the data, for outage tests.
func (p *Postgres) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return nil
	}
	return p.proc.stop(syscall.SIGINT)
}

// Start starts a stopped server again on the same port and data. Starting a running server is a no-op.
func (p *Postgres) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("teststore: postgres is closed")
	}
	if p.proc.running() {
		return nil
	}
	return p.launch(ctx)
}

// Close stops the server and removes its directory. It is idempotent.
func (p *Postgres) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var stopErr error
	if p.proc != nil {
		// Immediate shutdown: the data is about to be deleted, so there is nothing to flush.
		stopErr = p.proc.stop(syscall.SIGQUIT)
	}
	return errors.Join(stopErr, os.RemoveAll(p.baseDir))
}
