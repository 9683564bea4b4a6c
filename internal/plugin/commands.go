package plugin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/subject"
)

func runStatus(ctx context.Context, args []string, stdout io.Writer) error {
	var co common
	var kind string
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	co.bind(fs)
	fs.StringVar(&kind, "kind", "", "deletion or access (default: whichever has the name)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch strings.ToLower(kind) {
	case "":
	case "deletion", "deletionrequest", "deletionrequests", "dr":
		kind = "deletion"
	case "access", "accessrequest", "accessrequests", "ar":
		kind = "access"
	default:
		return &ExitError{Code: 2, Msg: fmt.Sprintf("--kind must be deletion or access, not %q", kind)}
	}
	if len(pos) > 1 {
		return &ExitError{Code: 2, Msg: "status takes at most one request NAME\n\n" + usage}
	}
	c, ns, err := co.client()
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return listRequests(ctx, c, ns, stdout)
	}
	name := pos[0]
	if kind != "access" {
		var dr privacyv1alpha1.DeletionRequest
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &dr)
		if err == nil {
			printDeletion(stdout, &dr)
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		if kind == "deletion" {
			return &ExitError{Code: 1, Msg: fmt.Sprintf("no DeletionRequest %q in namespace %q", name, ns)}
		}
	}
	var ar privacyv1alpha1.AccessRequest
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ar); err != nil {
		if apierrors.IsNotFound(err) {
			if kind == "access" {
				return &ExitError{Code: 1, Msg: fmt.Sprintf("no AccessRequest %q in namespace %q", name, ns)}
			}
			return &ExitError{Code: 1, Msg: fmt.Sprintf("no DeletionRequest or AccessRequest %q in namespace %q", name, ns)}
		}
		return err
	}
	printAccess(stdout, &ar)
	return nil
}

func age(t metav1.Time) string {
	return duration.HumanDuration(time.Since(t.Time))
}

func condStatus(conds []metav1.Condition, typ string) string {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return "-"
	}
	return string(c.Status)
}

func stamp(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func listRequests(ctx context.Context, c client.Client, ns string, stdout io.Writer) error {
	var drs privacyv1alpha1.DeletionRequestList
	if err := c.List(ctx, &drs, client.InNamespace(ns)); err != nil {
		return err
	}
	var ars privacyv1alpha1.AccessRequestList
	if err := c.List(ctx, &ars, client.InNamespace(ns)); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tPHASE\tVERIFIED\tREADY\tSTORES\tDEADLINE\tAGE")
	for _, d := range drs.Items {
		fmt.Fprintf(tw, "%s\tDeletionRequest\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Name, orDash(string(d.Status.Phase)), condStatus(d.Status.Conditions, privacyv1alpha1.ConditionVerified),
			condStatus(d.Status.Conditions, privacyv1alpha1.ConditionReady), len(d.Status.Stores), stamp(d.Status.Deadline), age(d.CreationTimestamp))
	}
	for _, a := range ars.Items {
		fmt.Fprintf(tw, "%s\tAccessRequest\t%s\t-\t%s\t%d\t%s\t%s\n", a.Name, orDash(string(a.Status.Phase)),
			condStatus(a.Status.Conditions, privacyv1alpha1.ConditionReady), len(a.Status.Stores), stamp(a.Status.Deadline), age(a.CreationTimestamp))
	}
	if len(drs.Items)+len(ars.Items) == 0 {
		fmt.Fprintf(stdout, "No requests in namespace %s.\n", ns)
		return nil
	}
	return tw.Flush()
}

func printConditions(w io.Writer, conds []metav1.Condition) {
	fmt.Fprintln(w, "Conditions:")
	sorted := append([]metav1.Condition(nil), conds...)
	order := map[string]int{"Ready": 0, "Accepted": 1, "Erased": 2, "Collected": 2, "Verified": 3, "DeadlineExceeded": 4, "Expired": 5}
	sort.SliceStable(sorted, func(i, j int) bool { return order[sorted[i].Type] < order[sorted[j].Type] })
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, c := range sorted {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	_ = tw.Flush()
}

func printDeletion(w io.Writer, dr *privacyv1alpha1.DeletionRequest) {
	st := &dr.Status
	fmt.Fprintf(w, "DeletionRequest %s/%s  phase %s  regulation %s\n", dr.Namespace, dr.Name, st.Phase, dr.Spec.Regulation)
	fmt.Fprintf(w, "Subject digest: %s\nReceived: %s  Deadline: %s  Completed: %s\n", orDash(st.SubjectDigest), stamp(st.ReceivedAt), stamp(st.Deadline), stamp(st.CompletionTime))
	if dr.Spec.DryRun {
		fmt.Fprintln(w, "Dry run: nothing is changed; PLANNED shows what would be.")
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tKIND\tTYPE\tPHASE\tERASED\tMASKED\tRETAINED\tREMAINING\tPLANNED\tATTEMPTS\tVERIFIED AT\tMESSAGE")
	for _, s := range st.Stores {
		planned := "-"
		if s.Planned != nil {
			planned = fmt.Sprintf("%d/%d/%d", s.Planned.Erased, s.Planned.Masked, s.Planned.Retained)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%d\t%s\t%s\n", s.Name, s.Kind, s.Type, s.Phase, s.Erased, s.Masked, s.Retained, s.Remaining,
			planned, s.Attempts, stamp(s.VerifiedAt), s.Message)
	}
	_ = tw.Flush()
	var reasons []string
	for _, s := range st.Stores {
		for _, r := range s.RetainedReasons {
			reasons = append(reasons, fmt.Sprintf("  %s %s: %d records: %s", s.Name, r.Location, r.Records, r.Reason))
		}
	}
	if len(reasons) > 0 {
		fmt.Fprintln(w, "Retained (legal hold):")
		fmt.Fprintln(w, strings.Join(reasons, "\n"))
	}
	printConditions(w, st.Conditions)
	if v := st.Verification; v != nil {
		fmt.Fprintf(w, "Re-verification: %d runs, last %s, next %s, until %s, reappearances %d, identifiers Secret deleted: %t\n",
			v.Verifications, stamp(v.LastVerifiedAt), stamp(v.NextVerificationAt), stamp(v.VerifyUntil), v.Reappearances, v.IdentifiersSecretDeleted)
	}
	if r := st.Receipt; r != nil {
		fmt.Fprintf(w, "Receipt: ConfigMap %s, %s, key %s, issued %s (kubectl dsr receipt verify %s)\n", r.ConfigMapName, r.SHA256, r.KeyID, r.IssuedAt.UTC().Format(time.RFC3339), dr.Name)
	}
}

func printAccess(w io.Writer, ar *privacyv1alpha1.AccessRequest) {
	st := &ar.Status
	fmt.Fprintf(w, "AccessRequest %s/%s  phase %s  regulation %s\n", ar.Namespace, ar.Name, st.Phase, ar.Spec.Regulation)
	fmt.Fprintf(w, "Subject digest: %s\nReceived: %s  Deadline: %s  Completed: %s\n", orDash(st.SubjectDigest), stamp(st.ReceivedAt), stamp(st.Deadline), stamp(st.CompletionTime))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tKIND\tTYPE\tPHASE\tRECORDS\tATTEMPTS\tCOLLECTED AT\tMESSAGE")
	for _, s := range st.Stores {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Name, s.Kind, s.Type, s.Phase, s.Records, s.Attempts, stamp(s.CollectedAt), s.Message)
	}
	_ = tw.Flush()
	printConditions(w, st.Conditions)
	if e := st.Export; e != nil {
		fmt.Fprintf(w, "Export: Secret %s, key %s, %d bytes (%s), %s, expires %s (kubectl dsr export %s)\n", e.SecretName, e.Key, e.Bytes, e.Encoding, e.SHA256, stamp(e.ExpiresAt), ar.Name)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// receiptOf fetches a request's receipt ConfigMap.
func receiptOf(ctx context.Context, c client.Client, dr *privacyv1alpha1.DeletionRequest) ([]byte, []byte, error) {
	if dr.Status.Receipt == nil {
		return nil, nil, &ExitError{Code: 1, Msg: fmt.Sprintf("DeletionRequest %s/%s has no receipt (phase %s): a receipt is issued when the erasure is verified", dr.Namespace, dr.Name, dr.Status.Phase)}
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: dr.Namespace, Name: dr.Status.Receipt.ConfigMapName}, &cm); err != nil {
		return nil, nil, fmt.Errorf("receipt ConfigMap %s: %w", dr.Status.Receipt.ConfigMapName, err)
	}
	return []byte(cm.Data[receipt.DataKey]), []byte(cm.Data[receipt.SignatureKey]), nil
}

func runReceiptShow(ctx context.Context, args []string, stdout io.Writer) error {
	var co common
	fs := flag.NewFlagSet("receipt show", flag.ContinueOnError)
	co.bind(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	name, err := oneName(pos, "receipt show")
	if err != nil {
		return err
	}
	c, ns, err := co.client()
	if err != nil {
		return err
	}
	dr, err := getDeletion(ctx, c, ns, name)
	if err != nil {
		return err
	}
	data, sig, err := receiptOf(ctx, c, dr)
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, data, "", "  "); err != nil {
		return fmt.Errorf("the receipt is not JSON: %w", err)
	}
	fmt.Fprintln(stdout, pretty.String())
	fmt.Fprintf(stdout, "signature (Ed25519, base64): %s\nkey id: %s\nreceipt.json digest: %s\n(shown, not verified: kubectl dsr receipt verify %s)\n",
		strings.TrimSpace(string(sig)), dr.Status.Receipt.KeyID, receipt.Digest(data), dr.Name)
	return nil
}

func runReceiptVerify(ctx context.Context, args []string, stdout io.Writer) error {
	var co common
	var file, sigFile, keyFile string
	fs := flag.NewFlagSet("receipt verify", flag.ContinueOnError)
	co.bind(fs)
	fs.StringVar(&file, "file", "", "receipt.json, for offline verification")
	fs.StringVar(&sigFile, "signature", "", "receipt.sig (base64), for offline verification")
	fs.StringVar(&keyFile, "public-key", "", "the operator's public key (PEM); default: the published ConfigMap")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var pubPEM []byte
	keySource := keyFile
	if keyFile != "" {
		if pubPEM, err = os.ReadFile(keyFile); err != nil {
			return &ExitError{Code: 1, Msg: fmt.Sprintf("reading the public key: %v", err)}
		}
	}
	if file != "" || sigFile != "" {
		return verifyOffline(file, sigFile, keyFile, pubPEM, pos, stdout)
	}
	name, err := oneName(pos, "receipt verify")
	if err != nil {
		return err
	}
	c, ns, err := co.client()
	if err != nil {
		return err
	}
	dr, err := getDeletion(ctx, c, ns, name)
	if err != nil {
		return err
	}
	data, sig, err := receiptOf(ctx, c, dr)
	if err != nil {
		return err
	}
	if pubPEM == nil {
		var cm corev1.ConfigMap
		keySource = fmt.Sprintf("ConfigMap %s/%s", co.operatorNamespace, receipt.PublicKeyConfigMapName)
		if err := c.Get(ctx, client.ObjectKey{Namespace: co.operatorNamespace, Name: receipt.PublicKeyConfigMapName}, &cm); err != nil {
			return fmt.Errorf("the operator's public key %s (is --operator-namespace right?): %w", keySource, err)
		}
		pubPEM = []byte(cm.Data[receipt.KeyPEM])
	}
	pub, err := receipt.ParsePublicKey(pubPEM)
	if err != nil {
		return notVerified("the public key from %s: %v", keySource, err)
	}
	rc, err := receipt.Verify(data, sig, pub)
	if err != nil {
		return notVerified("%v (receipt ConfigMap %s/%s, public key %s from %s)", err, dr.Namespace, dr.Status.Receipt.ConfigMapName, receipt.KeyID(pub), keySource)
	}
	if err := matchRequest(dr, data, sig, rc); err != nil {
		return err
	}
	var erased, masked, retained int64
	for _, s := range rc.Stores {
		erased, masked, retained = erased+s.Erased, masked+s.Masked, retained+s.Retained
	}
	fmt.Fprintf(stdout, "receipt verified: DeletionRequest %s/%s (uid %s), subject %s, %d stores, %d erased, %d masked, %d retained, 0 remaining; completed %s; signed by key %s\n",
		dr.Namespace, dr.Name, dr.UID, rc.SubjectDigest, len(rc.Stores), erased, masked, retained, rc.CompletedAt.Format(time.RFC3339), rc.KeyID)
	if meta.IsStatusConditionFalse(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) {
		fmt.Fprintf(stdout, "note: the receipt was true when issued, but a later verification found data again: %s\n",
			meta.FindStatusCondition(dr.Status.Conditions, privacyv1alpha1.ConditionVerified).Message)
	}
	return nil
}

func notVerified(format string, a ...any) error {
	return &ExitError{Code: 1, Msg: "receipt NOT verified: " + fmt.Sprintf(format, a...)}
}

// matchRequest checks that a receipt whose signature is good is the one the request points at and
// is about this very request: a validly signed receipt of another request (or of an earlier
// request of the same name) must not pass.
func matchRequest(dr *privacyv1alpha1.DeletionRequest, data, sig []byte, rc *receipt.Receipt) error {
	ref := dr.Status.Receipt
	if got := receipt.Digest(data); got != ref.SHA256 {
		return notVerified("the receipt's digest %s differs from status.receipt.sha256 %s", got, ref.SHA256)
	}
	if strings.TrimSpace(string(sig)) != ref.Signature {
		return notVerified("the receipt ConfigMap's signature differs from status.receipt.signature")
	}
	if rc.KeyID != ref.KeyID {
		return notVerified("the receipt was signed by key %s but status.receipt.keyID is %s", rc.KeyID, ref.KeyID)
	}
	r := rc.Request
	if r.Kind != "DeletionRequest" || r.APIVersion != privacyv1alpha1.GroupVersion.String() {
		return notVerified("the receipt is for a %s %s, not for a DeletionRequest %s", r.APIVersion, r.Kind, privacyv1alpha1.GroupVersion)
	}
	if r.Namespace != dr.Namespace || r.Name != dr.Name {
		return notVerified("the receipt is for %s/%s, not for this request %s/%s", r.Namespace, r.Name, dr.Namespace, dr.Name)
	}
	if r.UID != string(dr.UID) {
		return notVerified("the receipt is for uid %s, not for this request's uid %s (an earlier request of the same name?)", r.UID, dr.UID)
	}
	if rc.SubjectDigest != dr.Status.SubjectDigest {
		return notVerified("the receipt's subject digest %s differs from status.subjectDigest %s", rc.SubjectDigest, orDash(dr.Status.SubjectDigest))
	}
	for _, s := range rc.Stores {
		if s.Remaining != 0 {
			return notVerified("store %s %s reports %d remaining records", s.Kind, s.Name, s.Remaining)
		}
	}
	return nil
}

// verifyOffline checks files only: the signature, and what the receipt says about itself.
func verifyOffline(file, sigFile, keyFile string, pubPEM []byte, pos []string, stdout io.Writer) error {
	if file == "" || sigFile == "" || keyFile == "" {
		return &ExitError{Code: 2, Msg: "offline verification needs --file, --signature and --public-key"}
	}
	if len(pos) > 0 {
		return &ExitError{Code: 2, Msg: "offline verification takes no request NAME: it checks the files only"}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("reading the receipt: %v", err)}
	}
	sig, err := os.ReadFile(sigFile)
	if err != nil {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("reading the signature: %v", err)}
	}
	pub, err := receipt.ParsePublicKey(pubPEM)
	if err != nil {
		return notVerified("the public key %s: %v", keyFile, err)
	}
	rc, err := receipt.Verify(data, sig, pub)
	if err != nil {
		return notVerified("%v (public key %s from %s)", err, receipt.KeyID(pub), keyFile)
	}
	for _, s := range rc.Stores {
		if s.Remaining != 0 {
			return notVerified("store %s %s reports %d remaining records", s.Kind, s.Name, s.Remaining)
		}
	}
	fmt.Fprintf(stdout, "receipt verified: %s %s/%s (uid %s), subject %s, %d stores, completed %s, signed by key %s, %s\n",
		rc.Request.Kind, rc.Request.Namespace, rc.Request.Name, rc.Request.UID, rc.SubjectDigest, len(rc.Stores), rc.CompletedAt.Format(time.RFC3339), rc.KeyID, receipt.Digest(data))
	fmt.Fprintln(stdout, "offline: compare request.uid and subjectDigest with the request yourself")
	return nil
}

func runFile(ctx context.Context, args []string, stdout io.Writer, deletion bool) error {
	var co common
	var email, userID, phone, regulation, receivedAt, name string
	var dryRun bool
	ids := &identifierFlags{ids: map[string]string{}}
	cmd := "access"
	if deletion {
		cmd = "erase"
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	co.bind(fs)
	fs.StringVar(&email, "email", "", "the person's email address")
	fs.StringVar(&userID, "user-id", "", "the person's user id (identifier userId)")
	fs.StringVar(&phone, "phone", "", "the person's phone number")
	fs.Var(ids, "identifier", "another identifier, name=value (repeatable)")
	fs.StringVar(&regulation, "regulation", "GDPR", "GDPR, UK-GDPR, CCPA, CPRA, LGPD or PIPEDA")
	fs.StringVar(&receivedAt, "received-at", "", "when the person asked (RFC 3339); default: now")
	fs.StringVar(&name, "name", "", "the request's name (default: generated)")
	if deletion {
		fs.BoolVar(&dryRun, "dry-run-request", false, "file a dry-run request: report what would be erased, change nothing")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		// Not quoted: a stray argument is likely an identifier whose flag was mistyped.
		return &ExitError{Code: 2, Msg: fmt.Sprintf("%s takes no positional arguments (got %d); every identifier goes with its flag", cmd, len(pos))}
	}
	ids.add("email", email, "email")
	ids.add("userId", userID, "user-id")
	ids.add("phone", phone, "phone")
	if len(ids.problems) > 0 {
		return &ExitError{Code: 2, Msg: strings.Join(ids.problems, "\n")}
	}
	if len(ids.ids) == 0 {
		return &ExitError{Code: 2, Msg: cmd + " needs at least one identifier: --email, --user-id, --phone or --identifier name=value"}
	}
	// The operator's own rules, checked before anything is created: a request it would refuse
	// should not leave the person's identifiers behind in a Secret.
	data := make(map[string][]byte, len(ids.ids))
	for k, v := range ids.ids {
		data[k] = []byte(v)
	}
	if _, err := subject.FromSecretData("(new)", data); err != nil {
		return &ExitError{Code: 2, Msg: err.Error()}
	}
	common := privacyv1alpha1.RequestSpecCommon{Regulation: privacyv1alpha1.Regulation(regulation)}
	if receivedAt != "" {
		t, err := time.Parse(time.RFC3339, receivedAt)
		if err != nil {
			return &ExitError{Code: 2, Msg: "--received-at must be RFC 3339, e.g. 2026-11-01T09:30:00Z"}
		}
		common.ReceivedAt = &metav1.Time{Time: t}
	}
	c, ns, err := co.client()
	if err != nil {
		return err
	}
	prefix, secretPrefix := "erase-", "dr-subject-"
	if !deletion {
		prefix, secretPrefix = "access-", "ar-subject-"
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: secretPrefix,
		Labels: map[string]string{"app.kubernetes.io/created-by": "kubectl-dsr"}}, Type: corev1.SecretTypeOpaque, Data: data}
	if err := c.Create(ctx, secret); err != nil {
		return fmt.Errorf("creating the identifiers Secret: %w", err)
	}
	common.Subject.IdentifiersSecretRef.Name = secret.Name
	om := metav1.ObjectMeta{Namespace: ns, Name: name}
	if name == "" {
		om.GenerateName = prefix
	}
	var req client.Object
	if deletion {
		req = &privacyv1alpha1.DeletionRequest{ObjectMeta: om, Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: common, DryRun: dryRun}}
	} else {
		req = &privacyv1alpha1.AccessRequest{ObjectMeta: om, Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: common}}
	}
	if err := c.Create(ctx, req); err != nil {
		// Do not leave the person's identifiers behind without a request. A cancelled ctx must
		// not stop this clean-up.
		if derr := c.Delete(context.WithoutCancel(ctx), secret); derr != nil && !apierrors.IsNotFound(derr) {
			return fmt.Errorf("creating the request: %w; and the identifiers Secret %s/%s could not be deleted (%v): delete it yourself", err, ns, secret.Name, derr)
		}
		return fmt.Errorf("creating the request: %w", err)
	}
	// The Secret goes when the request goes.
	gvk, err := c.GroupVersionKindFor(req)
	if err != nil {
		return err
	}
	before := secret.DeepCopy()
	secret.OwnerReferences = []metav1.OwnerReference{{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: req.GetName(), UID: req.GetUID()}}
	if err := c.Patch(ctx, secret, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("%s/%s was created, but making it own its identifiers Secret %s failed, so the Secret will outlive it unless the operator deletes it: %w",
			strings.ToLower(gvk.Kind), req.GetName(), secret.Name, err)
	}
	fmt.Fprintf(stdout, "%s/%s created (identifiers in Secret %s)\n", strings.ToLower(gvk.Kind), req.GetName(), secret.Name)
	return nil
}

func runExport(ctx context.Context, args []string, stdout io.Writer) error {
	var co common
	var out string
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	co.bind(fs)
	fs.StringVar(&out, "o", "", "write to this file (default: stdout)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	name, err := oneName(pos, "export")
	if err != nil {
		return err
	}
	c, ns, err := co.client()
	if err != nil {
		return err
	}
	var ar privacyv1alpha1.AccessRequest
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ar); err != nil {
		return err
	}
	ref := ar.Status.Export
	if ref == nil {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("AccessRequest %s/%s has no export (phase %s)", ns, name, ar.Status.Phase)}
	}
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.SecretName}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return &ExitError{Code: 1, Msg: fmt.Sprintf("the export Secret %s is gone (expired %s)", ref.SecretName, stamp(ref.ExpiresAt))}
		}
		return err
	}
	data := s.Data[ref.Key]
	if receipt.Digest(data) != ref.SHA256 {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("the export's digest %s differs from status.export.sha256 %s", receipt.Digest(data), ref.SHA256)}
	}
	if ref.Encoding == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return err
		}
		if data, err = io.ReadAll(zr); err != nil {
			return err
		}
	}
	return writeFileOrStdout(out, data, stdout)
}
