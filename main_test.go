package main

import (
	"net/netip"
	"testing"
)

func TestEgressPolicyFlags(t *testing.T) {
	p, err := egressPolicy("169.254.0.0/16, fe80::/10", "10.0.0.0/8", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Deny) != 2 || len(p.Allow) != 1 || !p.AllowInsecureHTTP {
		t.Fatalf("policy %+v", p)
	}
	if p.Check(netip.MustParseAddr("10.1.2.3")) != nil || p.Check(netip.MustParseAddr("192.168.0.1")) == nil {
		t.Errorf("allow list not applied: %+v", p)
	}
	if _, err := egressPolicy("not-a-cidr", "", false); err == nil {
		t.Error("a bad deny list was accepted")
	}
	if _, err := egressPolicy("", "10.0.0.0/40", false); err == nil {
		t.Error("a bad allow list was accepted")
	}
}
