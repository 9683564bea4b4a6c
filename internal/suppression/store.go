package suppression

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

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

// loadAttempts bounds how often Load starts again when a chunk vanished because a writer replaced
// the list while it was read.
const loadAttempts = 3

// Index ties a list's chunks together. The storage never lists Secrets (the operator is not
// allowed to): every Secret of a list is named here, so it can be read and deleted by name.
//
// A save claims a sequence number and the names of the chunks it will write (Pending) with a
// conditional write of the index, writes the chunks, then writes the index naming them, again
// conditionally. A reader sees either the old or the new set, whole. Chunks that an index no longer
// names, and the pending chunks of a save that never finished (a lost race, a killed manager), are
// Retired: deleted by name once the index that retired them is written, and kept in the index until
// the next save when a deletion failed.
type Index struct {
	Version int `json:"version"`
	// Seq is the last sequence number a save claimed; chunk names carry it, so no two saves ever
	// write the same name.
	Seq     int64      `json:"seq,omitempty"`
	Entries int        `json:"entries"`
	Bits    int        `json:"bits"`
	Chunks  []ChunkRef `json:"chunks"`
	Pending []string   `json:"pending,omitempty"`
	Retired []string   `json:"retired,omitempty"`
	// SourceDigest is the digest of the last DROP download applied.
	SourceDigest string `json:"sourceDigest,omitempty"`
	// Sweep is the checkpoint of a sweep in progress (sweep.go), so that a restarted manager
	// resumes it instead of counting its stores twice. It holds counts and store names only.
	Sweep *SweepCheckpoint `json:"sweep,omitempty"`
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

// errChunkGone: a chunk the index names is not there; the index may have moved on meanwhile.
var errChunkGone = errors.New("a chunk of the list is missing")

// Storage reads and writes a list's entries. Reader reads Secrets directly, by name (they are
// neither cached nor listed): mgr.GetAPIReader().
type Storage struct {
	Client client.Client
	Reader client.Reader
}

// IndexName is the name of a list's index Secret.
func IndexName(list string) string { return requests.DerivedName(list, "-suppression") }

// ChunkName is the name of chunk n written by the save with sequence number seq.
func ChunkName(list string, seq int64, n int) string {
	return requests.DerivedName(list, "-suppression-"+strconv.FormatInt(seq, 10)+"-"+strconv.Itoa(n))
}

// maxPreallocatedEntries bounds what Load reserves before the chunks are read.
const maxPreallocatedEntries = 4_000_000

// Load reads a list's entries. A chunk missing, altered or not holding what the index says fails
// the load: a sweep against part of a list would let people through unnoticed. A chunk that a
// concurrent save retired while it was being read makes Load start again from the new index.
func (s Storage) Load(ctx context.Context, list *privacyv1alpha1.SuppressionList) (*Loaded, error) {
	var lastVersion string
	for attempt := 1; ; attempt++ {
		l, version, err := s.loadOnce(ctx, list)
		if !errors.Is(err, errChunkGone) || attempt == loadAttempts || version == lastVersion {
			return l, err
		}
		lastVersion = version
		// Read the index again: when it changed, the missing chunk was retired by a save.
		var idx corev1.Secret
		if gerr := s.Reader.Get(ctx, types.NamespacedName{Namespace: list.Namespace, Name: IndexName(list.Name)}, &idx); gerr != nil || idx.ResourceVersion == version {
			return nil, err
		}
	}
}

func (s Storage) loadOnce(ctx context.Context, list *privacyv1alpha1.SuppressionList) (*Loaded, string, error) {
	var idx corev1.Secret
	err := s.Reader.Get(ctx, types.NamespacedName{Namespace: list.Namespace, Name: IndexName(list.Name)}, &idx)
	if apierrors.IsNotFound(err) {
		return &Loaded{Set: NewSet(nil), Index: Index{Version: 1}}, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading the list's index: %w", err)
	}
	if !owned(&idx, list) {
		return nil, "", fmt.Errorf("secret %s does not belong to this SuppressionList", idx.Name)
	}
	var index Index
	if err := json.Unmarshal(idx.Data[indexKey], &index); err != nil {
		return nil, "", fmt.Errorf("the list's index Secret %s is malformed: %w", idx.Name, err)
	}
	// Sized from the index once, not grown chunk by chunk (each growth a copy of the whole list);
	// bounded, as the index is read before any chunk confirms it.
	all := make([]Entry, 0, min(max(index.Entries, 0), maxPreallocatedEntries))
	for _, ref := range index.Chunks {
		var chunk corev1.Secret
		if err := s.Reader.Get(ctx, types.NamespacedName{Namespace: list.Namespace, Name: ref.Name}, &chunk); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, idx.ResourceVersion, fmt.Errorf("%w: chunk %s", errChunkGone, ref.Name)
			}
			return nil, "", fmt.Errorf("reading chunk %s of the list: %w", ref.Name, err)
		}
		data := chunk.Data[chunkKey]
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != ref.SHA256 || !owned(&chunk, list) {
			return nil, "", fmt.Errorf("chunk %s of the list does not hold what the index says", ref.Name)
		}
		entries, err := decodeChunk(data)
		if err != nil || len(entries) != ref.Entries {
			return nil, "", fmt.Errorf("chunk %s of the list does not hold what the index says", ref.Name)
		}
		all = append(all, entries...)
	}
	if len(all) != index.Entries {
		return nil, "", fmt.Errorf("the list's chunks hold %d entries, its index %d", len(all), index.Entries)
	}
	return &Loaded{Set: NewSet(all), Index: index, resourceVersion: idx.ResourceVersion}, idx.ResourceVersion, nil
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

// newChunk is a chunk of the set being saved: its content, and the name it is (or will be)
// stored under.
type newChunk struct {
	data  []byte
	ref   ChunkRef
	fresh bool
}

// Save replaces the list's entries by set, as loaded from prev, keeping prev's sweep checkpoint.
// A chunk whose content prev already stores is kept under its name; the others are claimed in the
// index (Pending), written, and named by the index written last. Both index writes are
// conditional on the version read: ErrConflict when another writer came first, and then the
// chunks this save wrote are retired by that writer or the next one, never left behind unnamed.
func (s Storage) Save(ctx context.Context, list *privacyv1alpha1.SuppressionList, prev *Loaded, set *Set, sourceDigest string) (*Loaded, error) {
	parts, bits, err := set.split(MaxChunkBytes)
	if err != nil {
		return nil, err
	}
	stored := map[string]ChunkRef{}
	for _, ref := range prev.Index.Chunks {
		stored[ref.SHA256] = ref
	}
	seq := prev.Index.Seq + 1
	var chunks []newChunk
	var fresh []string
	for _, c := range parts {
		data := encodeChunk(c)
		sum := sha256.Sum256(data)
		ref := ChunkRef{Entries: len(c), SHA256: hex.EncodeToString(sum[:])}
		if old, ok := stored[ref.SHA256]; ok && old.Entries == ref.Entries {
			chunks = append(chunks, newChunk{data: data, ref: old})
			continue
		}
		ref.Name = ChunkName(list.Name, seq, len(fresh))
		fresh = append(fresh, ref.Name)
		chunks = append(chunks, newChunk{data: data, ref: ref, fresh: true})
	}
	kept := map[string]bool{}
	index := Index{Version: 1, Seq: prev.Index.Seq, Entries: set.Len(), Bits: bits, SourceDigest: sourceDigest, Sweep: prev.Index.Sweep}
	for _, c := range chunks {
		index.Chunks = append(index.Chunks, c.ref)
		kept[c.ref.Name] = true
	}
	// Chunks an earlier index retired are named by no index any more and never will be again:
	// those its save could not delete go now. Chunks an unfinished save claimed are retired by
	// this one, and deleted only after its index is written: that save may still be running, and
	// its own index write then fails on the version.
	retired := append(s.deleteNames(ctx, list, prev.Index.Retired), prev.Index.Pending...)
	version := prev.resourceVersion
	if len(fresh) > 0 {
		claim := prev.Index
		claim.Seq, claim.Pending, claim.Retired = seq, fresh, retired
		if version, err = s.writeIndex(ctx, list, claim, version); err != nil {
			return nil, err
		}
		index.Seq = seq
		for _, c := range chunks {
			if c.fresh {
				if err := s.writeChunk(ctx, list, c); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, ref := range prev.Index.Chunks {
		if !kept[ref.Name] {
			retired = append(retired, ref.Name)
		}
	}
	index.Retired = retired
	if version, err = s.writeIndex(ctx, list, index, version); err != nil {
		return nil, err
	}
	// The index is written: what it retired goes now. What cannot be deleted stays named in
	// Retired, and the next save deletes it.
	s.deleteNames(ctx, list, index.Retired)
	return &Loaded{Set: set, Index: index, resourceVersion: version}, nil
}

// writeIndex writes the index conditionally on version (empty: it must not exist yet) and
// returns the new version.
func (s Storage) writeIndex(ctx context.Context, list *privacyv1alpha1.SuppressionList, index Index, version string) (string, error) {
	raw, err := json.Marshal(index)
	if err != nil {
		return "", err
	}
	if len(raw) > MaxChunkBytes {
		return "", fmt.Errorf("the list's index would be %d bytes, more than a Secret holds", len(raw))
	}
	idx := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: list.Namespace, Name: IndexName(list.Name),
		Labels: s.labels(list, partIndex), ResourceVersion: version},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{indexKey: raw}}
	if err := controllerutil.SetControllerReference(list, idx, s.Client.Scheme()); err != nil {
		return "", err
	}
	if version == "" {
		err = s.Client.Create(ctx, idx)
		if apierrors.IsAlreadyExists(err) {
			return "", ErrConflict
		}
	} else {
		err = s.Client.Update(ctx, idx)
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return "", ErrConflict
		}
	}
	if err != nil {
		return "", fmt.Errorf("writing the list's index: %w", err)
	}
	return idx.ResourceVersion, nil
}

// writeChunk creates a chunk this save claimed. A Secret already under its name is a leftover
// of a list whose index was lost (sequence numbers start again): it is the list's, named by no
// index, and is replaced.
func (s Storage) writeChunk(ctx context.Context, list *privacyv1alpha1.SuppressionList, c newChunk) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: list.Namespace, Name: c.ref.Name,
		Labels: s.labels(list, partChunk)}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{chunkKey: c.data}}
	if err := controllerutil.SetControllerReference(list, secret, s.Client.Scheme()); err != nil {
		return err
	}
	err := s.Client.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		var existing corev1.Secret
		if err := s.Reader.Get(ctx, client.ObjectKeyFromObject(secret), &existing); err != nil {
			return fmt.Errorf("reading chunk %s of the list: %w", c.ref.Name, err)
		}
		if !owned(&existing, list) {
			return fmt.Errorf("secret %s exists and does not belong to this SuppressionList", c.ref.Name)
		}
		existing.Data = secret.Data
		err = s.Client.Update(ctx, &existing)
	}
	if err != nil {
		return fmt.Errorf("writing chunk %s of the list: %w", c.ref.Name, err)
	}
	return nil
}

// deleteNames deletes the list's Secrets of those names and returns the names it could not
// delete. A Secret already gone is deleted; one of another owner is never touched.
func (s Storage) deleteNames(ctx context.Context, list *privacyv1alpha1.SuppressionList, names []string) []string {
	var left []string
	for _, name := range names {
		var secret corev1.Secret
		err := s.Reader.Get(ctx, types.NamespacedName{Namespace: list.Namespace, Name: name}, &secret)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err == nil && !owned(&secret, list) {
			continue
		}
		if err == nil {
			pre := client.Preconditions{UID: &secret.UID, ResourceVersion: &secret.ResourceVersion}
			err = client.IgnoreNotFound(s.Client.Delete(ctx, &secret, pre))
		}
		if err != nil {
			left = append(left, name)
		}
	}
	return left
}

// Update loads the list, applies change and saves it, retrying when another writer came first.
// change reports whether it changed anything; when not, nothing is written. It may change
// l.Index.Sweep, which is saved with the set.
func (s Storage) Update(ctx context.Context, list *privacyv1alpha1.SuppressionList, change func(l *Loaded) (digest string, changed bool, err error)) (*Loaded, error) {
	return s.UpdateFrom(ctx, list, nil, change)
}

// UpdateFrom is Update starting from l, loaded earlier (nil: load first), so that a writer that
// just read a large list does not read it again; on a conflict it loads and applies change again.
func (s Storage) UpdateFrom(ctx context.Context, list *privacyv1alpha1.SuppressionList, l *Loaded, change func(l *Loaded) (digest string, changed bool, err error)) (*Loaded, error) {
	for attempt := 0; ; attempt++ {
		if l == nil {
			var err error
			if l, err = s.Load(ctx, list); err != nil {
				return nil, err
			}
		}
		digest, changed, err := change(l)
		if err != nil || !changed {
			return l, err
		}
		next, err := s.Save(ctx, list, l, l.Set, digest)
		if errors.Is(err, ErrConflict) && attempt < 5 {
			l = nil
			continue
		}
		return next, err
	}
}
