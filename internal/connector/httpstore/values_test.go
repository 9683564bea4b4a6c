package httpstore_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sync"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Multi-valued and derived identifiers travel in "values" (additive to v1); a request without
// them sends the body v1 always sent.
func TestEveryValueGoesOnTheWire(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
		answerJSON(200, `{"protocolVersion":"v1","erased":0,"masked":0,"retained":0}`)(w, r)
	})
	r := req("values-uid")
	r.Identifiers = connector.Identifiers{"email": aliceEml}
	if _, err := c.Erase(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	r.Values = connector.Values{"email": {"alice@work.example"}, "orderId": {"12", "10"}}
	if _, err := c.Erase(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("%d calls", len(bodies))
	}
	if _, has := bodies[0]["values"]; has {
		t.Errorf("a request without values sends them: %v", bodies[0]["values"])
	}
	// Values come sorted.
	want := map[string]any{"orderId": []any{"10", "12"}}
	if aliceEml > "alice@work.example" {
		want["email"] = []any{"alice@work.example", aliceEml}
	} else {
		want["email"] = []any{aliceEml, "alice@work.example"}
	}
	if got := bodies[1]["values"]; !reflect.DeepEqual(got, want) {
		t.Errorf("values %v, want %v", got, want)
	}
	if got := bodies[1]["identifiers"]; !reflect.DeepEqual(got, map[string]any{"email": aliceEml}) {
		t.Errorf("identifiers %v", got)
	}
}
