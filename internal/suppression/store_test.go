package suppression

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

func TestStorageRoundTripDetectsLossAndConflicts(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	_ = privacyv1alpha1.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	list := &privacyv1alpha1.SuppressionList{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "erased", UID: "uid-1"}}
	st := Storage{Client: c, Reader: c}

	empty, err := st.Load(ctx, list)
	if err != nil || empty.Set.Len() != 0 {
		t.Fatalf("a new list must load empty: %v", err)
	}
	var entries []Entry
	for i := range 60_000 {
		h, _ := DropHash(KindEmail, fmt.Sprintf("person-%d@example.com", i))
		entries = append(entries, Entry{Hash: h, Kind: KindEmail, ID: fmt.Sprintf("ITEM-%07d", i)})
	}
	saved, err := st.Save(ctx, list, empty, NewSet(entries), "sha256:one")
	if err != nil {
		t.Fatal(err)
	}
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, client.InNamespace("shop")); err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) < 3 {
		t.Fatalf("60,000 entries must be split into chunks, got %d Secrets", len(secrets.Items))
	}
	for _, s := range secrets.Items {
		if n := len(s.Data[chunkKey]) * 4 / 3; n > 900<<10 {
			t.Fatalf("Secret %s would be %d bytes encoded", s.Name, n)
		}
	}
	back, err := st.Load(ctx, list)
	if err != nil || back.Set.Len() != 60_000 || back.Index.SourceDigest != "sha256:one" {
		t.Fatalf("load after save: %v (%d entries)", err, back.Set.Len())
	}

	// A second writer working from the same version loses, and nothing is lost.
	if _, err := st.Save(ctx, list, empty, NewSet(entries[:1]), ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("a stale writer must conflict, got %v", err)
	}
	if _, err := st.Update(ctx, list, func(l *Loaded) (string, bool, error) {
		return l.Index.SourceDigest, l.Set.RemoveIDs(map[string]bool{"ITEM-0000001": true}) > 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	back, err = st.Load(ctx, list)
	if err != nil || back.Set.Len() != 59_999 {
		t.Fatalf("after update: %v (%d entries)", err, back.Set.Len())
	}

	// A chunk missing or altered fails the load instead of shortening the list.
	ref := back.Index.Chunks[0]
	var chunk corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: ref.Name}, &chunk); err != nil {
		t.Fatal(err)
	}
	chunk.Data[chunkKey] = chunk.Data[chunkKey][:len(chunk.Data[chunkKey])-35]
	if err := c.Update(ctx, &chunk); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load(ctx, list); err == nil || !strings.Contains(err.Error(), "does not hold what the index says") {
		t.Fatalf("an altered chunk must fail the load, got %v", err)
	}
	if err := c.Delete(ctx, &chunk); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load(ctx, list); err == nil {
		t.Fatalf("a missing chunk must fail the load")
	}
	_ = saved
}

// The storage never lists Secrets: a save that died after claiming its chunks (a lost race, a
// killed manager) leaves them named in the index, and the next save deletes them by name, so
// that the namespace ends up holding the index and the chunks it names, nothing else.
func TestStorageNeverListsAndRetiresWhatItNoLongerNames(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	_ = privacyv1alpha1.AddToScheme(scheme)
	// indexUpdates > 0 counts the index updates down; the one that reaches 0 fails.
	indexUpdates := 0
	base := fake.NewClientBuilder().WithScheme(scheme).Build()
	c := interceptor.NewClient(base, interceptor.Funcs{
		List: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			t.Errorf("the storage listed %T", list)
			return errors.New("listing is forbidden")
		},
		Update: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if obj.GetName() == IndexName("erased") && indexUpdates > 0 {
				if indexUpdates--; indexUpdates == 0 {
					return errors.New("the manager was killed")
				}
			}
			return cl.Update(ctx, obj, opts...)
		},
	})
	list := &privacyv1alpha1.SuppressionList{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "erased", UID: "uid-1"}}
	st := Storage{Client: c, Reader: c}
	entry := func(i int) Entry {
		h, _ := DropHash(KindEmail, fmt.Sprintf("person-%d@example.com", i))
		return Entry{Hash: h, Kind: KindEmail, ID: fmt.Sprintf("ITEM-%07d", i)}
	}
	var entries []Entry
	for i := range 40_000 {
		entries = append(entries, entry(i))
	}
	empty, err := st.Load(ctx, list)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Save(ctx, list, empty, NewSet(entries), "one"); err != nil {
		t.Fatal(err)
	}
	// A save claims its chunks and writes them, and dies before its index names them.
	indexUpdates = 2
	if _, err := st.Update(ctx, list, func(l *Loaded) (string, bool, error) {
		return l.Index.SourceDigest, l.Set.Add(entry(50_000), entry(50_001)) > 0, nil
	}); err == nil {
		t.Fatal("the interrupted save must fail")
	}
	l, err := st.Load(ctx, list)
	if err != nil || l.Set.Len() != 40_000 || len(l.Index.Pending) == 0 {
		t.Fatalf("after the interrupted save: %v, %d entries, pending %v", err, l.Set.Len(), l.Index.Pending)
	}
	// The next saves: one replaces chunks (their old versions retired), one removes entries.
	if _, err := st.Update(ctx, list, func(l *Loaded) (string, bool, error) {
		return l.Index.SourceDigest, l.Set.Add(entry(60_000)) > 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, list, func(l *Loaded) (string, bool, error) {
		return l.Index.SourceDigest, l.Set.RemoveIDs(map[string]bool{"ITEM-0000007": true, "ITEM-0039999": true}) > 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	l, err = st.Load(ctx, list)
	if err != nil || l.Set.Len() != 39_999 {
		t.Fatalf("after the saves: %v, %d entries", err, l.Set.Len())
	}
	var secrets corev1.SecretList
	if err := base.List(ctx, &secrets, client.InNamespace("shop")); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{IndexName("erased"): true}
	for _, ref := range l.Index.Chunks {
		want[ref.Name] = true
	}
	var got []string
	for _, s := range secrets.Items {
		got = append(got, s.Name)
		if !want[s.Name] {
			t.Errorf("secret %s is left behind: the index names %d chunks", s.Name, len(l.Index.Chunks))
		}
	}
	if len(got) != len(want) {
		t.Errorf("the namespace holds %v, want the index and %d chunks", got, len(l.Index.Chunks))
	}
}
