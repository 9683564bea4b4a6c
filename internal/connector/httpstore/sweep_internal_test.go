package httpstore

import (
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/normalize"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// The client checks resolved values with its own DROP hash; it must be the list's.
func TestDropHashAgreesWithTheLists(t *testing.T) {
	for _, tc := range []struct {
		kind  normalize.Kind
		value string
	}{
		{normalize.Email, "  Jane.Doe@Example.COM "}, {normalize.Email, "x"}, {normalize.Email, "  "},
		{normalize.Phone, "+1 (415) 555-0134"}, {normalize.Phone, "0044 20 7946 0958"}, {normalize.Phone, "555 0100"},
		{normalize.Phone, "٤١٥٥٥٥٠١٣٤"}, {normalize.Exact, "u-1"},
	} {
		got, gotOK := dropHash(tc.kind, tc.value)
		want, wantOK := suppression.DropHash(suppression.KindOf(tc.kind), tc.value)
		if tc.kind == normalize.Exact {
			wantOK = false // DROP lists no exact identifiers
		}
		if gotOK != wantOK || gotOK && got != want {
			t.Errorf("%s %q: ok %t, want %t (or a different hash)", tc.kind, tc.value, gotOK, wantOK)
		}
	}
}
