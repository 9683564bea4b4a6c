// Package egress decides which network addresses the operator may connect to on behalf of a
// store. A DataStore's author chooses its host; without a policy they could aim the operator at
// the cloud metadata service or anything else only the operator's pod can reach, and read what
// came back in the store's status.
//
// The check runs in the dialer's Control hook, on the address the connection is about to use,
// after name resolution and before the first packet: a name that resolves to an allowed address
// at validation time and to a denied one later (DNS rebinding) is still refused.
package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// DefaultDeny is what the operator never connects to unless told otherwise: link-local
// addresses (IPv4 169.254.0.0/16 holds the AWS, GCP and Azure metadata service at
// 169.254.169.254; IPv6 fe80::/10), the AWS IPv6 metadata address and Alibaba Cloud's metadata
// service.
var DefaultDeny = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
	netip.MustParsePrefix("100.100.100.200/32"),
}

// Policy says where stores may be reached. The zero value allows every address and refuses
// plain http; Default adds DefaultDeny.
type Policy struct {
	// Deny lists ranges never connected to. It wins over Allow.
	Deny []netip.Prefix
	// Allow, when not empty, lists the only ranges connected to.
	Allow []netip.Prefix
	// AllowInsecureHTTP lets every http store use a plain http:// URL; otherwise each store
	// opts in with spec.connection.allowInsecureHTTP.
	AllowInsecureHTTP bool
}

// Default is the policy with DefaultDeny.
func Default() *Policy {
	return &Policy{Deny: append([]netip.Prefix(nil), DefaultDeny...)}
}

// OrDefault is p, or Default when p is nil: a store configured without a policy still gets the
// default one.
func (p *Policy) OrDefault() *Policy {
	if p == nil {
		return Default()
	}
	return p
}

// DeniedError is a connection the policy refused. It names the address and the rule, never a
// host name or URL (which a status reader may not be entitled to).
type DeniedError struct {
	// Addr is the address the connection would have used.
	Addr netip.Addr
	// Rule is the policy rule: "deny 169.254.0.0/16", "not in allow list", "not a TCP connection".
	Rule string
}

func (e *DeniedError) Error() string {
	if !e.Addr.IsValid() {
		return "egress policy refuses the connection: " + e.Rule
	}
	return fmt.Sprintf("egress policy refuses the connection to %s: %s", e.Addr, e.Rule)
}

// Check returns a *DeniedError when addr may not be connected to.
func (p *Policy) Check(addr netip.Addr) error {
	addr = addr.Unmap().WithZone("")
	for _, d := range p.Deny {
		if d.Contains(addr) {
			return &DeniedError{Addr: addr, Rule: "deny " + d.String() + " (--store-deny-cidrs)"}
		}
	}
	if len(p.Allow) == 0 {
		return nil
	}
	for _, a := range p.Allow {
		if a.Contains(addr) {
			return nil
		}
	}
	return &DeniedError{Addr: addr, Rule: "not in --store-allow-cidrs"}
}

// InsecureHTTPAllowed reports whether a plain http:// URL may be used by a store that opted in
// (storeOptIn) or not.
func (p *Policy) InsecureHTTPAllowed(storeOptIn bool) bool {
	return storeOptIn || p.AllowInsecureHTTP
}

// control is a net.Dialer.ControlContext: it sees the resolved address of every attempt.
func (p *Policy) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") {
		// Unix sockets are files in the operator's own container: never a store of a tenant's.
		return &DeniedError{Rule: "only TCP connections are allowed, not " + network}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &DeniedError{Rule: "the address is not an IP address"}
	}
	return p.Check(ap.Addr())
}

// Dialer returns a copy of base (nil: a zero net.Dialer) that checks every connection against p.
func (p *Policy) Dialer(base *net.Dialer) *net.Dialer {
	d := &net.Dialer{}
	if base != nil {
		*d = *base
	}
	d.Control = nil
	d.ControlContext = p.control
	return d
}

// DialContext dials through Dialer(base): the shape of http.Transport.DialContext, pgconn's
// DialFunc, go-sql-driver's Config.DialFunc and go-redis' Options.Dialer.
func (p *Policy) DialContext(base *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	return p.Dialer(base).DialContext
}

// ParsePrefixes parses a comma-separated list of CIDRs or single addresses (a /32 or /128).
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pfx, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", f)
		}
		if pfx.Addr().Is4In6() && pfx.Bits() >= 96 {
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}

// FormatPrefixes is the inverse of ParsePrefixes, for flag defaults and docs.
func FormatPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
