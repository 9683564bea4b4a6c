package s3_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Versions under Object Lock cannot be deleted: they are reported retained with the lock as the
// reason, never skipped silently, and never counted as remaining.
func TestObjectLockedVersionsAreRetainedWithReason(t *testing.T) {
	srv := shared(t)
	mc := root(t, srv)
	b := bucket(t, srv, true, true)
	put(t, mc, b, "users/42/held.txt", "legal hold", minio.PutObjectOptions{LegalHold: minio.LegalHoldEnabled})
	mode := minio.Governance
	put(t, mc, b, "users/42/kept.txt", "retention", minio.PutObjectOptions{Mode: mode, RetainUntilDate: time.Now().Add(24 * time.Hour)})
	put(t, mc, b, "users/42/free.txt", "no lock")
	c := newClient(t, srv, del(b, "users/{userId}/"))
	req := subject(map[string]string{"userId": "42"})

	chk, err := c.Check(ctxT(t))
	if err != nil || len(chk.Warnings) != 1 || !strings.Contains(chk.Warnings[0], "Object Lock") {
		t.Fatalf("check = %+v, %v; want one Object Lock warning", chk, err)
	}
	dry, err := c.Erase(ctxT(t), connector.Request{ID: "r", Identifiers: req.Identifiers, DryRun: true})
	if err != nil || dry.Erased != 1 || dry.Retained != 2 {
		t.Fatalf("dry run = %+v, %v; want 1 to erase, 2 retained", dry, err)
	}
	res := mustErase(t, c, req)
	if res.Erased != 1 || res.Retained != 2 {
		t.Fatalf("erase = %+v; want 1 erased, 2 retained", res)
	}
	reasons := map[string]int64{}
	for _, l := range res.RetainedLocations {
		reasons[l.Reason] += l.Records
	}
	if reasons["Object Lock legal hold"] != 1 || reasons["Object Lock retention (GOVERNANCE mode)"] != 1 {
		t.Fatalf("retained reasons = %v", reasons)
	}
	v := mustVerify(t, c, req)
	if v.Remaining != 0 || v.Retained != 2 {
		t.Fatalf("verify = %+v; want 0 remaining, 2 retained", v)
	}
	left := versions(t, mc, b)
	if len(left) != 2 || left[0] != "users/42/held.txt" || left[1] != "users/42/kept.txt" {
		t.Fatalf("left %q", left)
	}
	// Once the hold is lifted, the next erasure finishes the job.
	vid := ""
	for o := range mc.ListObjects(context.Background(), b, minio.ListObjectsOptions{Prefix: "users/42/held.txt", WithVersions: true}) {
		vid = o.VersionID
	}
	off := minio.LegalHoldDisabled
	if err := mc.PutObjectLegalHold(context.Background(), b, "users/42/held.txt", minio.PutObjectLegalHoldOptions{VersionID: vid, Status: &off}); err != nil {
		t.Fatal(err)
	}
	if res := mustErase(t, c, req); res.Erased != 1 || res.Retained != 1 {
		t.Fatalf("erase after lifting the hold = %+v; want 1 erased, 1 retained", res)
	}
}

func TestCollectListsObjectsWithSmallContent(t *testing.T) {
	srv := shared(t)
	mc := root(t, srv)
	b := bucket(t, srv, false, false)
	put(t, mc, b, "users/42/profile.json", `{"name":"Ada"}`, minio.PutObjectOptions{ContentType: "application/json"})
	put(t, mc, b, "users/42/photo.bin", "\xff\xfe\x00binary", minio.PutObjectOptions{ContentType: "image/png"})
	put(t, mc, b, "users/42/big.txt", strings.Repeat("a", 70<<10))
	put(t, mc, b, "users/421/profile.json", "bystander")
	c := newClient(t, srv, del(b, "users/{userId}/"))
	col, err := c.Collect(ctxT(t), subject(map[string]string{"userId": "42"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(col.Records) != 3 {
		t.Fatalf("collected %d records, want 3", len(col.Records))
	}
	byKey := map[string]connector.Record{}
	for _, r := range col.Records {
		byKey[r.Key] = r
		if r.Location != b+"/users/{userId}/" {
			t.Errorf("location %q", r.Location)
		}
		if _, ok := r.Data["lastModified"]; !ok {
			t.Errorf("%s: no lastModified", r.Key)
		}
	}
	p := byKey["users/42/profile.json"].Data
	if p["content"] != `{"name":"Ada"}` || p["contentType"] != "application/json" || p["size"] != int64(14) {
		t.Errorf("profile = %v", p)
	}
	if ph := byKey["users/42/photo.bin"].Data; ph["contentBase64"] == nil || ph["contentType"] != "image/png" {
		t.Errorf("photo = %v", ph)
	}
	if big := byKey["users/42/big.txt"].Data; big["content"] != nil || big["contentOmitted"] == nil || big["size"] != int64(70<<10) {
		t.Errorf("big object: content %v, omitted %v", big["content"] != nil, big["contentOmitted"])
	}
}

func TestDeepVerifyFindsKeysOutsideTheMapping(t *testing.T) {
	srv := shared(t)
	mc := root(t, srv)
	b := bucket(t, srv, false, false)
	put(t, mc, b, "users/u-4711/a", "mapped")
	put(t, mc, b, "exports/2025/dump-u-4711.csv", "copy outside the mapping")
	put(t, mc, b, "exports/2025/dump-u-4712.csv", "someone else")
	c := newClient(t, srv, del(b, "users/{userId}/"))
	req := subject(map[string]string{"userId": "u-4711"})
	req.Deep = true
	v := mustVerify(t, c, req)
	if v.Remaining != 1 || v.Unmapped != 1 || len(v.UnmappedLocations) != 1 || v.UnmappedLocations[0].Location != b+" (key names)" {
		t.Fatalf("deep verify = %+v", v)
	}
}
