package redis_test

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/redis"
	"github.com/dsr-operator/dsr-operator/internal/egress"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func storeConfig(url string, policy *egress.Policy) connector.Config {
	return connector.Config{
		Name:   "DataStore shop/sessions",
		Secret: []byte(url),
		Spec: &privacyv1alpha1.DataStoreSpec{
			Type: privacyv1alpha1.StoreTypeRedis,
			Keys: []privacyv1alpha1.KeyMapping{{Pattern: "cart:{userId}", Action: privacyv1alpha1.KeyActionDelete}},
		},
		Egress: policy,
	}
}

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
	url := "redis://127.0.0.2:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port) + "/0"
	c, err := redis.NewProvider().NewClient(t.Context(), storeConfig(url, policy))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Check(t.Context())
	if connector.KindOf(err) != connector.KindEgressDenied {
		t.Fatalf("check: %v (kind %s), want EgressDenied", err, connector.KindOf(err))
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the denied listener accepted %d connections", n)
	}
}

func TestUnixSocketURLRefused(t *testing.T) {
	_, err := redis.NewProvider().NewClient(t.Context(), storeConfig("unix://"+t.TempDir()+"/r.sock", nil))
	if connector.KindOf(err) != connector.KindInvalid || err == nil {
		t.Fatalf("unix:// URL: %v", err)
	}
}

// TestTLSThroughPolicyDialer: rediss:// still speaks TLS over the policy's dialer. The server is
// a TLS listener that answers the client's first command as Redis would refuse it, enough to
// prove the handshake happened and the command arrived inside TLS.
func TestTLSThroughPolicyDialer(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS() // only for its certificate
	cert := srv.TLS.Certificates[0]
	srv.Close()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var commands atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil && len(line) > 0 && line[0] == '*' {
					commands.Add(1)
				}
				_, _ = c.Write([]byte("-ERR unknown command\r\n"))
			}()
		}
	}()
	url := "rediss://127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port) + "/0?skip_verify=true"
	c, err := redis.NewProvider().NewClient(t.Context(), storeConfig(url, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Check(t.Context())
	if commands.Load() == 0 {
		t.Fatal("no RESP command arrived over TLS")
	}
}
