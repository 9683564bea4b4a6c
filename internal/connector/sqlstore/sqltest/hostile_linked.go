package sqltest

import (
	"fmt"
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// hostileHandles are derived values a store may hold: quotes, LIKE and glob wildcards, regex
// syntax, backslashes, NUL, 10 KB.
func hostileHandles(rejectsNUL bool) []string {
	out := []string{`o'brien`, `x' OR '1'='1`, `%`, `_`, `*`, `a?c`, `[a-z]*`, `\\`, `"; DROP TABLE post; --`,
		"tab\there", strings.Repeat("q", 10*1024)}
	if !rejectsNUL {
		out = append(out, "nul\x00byte")
	}
	return out
}

// testHostileDerived derives a handle from each member row and erases the posts written under
// it: every post whose handle differs by a byte (a prefix, a suffix, another case, what a
// wildcard would match) stays.
func (h Harness) testHostileDerived(t *testing.T) {
	d := h.newDB(t)
	d.exec(t, "CREATE TABLE member (id INTEGER PRIMARY KEY, email VARCHAR(255), handle TEXT)")
	d.exec(t, "CREATE TABLE post (id INTEGER PRIMARY KEY, author_handle TEXT, body TEXT)")
	handles := hostileHandles(h.RejectsNUL)
	postID := 0
	post := func(handle string) {
		postID++
		d.insert(t, "post", []string{"id", "author_handle", "body"}, []any{postID, handle, fmt.Sprintf("post %d", postID)})
	}
	for i, handle := range handles {
		d.insert(t, "member", []string{"id", "email", "handle"}, []any{i + 1, fmt.Sprintf("m%d@shop.example", i), handle})
		post(handle)
		post(handle + "x")
		post("x" + handle)
		post(strings.ToUpper(handle) + " ")
	}
	post("abc")
	post("")
	spec := &privacyv1alpha1.DataStoreSpec{
		Type:       h.Dialect.Type(),
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "db", Key: "dsn"}},
		Tables: []privacyv1alpha1.TableMapping{
			{Name: "member", Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}},
				Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "handle", Column: "handle"}}, Action: privacyv1alpha1.ActionRetain,
				RetainReason: "membership records are kept"},
			{Name: "post", Match: []privacyv1alpha1.ColumnMatch{{Column: "author_handle", Identifier: "handle"}},
				Action: privacyv1alpha1.ActionDelete},
		},
	}
	c := h.client(t, d.secret, spec, sqlstore.Options{})
	for i, handle := range handles {
		before := d.rows(t, "post")
		req := derive(t, c, connector.Request{ID: "h", Identifiers: connector.Identifiers{"email": fmt.Sprintf("m%d@shop.example", i)}})
		if got := req.Values["handle"]; len(got) != 1 || got[0] != handle {
			t.Fatalf("handle %d: derived %d values, want exactly the stored one", i, len(got))
		}
		res, err := c.Erase(ctxFor(t), req)
		if err != nil {
			t.Fatalf("handle %d: %v", i, err)
		}
		if res.Erased != 1 {
			t.Errorf("handle %d: erased %d posts, want 1", i, res.Erased)
		}
		// The subject's own post is the first of its four.
		sameRows(t, "post", without(before, int64(4*i+1)), d.rows(t, "post"))
	}
}
