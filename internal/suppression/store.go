package suppression

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/requests"
)

// MaxChunkBytes bounds one encoded chunk. Secret data travels base64-encoded in JSON, so a chunk
// of 640 KiB makes an object of about 860 KiB, under the API server's 1 MiB.
const MaxChunkBytes = 640 << 10

// Labels of the Secrets that hold a list's entries.
const (
	LabelList    = "privacy.dsr.dev/suppressionlist"
	LabelListUID = "privacy.dsr.dev/suppressionlist-uid"
	LabelPart    = "privacy.dsr.dev/suppression-part"
	partIndex    = "index"
	partChunk    = "chunk"
	indexKey     = "index.json"
	chunkKey     = "entries"
)

// orphanAge is how old an unreferenced chunk must be before it is deleted: a concurrent writer
// may have created it and not yet written the index that references it.
const orphanAge = 10 * time.Minute

// Index ties a list's chunks together. It is written after every chunk it names exists, so a
// reader sees either the old or the new set, whole.
type Index struct {
	Version int        `json:"version"`
	Entries int        `json:"entries"`
	Bits    int        `json:"bits"`
	Chunks  []ChunkRef `json:"chunks"`
	// SourceDigest is the digest of the last DROP download applied.
	SourceDigest string `json:"sourceDigest,omitempty"`
}

// ChunkRef names one chunk and what it must hold.
type ChunkRef struct {
	Name    string `json:"name"`
	Entries int    `json:"entries"`
	SHA256  string `json:"sha256"`
}

// Loaded is a list's set as read, with what Save needs to replace it safely.
type Loaded struct {
	Set   *Set
	Index Index
	// resourceVersion of the index Secret; empty when the list has none yet.
	resourceVersion string
}

// ErrConflict: another writer changed the list since it was loaded; load again and retry.
var ErrConflict = errors.New("the suppression list changed while it was updated")

// Storage reads and writes a list's entries. Reader reads Secrets directly (they are not cached).
type Storage struct {
	Client client.Client
	Reader client.Reader
}

// IndexName is the name of a list's index Secret.
func IndexName(list string) string { return requests.DerivedName(list, "-suppression") }

func chunkName(list, sum string) string { return requests.DerivedName(list, "-suppression-"+sum[:16]) }

// Load reads a list's entries. A chunk missing, altered or not holding what the index says fails
// the load: a sweep against part of a list would let people through unnoticed.
func (s Storage) Load(ctx context.Context, list *privacyv1alpha1.SuppressionList) (*Loaded, error) {
	var idx corev1.Secret
	err := s.Reader.Get(ctx, types.NamespacedName{Namespace: list.Namespace, Name: IndexName(list.Name)}, &idx)
	if apierrors.IsNotFound(err) {
		return &Loaded{Set: NewSet(nil), Index: Index{Version: 1}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the list's index: %w", err)
	}
	if !owned(&idx, list) {
		return nil, fmt.Errorf("secret %s does not belong to this SuppressionList", idx.Name)
	}
	var index Index
	if err := json.Unmarshal(idx.Data[indexKey], &index); err != nil {
		return nil, fmt.Errorf("the list's index Secret %s is malformed: %w", idx.Name, err)
	}
	var all []Entry
	for _, ref := range index.Chunks {
		var chunk corev1.Secret
		if err := s.Reader.Get(ctx, types.NamespacedName{Namespace: list.Namespace, Name: ref.Name}, &chunk); err != nil {
			return nil, fmt.Errorf("reading chunk %s of the list: %w", ref.Name, err)
		}
		data := chunk.Data[chunkKey]
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != ref.SHA256 || !owned(&chunk, list) {
			return nil, fmt.Errorf("chunk %s of the list does not hold what the index says", ref.Name)
		}
		entries, err := decodeChunk(data)
		if err != nil || len(entries) != ref.Entries {
			return nil, fmt.Errorf("chunk %s of the list does not hold what the index says", ref.Name)
		}
		all = append(all, entries...)
	}
	if len(all) != index.Entries {
		return nil, fmt.Errorf("the list's chunks hold %d entries, its index %d", len(all), index.Entries)
	}
	return &Loaded{Set: NewSet(all), Index: index, resourceVersion: idx.ResourceVersion}, nil
}

func owned(s *corev1.Secret, list *privacyv1alpha1.SuppressionList) bool {
	return s.Labels[LabelListUID] == string(list.UID) && s.Labels[privacyv1alpha1.ManagedByLabel] == privacyv1alpha1.ManagedByValue
}

func (s Storage) labels(list *privacyv1alpha1.SuppressionList, part string) map[string]string {
	l := requests.RequestLabels(LabelList, list.Name, "")
	delete(l, requests.LabelRequestUID)
	l[LabelListUID] = string(list.UID)
	l[LabelPart] = part
	return l
}

// Save replaces the list's entries by set, as loaded from prev: it writes the chunks that do
// not exist yet (named by their content, so an unchanged chunk is not written again), then the
// index, conditionally on prev's version (ErrConflict when another writer came first), then
// deletes the chunks nothing references any more.
func (s Storage) Save(ctx context.Context, list *privacyv1alpha1.SuppressionList, prev *Loaded, set *Set, sourceDigest string) (*Loaded, error) {
	chunks, bits, err := set.split(MaxChunkBytes)
	if err != nil {
		return nil, err
	}
	index := Index{Version: 1, Entries: set.Len(), Bits: bits, SourceDigest: sourceDigest}
	existing := map[string]bool{}
	for _, ref := range prev.Index.Chunks {
		existing[ref.Name] = true
	}
	for _, c := range chunks {
		data := encodeChunk(c)
		sum := sha256.Sum256(data)
		ref := ChunkRef{Name: chunkName(list.Name, hex.EncodeToString(sum[:])), Entries: len(c), SHA256: hex.EncodeToString(sum[:])}
		index.Chunks = append(index.Chunks, ref)
		if existing[ref.Name] {
			continue
		}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: list.Namespace, Name: ref.Name,
			Labels: s.labels(list, partChunk)}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{chunkKey: data}}
		if err := controllerutil.SetControllerReference(list, secret, s.Client.Scheme()); err != nil {
			return nil, err
		}
		if err := s.Client.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("writing chunk %s of the list: %w", ref.Name, err)
		}
	}
	raw, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}
	idx := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: list.Namespace, Name: IndexName(list.Name),
		Labels: s.labels(list, partIndex), ResourceVersion: prev.resourceVersion},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{indexKey: raw}}
	if err := controllerutil.SetControllerReference(list, idx, s.Client.Scheme()); err != nil {
		return nil, err
	}
	if prev.resourceVersion == "" {
		err = s.Client.Create(ctx, idx)
		if apierrors.IsAlreadyExists(err) {
			return nil, ErrConflict
		}
	} else {
		err = s.Client.Update(ctx, idx)
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil, ErrConflict
		}
	}
	if err != nil {
		return nil, fmt.Errorf("writing the list's index: %w", err)
	}
	next := &Loaded{Set: set, Index: index, resourceVersion: idx.ResourceVersion}
	return next, s.collectOrphans(ctx, list, index)
}

// collectOrphans deletes the list's chunks that the index no longer names.
func (s Storage) collectOrphans(ctx context.Context, list *privacyv1alpha1.SuppressionList, index Index) error {
	keep := map[string]bool{}
	for _, ref := range index.Chunks {
		keep[ref.Name] = true
	}
	var secrets corev1.SecretList
	if err := s.Reader.List(ctx, &secrets, client.InNamespace(list.Namespace),
		client.MatchingLabels{LabelListUID: string(list.UID), LabelPart: partChunk}); err != nil {
		return fmt.Errorf("listing the list's chunks: %w", err)
	}
	for i := range secrets.Items {
		sec := &secrets.Items[i]
		if keep[sec.Name] || time.Since(sec.CreationTimestamp.Time) < orphanAge {
			continue
		}
		pre := client.Preconditions{UID: &sec.UID, ResourceVersion: &sec.ResourceVersion}
		if err := s.Client.Delete(ctx, sec, pre); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("deleting an unreferenced chunk of the list: %w", err)
		}
	}
	return nil
}

// Update loads the list, applies change and saves it, retrying when another writer came first.
// change reports whether it changed anything; when not, nothing is written.
func (s Storage) Update(ctx context.Context, list *privacyv1alpha1.SuppressionList, change func(l *Loaded) (digest string, changed bool, err error)) (*Loaded, error) {
	for attempt := 0; ; attempt++ {
		l, err := s.Load(ctx, list)
		if err != nil {
			return nil, err
		}
		digest, changed, err := change(l)
		if err != nil || !changed {
			return l, err
		}
		next, err := s.Save(ctx, list, l, l.Set, digest)
		if errors.Is(err, ErrConflict) && attempt < 5 {
			continue
		}
		return next, err
	}
}
