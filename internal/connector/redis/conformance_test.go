package redis_test

import (
	"context"
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/redis"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
	"github.com/dsr-operator/dsr-operator/internal/normalize/normcases"
)

// The shared normalised-matching cases (normcases, which the SQL suite runs too) on Redis. Keys
// are exact bytes, so the application writes the normalised form and the subject, given in any
// spelling, finds it; bystanders' keys are never found. Deep verification also finds an
// address written into a key name in another letter case.
func TestNormalizedCases(t *testing.T) {
	km := []privacyv1alpha1.KeyMapping{
		{Pattern: "profile:{email}:*", Action: privacyv1alpha1.KeyActionDelete},
		{Pattern: "idn:{emailIntl}", Action: privacyv1alpha1.KeyActionDelete},
		{Pattern: "sms:{phone}", Action: privacyv1alpha1.KeyActionDelete},
	}
	e := setup(t, nil, km)
	ctx := context.Background()
	s := spec(km)
	s.DefaultRegion = normcases.Region
	c, err := redis.NewProvider().NewClient(ctx, connector.Config{Name: "test", Secret: []byte(e.url), Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	n := normalize.Normalizer{Region: normcases.Region}
	subjectKeys := []string{
		"profile:" + n.Key(normalize.Email, normcases.Email) + ":main",
		"idn:" + n.Key(normalize.Email, normcases.IDNEmail),
		"sms:" + n.Key(normalize.Phone, normcases.Phone),
	}
	var bystanderKeys []string
	for _, v := range normcases.EmailBystanders {
		bystanderKeys = append(bystanderKeys, "profile:"+n.Key(normalize.Email, v)+":main", "idn:"+n.Key(normalize.Email, v))
	}
	for _, v := range normcases.PhoneBystanders {
		bystanderKeys = append(bystanderKeys, "sms:"+n.Key(normalize.Phone, v))
	}
	set := func(keys ...string) {
		t.Helper()
		for _, k := range keys {
			if err := e.rdb.Set(ctx, k, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	set(subjectKeys...)
	set(bystanderKeys...)
	request := func(email, idn, phone string) connector.Request {
		return connector.Request{ID: "r", Identifiers: connector.Identifiers{"email": email, "emailIntl": idn, "phone": phone}}
	}

	// Every spelling of every identifier finds the subject's key, and only it.
	check := func(what string, req connector.Request, pattern string) {
		t.Helper()
		v, err := c.Verify(ctx, req)
		if err != nil {
			t.Fatalf("%s: Verify: %v", what, err)
		}
		if v.Remaining != 3 || len(v.RemainingLocations) != 3 {
			t.Errorf("%s: want the 3 subject keys remaining, got %+v", what, v)
		}
		for _, l := range v.RemainingLocations {
			if l.Location == pattern && l.Records != 1 {
				t.Errorf("%s: %s found %d keys", what, pattern, l.Records)
			}
		}
	}
	for _, v := range append([]string{normcases.Email}, normcases.EmailVariants...) {
		check("email "+v, request(v, normcases.IDNEmail, normcases.Phone), "profile:{email}:*")
	}
	for _, v := range normcases.IDNVariants {
		check("idn "+v, request(normcases.Email, v, normcases.Phone), "idn:{emailIntl}")
	}
	for _, v := range normcases.PhoneFormats {
		check("phone "+v, request(normcases.Email, normcases.IDNEmail, v), "sms:{phone}")
	}

	req := request(normcases.EmailVariants[2], normcases.IDNVariants[1], normcases.PhoneFormats[6])
	col, err := c.Collect(ctx, req)
	if err != nil || len(col.Records) != len(subjectKeys) {
		t.Fatalf("Collect: %d records, %v; want %d", len(col.Records), err, len(subjectKeys))
	}
	res, err := c.Erase(ctx, req)
	if err != nil || res.Erased != int64(len(subjectKeys)) {
		t.Fatalf("Erase: %+v %v", res, err)
	}
	if left := exists(t, e.rdb, subjectKeys...); left != 0 {
		t.Errorf("%d subject keys left", left)
	}
	if left := exists(t, e.rdb, bystanderKeys...); left != int64(len(bystanderKeys)) {
		t.Errorf("bystanders: %d of %d left", left, len(bystanderKeys))
	}
	deep := req
	deep.Deep = true
	// Deep verification searches key names for substrings: bystanders whose key holds a whole
	// address or number of the subject (customer-1@example.com.evil, +15550100001;ext=7) are
	// reported, as in SQL stores.
	var holding int64
	for _, k := range bystanderKeys {
		f := normalize.FoldCase(k)
		if strings.Contains(f, normcases.Email) || strings.Contains(f, "anna@xn--bcher-kva.example") || strings.Contains(k, normcases.Phone) {
			holding++
		}
	}
	if v, err := c.Verify(ctx, deep); err != nil || v.Remaining != holding {
		t.Fatalf("deep Verify after erase: %+v %v; want %d", v, err, holding)
	}
	// Keys an application wrote from raw addresses: in another letter case, with the domain in
	// Unicode or punycode. Deep verification reports them; the bystanders' stay unreported.
	set("legacy:CUSTOMER-1@Example.COM", "legacy:ANNA@XN--BCHER-KVA.example", "legacy:Anna@Bücher.example")
	v, err := c.Verify(ctx, deep)
	if err != nil || v.Remaining != holding+3 {
		t.Fatalf("deep Verify with variant keys: %+v %v; want %d remaining", v, err, holding+3)
	}
}
