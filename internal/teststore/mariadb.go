package teststore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/go-sql-driver/mysql"
)

// MariaDB is a throwaway MariaDB server on a free loopback port with a temp data dir. User has
// all privileges (with grant option) and logs in over TCP on 127.0.0.1 with Password.
type MariaDB struct {
	Host     string
	Port     int
	User     string
	Password string

	mu      sync.Mutex
	baseDir string
	dataDir string
	socket  string
	proc    *process
	closed  bool
}

// StartMariaDB initialises a fresh data dir in a temp dir, starts the server and creates User.
func StartMariaDB(ctx context.Context) (_ *MariaDB, err error) {
	server, err := findBinary("mariadbd", "mariadb-server")
	if err != nil {
		return nil, err
	}
	installDB, err := findSibling(server, "mariadb-install-db", "mariadb-server")
	if err != nil {
		return nil, err
	}
	base, err := makeBaseDir("mariadb")
	if err != nil {
		return nil, err
	}
	m := &MariaDB{
		Host:     "127.0.0.1",
		User:     "dsr",
		Password: randomHex(16),
		baseDir:  base,
		dataDir:  filepath.Join(base, "data"),
		socket:   filepath.Join(base, "mariadb.sock"),
	}
	defer func() {
		if err != nil {
			_ = m.Close()
		}
	}()
	if err := os.Mkdir(filepath.Join(base, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("teststore: create mariadb tmpdir: %w", err)
	}
	logPath := filepath.Join(base, "mariadb.log")
	// --no-defaults must come first; the remaining options are passed on to the bootstrap server.
	installArgs := []string{"--no-defaults", "--datadir=" + m.dataDir,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"}
	installArgs = append(installArgs, rootUserArgs()...)
	installArgs = append(installArgs, mariadbSpeedArgs()...)
	if err := runTool(ctx, logPath, base, nil, installDB, installArgs...); err != nil {
		return nil, err
	}
	m.proc = &process{name: "mariadbd", bin: server, dir: base, logPath: logPath}
	port, err := startWithPortRetry(ctx, func(ctx context.Context, port int) (*process, error) {
		m.Port = port
		return m.proc, m.launch(ctx, m.pingRoot)
	})
	if err != nil {
		return nil, err
	}
	m.Port = port
	if err := m.createUser(ctx); err != nil {
		return nil, err
	}
	if err := m.pingUser(ctx); err != nil {
		return nil, fmt.Errorf("teststore: mariadb user %s cannot log in over TCP: %w", m.User, err)
	}
	return m, nil
}

// rootUserArgs lets mariadbd run as root, which it refuses without being told explicitly.
func rootUserArgs() []string {
	if os.Geteuid() == 0 {
		return []string{"--user=root"}
	}
	return nil
}

// mariadbSpeedArgs trade durability and memory for start-up speed: the data is disposable.
// Native AIO is off because io_setup fails once many servers share the kernel's AIO limit.
func mariadbSpeedArgs() []string {
	return []string{
		"--innodb-flush-log-at-trx-commit=0",
		"--innodb-buffer-pool-size=16M",
		"--innodb-log-file-size=16M",
		"--innodb-doublewrite=0",
		"--innodb-use-native-aio=0",
		"--sync-binlog=0",
	}
}

func (m *MariaDB) launch(ctx context.Context, probe func(context.Context) error) error {
	args := []string{
		"--no-defaults",
		"--datadir=" + m.dataDir,
		"--port=" + strconv.Itoa(m.Port),
		"--skip-networking=0",
		"--bind-address=127.0.0.1",
		"--socket=" + m.socket,
		"--pid-file=" + filepath.Join(m.baseDir, "mariadb.pid"),
		"--tmpdir=" + filepath.Join(m.baseDir, "tmp"),
		"--skip-name-resolve",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_unicode_ci",
		"--max-connections=200",
		"--performance-schema=OFF",
	}
	args = append(args, rootUserArgs()...)
	m.proc.args = append(args, mariadbSpeedArgs()...)
	return m.proc.startAndWait(ctx, probe)
}

// pingRoot logs in as the passwordless root over the socket, which is only reachable from here.
func (m *MariaDB) pingRoot(ctx context.Context) error {
	return pingMySQL(ctx, m.rootDSN())
}

func (m *MariaDB) pingUser(ctx context.Context) error {
	return pingMySQL(ctx, m.DSN(""))
}

func (m *MariaDB) rootDSN() string {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "unix"
	cfg.Addr = m.socket
	return cfg.FormatDSN()
}

func pingMySQL(ctx context.Context, dsn string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}

func (m *MariaDB) createUser(ctx context.Context) error {
	db, err := sql.Open("mysql", m.rootDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	// '%' also covers 127.0.0.1; the server only listens on loopback anyway.
	for _, stmt := range []string{
		fmt.Sprintf("CREATE USER %s@'%%' IDENTIFIED BY %s", quoteMySQLString(m.User), quoteMySQLString(m.Password)),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", quoteMySQLString(m.User)),
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("teststore: create mariadb user %s: %w", m.User, err)
		}
	}
	return nil
}

// DSN returns a go-sql-driver/mysql DSN for database db.
func (m *MariaDB) DSN(db string) string {
	return fmt.Sprintf("%s:%s@tcp(%s:%d)/%s?parseTime=true&multiStatements=false", m.User, m.Password, m.Host, m.Port, db)
}

// CreateDatabase creates a fresh database (a unique name if name == "") and returns its DSN.
func (m *MariaDB) CreateDatabase(ctx context.Context, name string) (string, error) {
	if name == "" {
		name = uniqueDBName()
	}
	db, err := sql.Open("mysql", m.DSN(""))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+quoteMySQLIdent(name)); err != nil {
		return "", fmt.Errorf("teststore: create mariadb database %q: %w", name, err)
	}
	return m.DSN(name), nil
}

// Stop shuts the server down and keeps the data, for outage tests.
func (m *MariaDB) Stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return nil
	}
	return m.proc.stop(syscall.SIGTERM)
}

// Start starts a stopped server again on the same port and data. Starting a running server is a no-op.
func (m *MariaDB) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("teststore: mariadb is closed")
	}
	if m.proc.running() {
		return nil
	}
	return m.launch(ctx, m.pingUser)
}

// Close stops the server and removes its directory. It is idempotent.
func (m *MariaDB) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var stopErr error
	if m.proc != nil {
		// The data is about to be deleted, so a clean InnoDB shutdown would be wasted time.
		stopErr = m.proc.stop(syscall.SIGKILL)
	}
	return errors.Join(stopErr, os.RemoveAll(m.baseDir))
}

func quoteMySQLIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

func quoteMySQLString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}
