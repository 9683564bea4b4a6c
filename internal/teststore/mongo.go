package teststore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// FerretDBVersion is the FerretDB release hack/build-ferretdb.sh builds into bin/.
const FerretDBVersion = "v1.24.2"

// Mongo is a throwaway server of the MongoDB wire protocol: FerretDB over a SQLite directory, on
// a free loopback port. No MongoDB server is packaged for our machines; FerretDB is built from the
// Go module proxy by `make ferretdb` (hack/build-ferretdb.sh). Stop and Start keep the port and
// the data. It runs without authentication: the connection URI is all a client needs.
type Mongo struct {
	Host string
	Port int

	// extraArgs are passed to ferretdb after the defaults (StartMongoWithArgs).
	extraArgs []string

	lifecycle
}

// ferretDBBinary finds the FerretDB binary: $FERRETDB_BIN, else bin/ferretdb/<version>/ferretdb
// in the module root above the working directory (a test's working directory is its package).
func ferretDBBinary() (string, error) {
	if p := os.Getenv("FERRETDB_BIN"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("teststore: FERRETDB_BIN=%s is not an executable", p)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", "ferretdb", FerretDBVersion, "ferretdb")
			if isExecutable(p) {
				return p, nil
			}
			return "", fmt.Errorf("teststore: %s not found; `make ferretdb` (part of `make test`) builds it from source", p)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("teststore: no go.mod above the working directory, so no bin/ferretdb; set FERRETDB_BIN")
		}
		dir = parent
	}
}

// StartMongo starts FerretDB with the SQLite handler in a fresh directory and waits until it
// answers ping.
func StartMongo(ctx context.Context) (*Mongo, error) {
	return StartMongoWithArgs(ctx)
}

// StartMongoWithArgs is StartMongo with further ferretdb flags, e.g. "--repl-set-name=rs0" (hello
// then names a replica set, although FerretDB has no transactions).
func StartMongoWithArgs(ctx context.Context, extraArgs ...string) (_ *Mongo, err error) {
	bin, err := ferretDBBinary()
	if err != nil {
		return nil, err
	}
	base, err := makeBaseDir("mongo")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(base, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	m := &Mongo{Host: "127.0.0.1", extraArgs: extraArgs}
	m.baseDir, m.relaunch = base, m.launch
	defer func() {
		if err != nil {
			_ = m.Close()
		}
	}()
	m.proc = &process{name: "ferretdb", bin: bin, dir: base, logPath: filepath.Join(base, "ferretdb.log")}
	port, err := startWithPortRetry(ctx, func(ctx context.Context, port int) (*process, error) {
		m.Port = port
		return m.proc, m.launch(ctx)
	})
	if err != nil {
		return nil, err
	}
	m.Port = port
	return m, nil
}

func (m *Mongo) launch(ctx context.Context) error {
	m.proc.args = []string{
		"--handler=sqlite",
		"--sqlite-url=file:" + filepath.Join(m.baseDir, "data") + "/",
		"--listen-addr=" + m.Host + ":" + strconv.Itoa(m.Port),
		"--state-dir=" + m.baseDir,
		// No metrics listener (its default port would clash between servers) and never any
		// reporting to the outside.
		"--debug-addr=-",
		"--telemetry=disable",
		"--log-level=warn",
	}
	m.proc.args = append(m.proc.args, m.extraArgs...)
	return m.proc.startAndWait(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		client, err := mongo.Connect(options.Client().ApplyURI(m.URI("")).
			SetServerSelectionTimeout(time.Second).SetConnectTimeout(time.Second))
		if err != nil {
			return err
		}
		defer func() { _ = client.Disconnect(context.Background()) }()
		return client.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
	})
}

// URI is a MongoDB connection URI for database db (empty: none).
func (m *Mongo) URI(db string) string {
	u := url.URL{Scheme: "mongodb", Host: fmt.Sprintf("%s:%d", m.Host, m.Port), Path: "/" + db}
	return u.String()
}

// CreateDatabase returns the URI of a database name nobody else uses (empty: a unique one).
// MongoDB creates a database on its first write, so nothing is created yet.
func (m *Mongo) CreateDatabase(name string) (database, uri string) {
	if name == "" {
		name = uniqueDBName()
	}
	return name, m.URI(name)
}
