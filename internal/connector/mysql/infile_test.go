package mysql

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/egress"
)

// fakeServer speaks just enough of the MySQL protocol to play a hostile server: a handshake,
// OK to the login and to every command, and a LOCAL INFILE request (0xFB) naming file as the
// answer to any query that mentions "infile". It records what the client sends after it.
type fakeServer struct {
	l    net.Listener
	file string

	mu       sync.Mutex
	conns    int
	received []byte // everything the client sent after an INFILE request
}

func startFakeServer(t *testing.T, file string) *fakeServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{l: l, file: file}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	return s
}

func (s *fakeServer) addr() string { return s.l.Addr().String() }

func (s *fakeServer) snapshot() (int, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, append([]byte(nil), s.received...)
}

func writePacket(w io.Writer, seq byte, payload []byte) error {
	head := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}
	_, err := w.Write(append(head, payload...))
	return err
}

func readPacket(r io.Reader) (byte, []byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := int(head[0]) | int(head[1])<<8 | int(head[2])<<16
	payload := make([]byte, n)
	_, err := io.ReadFull(r, payload)
	return head[3], payload, err
}

var okPacket = []byte{0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00}

func (s *fakeServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	const (
		longPassword = 0x1 // also tells the driver it is MySQL, not MariaDB
		localFiles   = 0x80
		protocol41   = 0x200
		transactions = 0x2000
		secureConn   = 0x8000
		pluginAuth   = 0x80000
	)
	capabilities := uint32(longPassword | localFiles | protocol41 | transactions | secureConn | pluginAuth)
	hs := []byte{0x0a}
	hs = append(hs, "8.0.0-fake\x00"...)
	hs = binary.LittleEndian.AppendUint32(hs, 1)
	hs = append(hs, "abcdefgh"...)
	hs = append(hs, 0)
	hs = binary.LittleEndian.AppendUint16(hs, uint16(capabilities))
	hs = append(hs, 45) // utf8mb4_general_ci
	hs = binary.LittleEndian.AppendUint16(hs, 0x0002)
	hs = binary.LittleEndian.AppendUint16(hs, uint16(capabilities>>16))
	hs = append(hs, 21)
	hs = append(hs, make([]byte, 10)...)
	hs = append(hs, "ijklmnopqrst\x00"...)
	hs = append(hs, "mysql_native_password\x00"...)
	if writePacket(c, 0, hs) != nil {
		return
	}
	if _, _, err := readPacket(c); err != nil { // the login
		return
	}
	if writePacket(c, 2, okPacket) != nil {
		return
	}
	for {
		_, cmd, err := readPacket(c)
		if err != nil || len(cmd) == 0 {
			return
		}
		if cmd[0] == 0x01 { // COM_QUIT
			return
		}
		if cmd[0] != 0x03 || !strings.Contains(strings.ToLower(string(cmd[1:])), "infile") {
			if writePacket(c, 1, okPacket) != nil {
				return
			}
			continue
		}
		if writePacket(c, 1, append([]byte{0xfb}, s.file...)) != nil {
			return
		}
		// The client answers with the file's content in packets, ended by an empty one.
		seq := byte(2)
		for {
			got, data, err := readPacket(c)
			if err != nil {
				return
			}
			seq = got + 1
			s.mu.Lock()
			s.received = append(s.received, data...)
			s.mu.Unlock()
			if len(data) == 0 {
				break
			}
		}
		if writePacket(c, seq, okPacket) != nil {
			return
		}
	}
}

// secretFile stands in for the ServiceAccount token a hostile server would ask for.
func secretFile(t *testing.T) (string, []byte) {
	t.Helper()
	content := []byte("eyJhbGciOiJSUzI1NiJ9.service-account-token-stand-in")
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, content
}

// TestLocalInfileNeverSendsAFile: a server chosen by whoever writes the DSN asks for a file of
// the operator's. With allowAllFiles=true in the DSN the DSN is refused before any connection;
// without it the request is answered with no content at all.
func TestLocalInfileNeverSendsAFile(t *testing.T) {
	path, content := secretFile(t)
	srv := startFakeServer(t, path)
	dial := connector.DialThrough(nil, 5*time.Second)

	_, err := Dialect{}.Open([]byte("u:p@tcp("+srv.addr()+")/db?allowAllFiles=true"), dial)
	if connector.KindOf(err) != connector.KindInvalid || err == nil || !strings.Contains(err.Error(), `"allowAllFiles"`) {
		t.Fatalf("allowAllFiles=true: %v, want an InvalidConfig error naming the parameter", err)
	}
	if conns, _ := srv.snapshot(); conns != 0 {
		t.Fatalf("the server received %d connections from a refused DSN", conns)
	}

	db, err := Dialect{}.Open([]byte("u:p@tcp("+srv.addr()+")/db"), dial)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, "LOAD DATA LOCAL INFILE 'x' INTO TABLE t")
	if err == nil {
		t.Fatal("the client accepted the server's file request")
	}
	conns, received := srv.snapshot()
	if conns == 0 {
		t.Fatal("the fake server was never reached: the test proves nothing")
	}
	if len(received) != 0 || bytes.Contains(received, content) {
		t.Fatalf("the client sent %d bytes to the server's file request", len(received))
	}
}

func TestDSNParameterAllowlist(t *testing.T) {
	for _, tc := range []struct {
		query   string
		refused string
	}{
		{"", ""},
		{"?parseTime=true&multiStatements=false", ""},
		{"?tls=true&timeout=5s&readTimeout=1m&writeTimeout=1m&charset=utf8mb4&collation=utf8mb4_bin&loc=UTC", ""},
		{"?allowAllFiles=false", "allowAllFiles"},
		{"?tls=true&allowAllFiles=true", "allowAllFiles"},
		{"?allowCleartextPasswords=true", "allowCleartextPasswords"},
		{"?clientFoundRows=true", "clientFoundRows"},
		{"?serverPubKey=k", "serverPubKey"},
		{"?sql_mode=ANSI", "sql_mode"},
		{"?a%20b=1", "(a parameter whose name is not a word)"},
	} {
		_, err := parseDSN("u:p@tcp(127.0.0.1:3306)/db" + tc.query)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s: %v", tc.query, err)
		case tc.refused != "" && (connector.KindOf(err) != connector.KindInvalid || err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s: %v, want InvalidConfig naming %s", tc.query, err, tc.refused)
		}
	}
	// A '?' in the password is not the start of the parameters.
	cfg, err := parseDSN("u:p?allowAllFiles=true@tcp(127.0.0.1:3306)/db")
	if err != nil || cfg.Passwd != "p?allowAllFiles=true" || cfg.AllowAllFiles {
		t.Errorf("password with '?': %v", err)
	}
	_, err = parseDSN("u:p@unix(/var/run/secrets/sock)/db")
	if connector.KindOf(err) != connector.KindInvalid || err == nil {
		t.Errorf("unix socket: %v", err)
	}
}

func TestEgressPolicyRefusesDeniedAddress(t *testing.T) {
	srv := startFakeServer(t, "/nonexistent")
	// Deny the fake server's own address: it must receive no connection.
	dial := connector.DialThrough(denyLoopback(t), 5*time.Second)
	db, err := Dialect{}.Open([]byte("u:p@tcp("+srv.addr()+")/db"), dial)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.PingContext(context.Background())
	if connector.KindOf(err) != connector.KindEgressDenied {
		t.Fatalf("ping: %v (kind %s), want EgressDenied", err, connector.KindOf(err))
	}
	var ce *connector.Error
	if !errors.As(err, &ce) {
		t.Fatal("no connector error")
	}
	if conns, _ := srv.snapshot(); conns != 0 {
		t.Fatalf("the denied server received %d connections", conns)
	}
}

func denyLoopback(t *testing.T) *egress.Policy {
	t.Helper()
	return &egress.Policy{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
}
