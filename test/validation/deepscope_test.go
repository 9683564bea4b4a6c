package validation

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// TestDeepScope: spec.verification.deepScope takes mapped or database, database only on SQL
// stores, and defaults to mapped.
func TestDeepScope(t *testing.T) {
	ctx := context.Background()
	namespace := createNamespace(t, "deepscope")

	refused := []struct {
		name string
		base string
		set  func(map[string]any)
		want []string
	}{
		{"unknown deep scope", postgresStore, set("spec.verification", map[string]any{"deepScope": "everything"}),
			[]string{"spec.verification.deepScope", `Unsupported value: "everything"`}},
		{"deep scope database on a redis store", redisStore, set("spec.verification", map[string]any{"deepScope": "database"}),
			[]string{"spec.verification.deepScope", "verification.deepScope database is only allowed for postgres, mysql, sqlite and mongodb stores"}},
	}
	for i, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, tc.base, fmt.Sprintf("refused-%d", i), namespace)
			tc.set(obj.Object)
			err := env.Client.Create(ctx, obj)
			if err == nil || !apierrors.IsInvalid(err) {
				t.Fatalf("want an invalid error, got %v:\n%s", err, dump(obj))
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the message does not say %q:\n%v", want, err)
				}
			}
		})
	}

	accepted := []struct {
		base  string
		scope string
	}{{postgresStore, "database"}, {redisStore, "mapped"}, {postgresStore, ""}}
	for i, tc := range accepted {
		obj := object(t, tc.base, fmt.Sprintf("accepted-%d", i), namespace)
		set("spec.verification", map[string]any{})(obj.Object)
		if tc.scope != "" {
			set("spec.verification.deepScope", tc.scope)(obj.Object)
		}
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("deepScope %q on a %v store was refused: %v", tc.scope, obj.Object["spec"].(map[string]any)["type"], err)
		}
		want := tc.scope
		if want == "" {
			want = "mapped"
		}
		if got, _ := lookup(obj.Object, "spec.verification.deepScope"); got != want {
			t.Errorf("deepScope %q came back as %v", tc.scope, got)
		}
	}
}
