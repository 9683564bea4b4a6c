package stores

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/sqlite"
)

const subjectEmail = "rotation@example.test"

// sqliteStore creates a SQLite database holding one row of the subject's, a Secret naming it,
// and the store that maps it.
func sqliteStore(t *testing.T) (client.Client, *corev1.Secret, *Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shop.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE users (email TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO users (email) VALUES (?)`, subjectEmail); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop-db"},
		Data: map[string][]byte{"path": []byte(path)}}
	reader := fake.NewClientBuilder().WithObjects(secret).Build()
	store := &Store{
		Ref:        Ref{Kind: privacyv1alpha1.KindDataStore, Namespace: "shop", Name: "shop-db"},
		UID:        "3b1f0c2e-store",
		Generation: 1,
		Spec: &privacyv1alpha1.DataStoreSpec{
			Type:       privacyv1alpha1.StoreTypeSQLite,
			Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "shop-db", Key: "path"}},
			Tables: []privacyv1alpha1.TableMapping{{Name: "users", Action: privacyv1alpha1.ActionDelete,
				Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}}},
		},
	}
	return reader, secret, store
}

// TestLeaseOutlivesReplacement rotates the store's Secret, or changes its spec, while an erasure
// holds the old client: the erasure completes on it, and the old client is closed once released.
func TestLeaseOutlivesReplacement(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, ctx context.Context, c client.Client, secret *corev1.Secret, store *Store)
	}{
		{"secret rotated", func(t *testing.T, ctx context.Context, c client.Client, secret *corev1.Secret, _ *Store) {
			secret.Data["path"] = append(secret.Data["path"], '\n') // same file, new Secret revision
			if err := c.Update(ctx, secret); err != nil {
				t.Fatal(err)
			}
		}},
		{"spec changed", func(_ *testing.T, _ context.Context, _ client.Client, _ *corev1.Secret, store *Store) {
			store.Generation++
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c, secret, store := sqliteStore(t)
			pool := NewPool(c, "dsr-system", nil)
			defer pool.Close()

			inFlight, err := pool.Acquire(ctx, store, false)
			if err != nil {
				t.Fatal(err)
			}
			old := inFlight.Client()

			tc.change(t, ctx, c, secret, store)
			replacement, err := pool.Acquire(ctx, store, true)
			if err != nil {
				t.Fatal(err)
			}
			if replacement.Client() == old {
				t.Fatal("the pool kept the old client after the change")
			}

			res, err := old.Erase(ctx, connector.Request{ID: "req-1", Identifiers: connector.Identifiers{"email": subjectEmail}})
			if err != nil {
				t.Fatalf("erasure on the client in use failed after the replacement: %v", err)
			}
			if res.Erased != 1 {
				t.Fatalf("erased %d rows, want 1", res.Erased)
			}

			inFlight.Release()
			inFlight.Release() // a second release must not close the replacement
			if _, err := old.Check(ctx); err == nil || !strings.Contains(err.Error(), "closed") {
				t.Fatalf("old client after its last release: Check error %v, want a closed database", err)
			}
			if _, err := replacement.Client().Check(ctx); err != nil {
				t.Fatalf("replacement client: %v", err)
			}
			replacement.Release()
		})
	}
}

// TestForgetWaitsForLeases: a deleted store's client is closed only after its last lease.
func TestForgetWaitsForLeases(t *testing.T) {
	ctx := context.Background()
	c, _, store := sqliteStore(t)
	pool := NewPool(c, "dsr-system", nil)

	lease, err := pool.Acquire(ctx, store, false)
	if err != nil {
		t.Fatal(err)
	}
	pool.Forget(store.Ref)
	if _, err := lease.Client().Check(ctx); err != nil {
		t.Fatalf("leased client after Forget: %v", err)
	}
	lease.Release()
	if _, err := lease.Client().Check(ctx); err == nil {
		t.Fatal("forgotten client still open after its last release")
	}

	again, err := pool.Acquire(ctx, store, false)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Release()
	if again.Client() == lease.Client() {
		t.Fatal("Acquire after Forget returned the forgotten client")
	}
	if _, err := again.Client().Check(ctx); err != nil {
		t.Fatalf("new client after Forget: %v", err)
	}
}
