package postgres

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/egress"
)

func TestDSNRefusesFileReadingKeys(t *testing.T) {
	// A file the DSN must not make the operator read; a parse that reads it fails differently.
	stray := filepath.Join(t.TempDir(), "stray")
	if err := os.WriteFile(stray, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"sslkey", "sslcert", "sslrootcert", "sslpassword", "passfile", "servicefile", "service", "default_query_exec_mode", "client_encoding"} {
		for _, dsn := range []string{
			"postgres://u:pw@127.0.0.1:5432/db?" + key + "=" + stray,
			"host=127.0.0.1 user=u password=pw dbname=db " + key + "=" + stray,
		} {
			_, err := parseDSN(dsn)
			if connector.KindOf(err) != connector.KindInvalid || err == nil || !strings.Contains(err.Error(), `"`+key+`"`) {
				t.Errorf("%s: %v, want an InvalidConfig error naming the key", dsn, err)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("error leaks the password: %v", err)
			}
		}
	}
	for _, dsn := range []string{
		"postgres://u:pw@127.0.0.1:5432/db?sslmode=verify-full&connect_timeout=5&application_name=x&target_session_attrs=read-write",
		"host=127.0.0.1 port=5432 user=u password=pw dbname=db sslmode=disable search_path=app",
		"postgres://u:pw@h1:5432,h2:5433/db",
	} {
		if _, err := parseDSN(dsn); err != nil {
			t.Errorf("%s: %v", dsn, err)
		}
	}
}

// TestEgressDeniedAddressReceivesNoConnection: a listener on 127.0.0.2 that the policy denies
// is never connected to, and the error says why.
func TestEgressDeniedAddressReceivesNoConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2: %v", err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	policy := &egress.Policy{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	port := l.Addr().(*net.TCPAddr).Port
	db, err := Dialect{}.Open([]byte("postgres://u:pw@127.0.0.2:"+strconv.Itoa(port)+"/db?sslmode=disable&connect_timeout=5"), connector.DialThrough(policy, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.PingContext(context.Background())
	if connector.KindOf(err) != connector.KindEgressDenied {
		t.Fatalf("ping: %v (kind %s), want EgressDenied", err, connector.KindOf(err))
	}
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the denied listener accepted %d connections", n)
	}
}
