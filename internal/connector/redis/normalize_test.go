package redis_test

import (
	"context"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/redis"
)

// Patterns name the normalised form of email and phone identifiers: a subject given in any
// spelling finds the keys an application wrote from the normalised value, and only those.
func TestPatternsNameTheNormalisedForm(t *testing.T) {
	km := []privacyv1alpha1.KeyMapping{
		{Pattern: "profile:{email}:*", Action: privacyv1alpha1.KeyActionDelete},
		{Pattern: "sms:{phone}", Action: privacyv1alpha1.KeyActionDelete},
		{Pattern: "ref:{orderRef}", Action: privacyv1alpha1.KeyActionDelete},
	}
	e := setup(t, nil, km)
	ctx := context.Background()
	s := spec(km)
	s.DefaultRegion = "US"
	c, err := redis.NewProvider().NewClient(ctx, connector.Config{Name: "test", Secret: []byte(e.url), Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	subjectKeys := []string{"profile:customer-1@example.com:main", "sms:+15550100001", "ref:AB-1"}
	bystanderKeys := []string{"profile:customer-10@example.com:main", "sms:+15550100010", "sms:+445550100001", "ref:ab-1"}
	for _, k := range append(append([]string{}, subjectKeys...), bystanderKeys...) {
		if err := e.rdb.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	req := connector.Request{ID: "r", Identifiers: connector.Identifiers{
		"email": " Customer-1@Example.COM ", "phone": "(555) 010-0001", "orderRef": "AB-1"}}

	v, err := c.Verify(ctx, req)
	if err != nil || v.Remaining != 3 {
		t.Fatalf("Verify before erase: %+v %v", v, err)
	}
	res, err := c.Erase(ctx, req)
	if err != nil || res.Erased != 3 {
		t.Fatalf("Erase: %+v %v", res, err)
	}
	if n := exists(t, e.rdb, subjectKeys...); n != 0 {
		t.Errorf("%d of the subject's keys left", n)
	}
	if n := exists(t, e.rdb, bystanderKeys...); n != int64(len(bystanderKeys)) {
		t.Errorf("bystanders: %d of %d left", n, len(bystanderKeys))
	}
	req.Deep = true
	if v, err := c.Verify(ctx, req); err != nil || v.Remaining != 0 {
		t.Errorf("deep Verify after erase: %+v %v", v, err)
	}
	// A copy of the normalised address outside every pattern is a deep finding.
	if err := e.rdb.Set(ctx, "legacy:customer-1@example.com", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Verify(ctx, req); err != nil || v.Remaining != 1 {
		t.Errorf("deep Verify with an unmapped copy: %+v %v", v, err)
	}
}
