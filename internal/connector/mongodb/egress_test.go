package mongodb_test

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/mongodb"
	"github.com/dsr-operator/dsr-operator/internal/egress"
)

// TestEgressDeniedAddressReceivesNoConnection: the driver dials through the egress policy, so a
// denied address gets no connection and the store reports EgressDenied.
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
	spec := &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeMongoDB, Collections: []privacyv1alpha1.CollectionMapping{{
		Name: "shop.users", Match: match("email", "email"), Action: privacyv1alpha1.ActionDelete}}}
	uri := "mongodb://127.0.0.2:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port) + "/?serverSelectionTimeoutMS=2000"
	policy := &egress.Policy{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	ctx, cancel := context.WithTimeout(context.Background(), 5e9)
	defer cancel()
	_, err = mongodb.NewProvider(mongodb.Options{}).NewClient(ctx, connector.Config{Spec: spec, Secret: []byte(uri), Egress: policy})
	if connector.KindOf(err) != connector.KindEgressDenied {
		t.Fatalf("want %s, got %v", connector.KindEgressDenied, err)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the denied address received %d connections", n)
	}
}
