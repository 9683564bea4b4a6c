package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/requests"
)

const settle = 60 * time.Second

// verifyReceipt checks the request's receipt against the published public key and the request.
func verifyReceipt(t *testing.T, dr *privacyv1alpha1.DeletionRequest) *receipt.Receipt {
	t.Helper()
	ctx := context.Background()
	if dr.Status.Receipt == nil {
		t.Fatal("no status.receipt")
	}
	var cm, pub corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: dr.Namespace, Name: dr.Status.Receipt.ConfigMapName}, &cm); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: receipt.PublicKeyConfigMapName}, &pub); err != nil {
		t.Fatal(err)
	}
	key, err := receipt.ParsePublicKey([]byte(pub.Data[receipt.KeyPEM]))
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(cm.Data[receipt.DataKey])
	rc, err := receipt.Verify(data, []byte(cm.Data[receipt.SignatureKey]), key)
	if err != nil {
		t.Fatalf("receipt does not verify: %v", err)
	}
	if receipt.Digest(data) != dr.Status.Receipt.SHA256 || cm.Data[receipt.SignatureKey] != dr.Status.Receipt.Signature {
		t.Error("status.receipt does not match the ConfigMap")
	}
	if rc.Request.UID != string(dr.UID) || rc.Request.Name != dr.Name || rc.SubjectDigest != dr.Status.SubjectDigest {
		t.Errorf("receipt is for another request or subject: %+v", rc.Request)
	}
	// The receipt outlives its request (the records period): no owner, tied to it by its UID.
	if len(cm.OwnerReferences) != 0 {
		t.Errorf("receipt ConfigMap is owned (%v): it would be deleted with the request", cm.OwnerReferences)
	}
	if cm.Labels[requests.LabelRequestUID] != string(dr.UID) || cm.Labels[requests.LabelManagedBy] != requests.ManagedByValue {
		t.Errorf("receipt ConfigMap labels %v", cm.Labels)
	}
	// Retention dates the receipt by this annotation, reading no data.
	if got, want := cm.Annotations["privacy.dsr.dev/receipt-issued-at"], rc.IssuedAt.UTC().Format(time.RFC3339); got != want {
		t.Errorf("receipt ConfigMap annotated as issued at %q, want %q", got, want)
	}
	for _, v := range subjectIDs {
		if strings.Contains(string(data), v) {
			t.Error("the receipt holds an identifier value")
		}
	}
	return rc
}

func storeStatus(t *testing.T, dr *privacyv1alpha1.DeletionRequest, name string) privacyv1alpha1.DeletionStoreStatus {
	t.Helper()
	for _, s := range dr.Status.Stores {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("store %s not in status: %s", name, storesString(dr))
	return privacyv1alpha1.DeletionStoreStatus{}
}

func TestDeletionAcrossEveryStoreType(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	fixtures := map[string]*sqlFixture{
		"pg":     startPostgresFixture(t),
		"maria":  startMariaDBFixture(t),
		"sqlite": startSQLiteFixture(t),
	}
	for name, f := range fixtures {
		f.dataStore(t, ns, name)
	}
	rd := redisDataStore(t, ns, "cache")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, deletionRequest(ns, "erase-jane", "jane"))

	dr := waitDR(t, ns, "erase-jane", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, settle)
	for name, f := range fixtures {
		f.assertErased(t)
		s := storeStatus(t, dr, name)
		if s.Phase != privacyv1alpha1.StoreVerified || s.Erased != 1 || s.Masked != 2 || s.Retained != 1 || s.Remaining != 0 {
			t.Errorf("%s: %+v", name, s)
		}
		if len(s.RetainedReasons) != 1 || !strings.Contains(s.RetainedReasons[0].Reason, "tax law") {
			t.Errorf("%s: retained reasons %+v", name, s.RetainedReasons)
		}
	}
	rd.assertErased(t)
	if s := storeStatus(t, dr, "cache"); s.Phase != privacyv1alpha1.StoreVerified || s.Erased != 3 || s.Retained != 1 || s.Remaining != 0 ||
		len(s.RetainedReasons) != 1 || !strings.Contains(s.RetainedReasons[0].Reason, "consent") {
		t.Errorf("redis: %+v", s)
	}
	if !isTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) || !isTrue(dr.Status.Conditions, privacyv1alpha1.ConditionErased) {
		t.Errorf("conditions: %s", conditionsString(dr.Status.Conditions))
	}
	if dr.Status.Phase != privacyv1alpha1.PhaseCompleted || dr.Status.CompletionTime == nil || dr.Status.StoreCount != 4 {
		t.Errorf("status: %+v", dr.Status)
	}
	if !strings.HasPrefix(dr.Status.SubjectDigest, "sha256:") || dr.Status.Deadline == nil {
		t.Errorf("digest %q deadline %v", dr.Status.SubjectDigest, dr.Status.Deadline)
	}
	rc := verifyReceipt(t, dr)
	if len(rc.Stores) != 4 {
		t.Errorf("receipt stores: %+v", rc.Stores)
	}
	for _, s := range rc.Stores {
		if s.Type == "redis" {
			continue
		}
		if s.Erased != 1 || s.Masked != 2 || s.Retained != 1 || s.Remaining != 0 || s.VerifiedAt.IsZero() || len(s.RetainedReasons) != 1 {
			t.Errorf("receipt store %+v", s)
		}
	}
	assertNoIdentifiersIn(t, ns, dr)
	// Straight through (accepted, erased and verified at the first attempt): the conditions and
	// the receipt say so, and no event costs an API write. The recorder sends asynchronously.
	time.Sleep(2 * time.Second)
	if evs, err := eventsAbout(ns, "erase-jane"); err != nil {
		t.Fatal(err)
	} else if len(evs) > 0 {
		t.Errorf("a request that went straight through wrote events: %s", describeEvents(evs))
	}
}

// eventsAbout lists the events about object in ns.
func eventsAbout(ns, object string) ([]corev1.Event, error) {
	var evs corev1.EventList
	if err := env.Client.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var out []corev1.Event
	for _, e := range evs.Items {
		if e.InvolvedObject.Name == object {
			out = append(out, e)
		}
	}
	return out, nil
}

func describeEvents(evs []corev1.Event) string {
	seen := make([]string, len(evs))
	for i, e := range evs {
		seen[i] = e.Type + " " + e.Reason + ": " + e.Message
	}
	return strings.Join(seen, " | ")
}

// assertNoIdentifiersIn checks that the subject's identifiers appear in neither the request's
// status nor the namespace's events.
func assertNoIdentifiersIn(t *testing.T, ns string, objs ...client.Object) {
	t.Helper()
	var text strings.Builder
	for _, o := range objs {
		text.WriteString(mustJSON(t, o))
	}
	// Events are recorded asynchronously: the request can be read Verified before its event is.
	var evs corev1.EventList
	eventually(t, 15*time.Second, func() (bool, string) {
		if err := env.Client.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		return len(evs.Items) > 0, "no events were recorded"
	})
	text.WriteString(mustJSON(t, &evs))
	for _, v := range subjectIDs {
		if strings.Contains(text.String(), v) {
			t.Errorf("an identifier value appears in status or events")
		}
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	f := startPostgresFixture(t)
	f.dataStore(t, ns, "pg")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, deletionRequest(ns, "dry", "jane", func(dr *privacyv1alpha1.DeletionRequest) { dr.Spec.DryRun = true }))
	dr := waitDR(t, ns, "dry", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonDryRun, settle)
	s := storeStatus(t, dr, "pg")
	if s.Phase != privacyv1alpha1.StoreDryRun || s.Planned == nil || s.Planned.Erased != 1 || s.Planned.Masked != 2 || s.Planned.Retained != 1 || s.Erased != 0 {
		t.Errorf("%+v planned %+v", s, s.Planned)
	}
	if n := f.count(t, `SELECT COUNT(*) FROM customers WHERE email = $1`, subjectIDs["email"]); n != 1 {
		t.Errorf("dry run erased rows: %d left", n)
	}
	if dr.Status.Receipt != nil {
		t.Error("a dry run issued a receipt")
	}
}

func TestAcceptanceProblemsAreSpecific(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)

	create(t, deletionRequest(ns, "no-stores", "absent"))
	dr := waitDR(t, ns, "no-stores", privacyv1alpha1.ConditionAccepted, metav1.ConditionFalse, privacyv1alpha1.ReasonNoStores, settle)
	if dr.Status.Phase != privacyv1alpha1.PhasePending {
		t.Errorf("phase %s", dr.Status.Phase)
	}

	f := startSQLiteFixture(t)
	f.dataStore(t, ns, "db")
	create(t, deletionRequest(ns, "no-secret", "absent"))
	waitDR(t, ns, "no-secret", privacyv1alpha1.ConditionAccepted, metav1.ConditionFalse, privacyv1alpha1.ReasonIdentifiersMissing, settle)

	create(t, secret(ns, "typo", map[string]string{"emial": subjectIDs["email"]}))
	create(t, deletionRequest(ns, "typo", "typo"))
	dr = waitDR(t, ns, "typo", privacyv1alpha1.ConditionAccepted, metav1.ConditionFalse, privacyv1alpha1.ReasonUnknownIdentifier, settle)
	if c := condition(dr.Status.Conditions, privacyv1alpha1.ConditionAccepted); !strings.Contains(c, `"emial"`) {
		t.Errorf("the message does not name the unknown identifier: %s", c)
	}
	if c := condition(dr.Status.Conditions, privacyv1alpha1.ConditionReady); !strings.Contains(c, privacyv1alpha1.ReasonUnknownIdentifier) {
		t.Errorf("Ready does not summarise: %s", c)
	}

	// The missing Secret arrives later: the request goes on by itself.
	create(t, secret(ns, "absent", subjectIDs))
	waitDR(t, ns, "no-secret", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, settle)
	f.assertErased(t)
}

func TestDataReappearedIsReportedAndReErased(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	f := startPostgresFixture(t)
	f.dataStore(t, ns, "pg")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, secret(ns, "jane2", subjectIDs))
	interval := &metav1.Duration{Duration: 2 * time.Second}
	create(t, deletionRequest(ns, "watch", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Verification = &privacyv1alpha1.Verification{ReverifyInterval: interval, ReverifyPeriod: &metav1.Duration{Duration: time.Hour}}
	}))
	waitDR(t, ns, "watch", privacyv1alpha1.ConditionVerified, metav1.ConditionTrue, privacyv1alpha1.ReasonVerified, settle)

	// A backup restore brings the customer back.
	f.exec(t, `INSERT INTO customers (id, email, name) VALUES ($1, $2, 'restored')`, subjectIDs["userId"], subjectIDs["email"])
	dr := waitDR(t, ns, "watch", privacyv1alpha1.ConditionVerified, metav1.ConditionFalse, privacyv1alpha1.ReasonDataReappeared, 20*time.Second)
	if dr.Status.Phase != privacyv1alpha1.PhaseReappeared || dr.Status.Verification.Reappearances < 1 {
		t.Errorf("status %+v", dr.Status)
	}
	if s := storeStatus(t, dr, "pg"); s.Phase != privacyv1alpha1.StoreReappeared || s.Remaining != 1 {
		t.Errorf("%+v", s)
	}
	if hasReason(dr.Status.Conditions, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted) {
		t.Error("Ready stays True with reappeared data")
	}
	receiptBefore := dr.Status.Receipt.SHA256
	waitEvent(t, ns, "watch", privacyv1alpha1.ReasonDataReappeared, "DataStore pg")
	if n := f.count(t, `SELECT COUNT(*) FROM customers WHERE email = $1`, subjectIDs["email"]); n != 1 {
		t.Errorf("without reErase the reappeared row must stay for a person to look at: %d", n)
	}

	// With reErase, a second request erases what comes back.
	create(t, deletionRequest(ns, "reerase", "jane2", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Verification = &privacyv1alpha1.Verification{ReverifyInterval: interval, ReverifyPeriod: &metav1.Duration{Duration: time.Hour}, ReErase: true}
	}))
	dr2 := waitDR(t, ns, "reerase", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, settle)
	if n := f.count(t, `SELECT COUNT(*) FROM customers WHERE email = $1`, subjectIDs["email"]); n != 0 {
		t.Fatalf("rows left: %d", n)
	}
	_ = dr2
	f.exec(t, `INSERT INTO customers (id, email, name) VALUES ($1, $2, 'restored again')`, subjectIDs["userId"], subjectIDs["email"])
	dr2 = waitDR(t, ns, "reerase", privacyv1alpha1.ConditionVerified, metav1.ConditionTrue, privacyv1alpha1.ReasonReErased, 20*time.Second)
	if s := storeStatus(t, dr2, "pg"); s.ReErasures < 1 {
		t.Errorf("re-erasure not recorded: %+v", s)
	}
	if n := f.count(t, `SELECT COUNT(*) FROM customers WHERE email = $1`, subjectIDs["email"]); n != 0 {
		t.Errorf("reappeared rows not erased again: %d", n)
	}
	f.assertBystanderIntact(t)
	if getDR(t, ns, "watch").Status.Receipt.SHA256 != receiptBefore {
		t.Error("a re-verification replaced the receipt")
	}
}

func waitEvent(t *testing.T, ns, object, reason, contains string) {
	t.Helper()
	eventually(t, 20*time.Second, func() (bool, string) {
		evs, err := eventsAbout(ns, object)
		if err != nil {
			return false, err.Error()
		}
		for _, e := range evs {
			if e.Reason == reason && strings.Contains(e.Message, contains) {
				return true, ""
			}
		}
		return false, "events about " + object + ": " + describeEvents(evs)
	})
}

func TestVerificationPeriodEndDeletesIdentifiers(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	f := startSQLiteFixture(t)
	f.dataStore(t, ns, "db")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, secret(ns, "jane-kept", subjectIDs))
	short := func(keep bool) func(*privacyv1alpha1.DeletionRequest) {
		return func(dr *privacyv1alpha1.DeletionRequest) {
			dr.Spec.Verification = &privacyv1alpha1.Verification{ReverifyInterval: &metav1.Duration{Duration: time.Second},
				ReverifyPeriod: &metav1.Duration{Duration: 3 * time.Second}, KeepIdentifiersSecret: keep}
		}
	}
	create(t, deletionRequest(ns, "forget", "jane", short(false)))
	create(t, deletionRequest(ns, "keep", "jane-kept", short(true)))
	eventually(t, settle, func() (bool, string) {
		dr := getDR(t, ns, "forget")
		return dr.Status.Verification != nil && dr.Status.Verification.IdentifiersSecretDeleted, storesString(dr)
	})
	dr := getDR(t, ns, "forget")
	if dr.Status.Verification.Verifications < 2 || dr.Status.Verification.NextVerificationAt != nil {
		t.Errorf("verification %+v", dr.Status.Verification)
	}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "jane"}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("identifiers Secret still there: %v", err)
	}
	eventually(t, settle, func() (bool, string) {
		dr := getDR(t, ns, "keep")
		return dr.Status.Verification != nil && dr.Status.Verification.NextVerificationAt == nil && dr.Status.Phase == privacyv1alpha1.PhaseCompleted, "keep still verifying"
	})
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "jane-kept"}, &corev1.Secret{}); err != nil {
		t.Errorf("keepIdentifiersSecret: %v", err)
	}
	if !isTrue(getDR(t, ns, "forget").Status.Conditions, privacyv1alpha1.ConditionReady) {
		t.Error("the request is no longer Ready after the period")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
