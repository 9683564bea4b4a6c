package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// listen accepts on addr (a loopback address) and counts the connections it receives.
func listen(t *testing.T, addr string) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	}()
	return l.Addr().String(), &n
}

func TestDeniedAddressReceivesNoConnection(t *testing.T) {
	addr, accepted := listen(t, "127.0.0.2:0")
	p := &Policy{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := p.DialContext(nil)(ctx, "tcp", addr)
	var denied *DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("dial: %v, want a DeniedError", err)
	}
	if denied.Addr != netip.MustParseAddr("127.0.0.2") || !strings.Contains(denied.Rule, "127.0.0.2/32") {
		t.Errorf("denied %+v", denied)
	}
	// The same listener is reachable without the rule: the refusal above is the policy's.
	c, err := (&Policy{}).DialContext(nil)(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for accepted.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("listener accepted %d connections, want exactly the allowed one", n)
	}
}

func TestAllowListAdmitsOnlyItsRanges(t *testing.T) {
	addr, accepted := listen(t, "127.0.0.1:0")
	p := &Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	_, err := p.DialContext(nil)(context.Background(), "tcp", addr)
	var denied *DeniedError
	if !errors.As(err, &denied) || !strings.Contains(denied.Rule, "allow") {
		t.Fatalf("dial: %v", err)
	}
	p.Allow = append(p.Allow, netip.MustParsePrefix("127.0.0.0/8"))
	p.Deny = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	if _, err := p.DialContext(nil)(context.Background(), "tcp", addr); !errors.As(err, &denied) {
		t.Fatalf("deny must win over allow: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Fatalf("listener accepted %d connections", n)
	}
}

// A name is checked by the address it resolves to, when the connection is made.
func TestNamesAreCheckedByResolvedAddress(t *testing.T) {
	addr, accepted := listen(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(addr)
	p := &Policy{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	_, err := p.DialContext(nil)(context.Background(), "tcp", net.JoinHostPort("localhost", port))
	var denied *DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("dial localhost: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Fatalf("listener accepted %d connections", n)
	}
}

func TestUnixSocketsRefused(t *testing.T) {
	_, err := Default().DialContext(nil)(context.Background(), "unix", t.TempDir()+"/s.sock")
	var denied *DeniedError
	if !errors.As(err, &denied) || !strings.Contains(denied.Rule, "TCP") {
		t.Fatalf("dial unix: %v", err)
	}
}

func TestCheck(t *testing.T) {
	p := Default()
	for _, tc := range []struct {
		addr   string
		denied bool
	}{
		// Pure checks: nothing is dialled.
		{"169.254.169.254", true},
		{"::ffff:169.254.169.254", true},
		{"fe80::1", true},
		{"fd00:ec2::254", true},
		{"100.100.100.200", true},
		{"100.100.100.201", false},
		{"10.0.0.1", false},
		{"127.0.0.1", false},
	} {
		err := p.Check(netip.MustParseAddr(tc.addr))
		if (err != nil) != tc.denied {
			t.Errorf("%s: %v", tc.addr, err)
		}
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes(" 10.0.0.0/8, 192.168.1.7 ,::ffff:10.1.0.0/112,fd00::/8,")
	if err != nil {
		t.Fatal(err)
	}
	if s := FormatPrefixes(got); s != "10.0.0.0/8,192.168.1.7/32,10.1.0.0/16,fd00::/8" {
		t.Errorf("got %s", s)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/8;1.2.3.4"} {
		if _, err := ParsePrefixes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if s := FormatPrefixes(DefaultDeny); s != "169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32" {
		t.Errorf("default %s", s)
	}
}

func TestInsecureHTTPAllowed(t *testing.T) {
	if (&Policy{}).InsecureHTTPAllowed(false) {
		t.Error("plain http allowed without opt-in")
	}
	if !(&Policy{}).InsecureHTTPAllowed(true) || !(&Policy{AllowInsecureHTTP: true}).InsecureHTTPAllowed(false) {
		t.Error("opt-in ignored")
	}
}
