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
		if !apierrors.IsNotFound(err) || kind == "deletion" {
			return err
		}
	}
	var ar privacyv1alpha1.AccessRequest
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ar); err != nil {
		if apierrors.IsNotFound(err) {
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
		fmt.Fprintf(tw, "%s\tDeletionRequest\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Name, d.Status.Phase, condStatus(d.Status.Conditions, privacyv1alpha1.ConditionVerified),
			condStatus(d.Status.Conditions, privacyv1alpha1.ConditionReady), len(d.Status.Stores), stamp(d.Status.Deadline), age(d.CreationTimestamp))
	}
	for _, a := range ars.Items {
		fmt.Fprintf(tw, "%s\tAccessRequest\t%s\t-\t%s\t%d\t%s\t%s\n", a.Name, a.Status.Phase,
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
	fmt.Fprintf(stdout, "signature (Ed25519, base64): %s\nkey id: %s\nsha256: %s\n", strings.TrimSpace(string(sig)), dr.Status.Receipt.KeyID, receipt.Digest(data))
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
	fail := func(format string, a ...any) error {
		return &ExitError{Code: 1, Msg: "receipt NOT verified: " + fmt.Sprintf(format, a...)}
	}
	var pubPEM []byte
	if keyFile != "" {
		if pubPEM, err = os.ReadFile(keyFile); err != nil {
			return err
		}
	}
	if file != "" {
		// Offline: no cluster, only the files.
		if sigFile == "" || keyFile == "" {
			return &ExitError{Code: 2, Msg: "offline verification needs --file, --signature and --public-key"}
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		sig, err := os.ReadFile(sigFile)
		if err != nil {
			return err
		}
		pub, err := receipt.ParsePublicKey(pubPEM)
		if err != nil {
			return fail("the public key: %v", err)
		}
		rc, err := receipt.Verify(data, sig, pub)
		if err != nil {
			return fail("%v", err)
		}
		fmt.Fprintf(stdout, "receipt verified: %s %s/%s (uid %s), %d stores, completed %s, signed by key %s\n",
			rc.Request.Kind, rc.Request.Namespace, rc.Request.Name, rc.Request.UID, len(rc.Stores), rc.CompletedAt.Format(time.RFC3339), rc.KeyID)
		return nil
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
		if err := c.Get(ctx, client.ObjectKey{Namespace: co.operatorNamespace, Name: receipt.PublicKeyConfigMapName}, &cm); err != nil {
			return fmt.Errorf("the operator's public key ConfigMap %s/%s: %w", co.operatorNamespace, receipt.PublicKeyConfigMapName, err)
		}
		pubPEM = []byte(cm.Data[receipt.KeyPEM])
	}
	pub, err := receipt.ParsePublicKey(pubPEM)
	if err != nil {
		return fail("the public key: %v", err)
	}
	rc, err := receipt.Verify(data, sig, pub)
	if err != nil {
		return fail("%v", err)
	}
	ref := dr.Status.Receipt
	switch {
	case receipt.Digest(data) != ref.SHA256:
		return fail("the receipt's digest %s differs from status.receipt.sha256 %s", receipt.Digest(data), ref.SHA256)
	case strings.TrimSpace(string(sig)) != ref.Signature:
		return fail("the ConfigMap's signature differs from status.receipt.signature")
	case rc.Request.Namespace != dr.Namespace || rc.Request.Name != dr.Name || rc.Request.UID != string(dr.UID):
		return fail("the receipt is for %s/%s (uid %s), not for this request (uid %s)", rc.Request.Namespace, rc.Request.Name, rc.Request.UID, dr.UID)
	case rc.SubjectDigest != dr.Status.SubjectDigest:
		return fail("the receipt's subject digest differs from the request's")
	case rc.KeyID != ref.KeyID:
		return fail("the receipt was signed by key %s but status names key %s", rc.KeyID, ref.KeyID)
	}
	for _, s := range rc.Stores {
		if s.Remaining != 0 {
			return fail("store %s %s reports %d remaining records", s.Kind, s.Name, s.Remaining)
		}
	}
	var erased, masked, retained int64
	for _, s := range rc.Stores {
		erased, masked, retained = erased+s.Erased, masked+s.Masked, retained+s.Retained
	}
	fmt.Fprintf(stdout, "receipt verified: DeletionRequest %s/%s (uid %s), %d stores, %d erased, %d masked, %d retained, 0 remaining; completed %s; signed by key %s\n",
		dr.Namespace, dr.Name, dr.UID, len(rc.Stores), erased, masked, retained, rc.CompletedAt.Format(time.RFC3339), rc.KeyID)
	if meta.IsStatusConditionFalse(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) {
		fmt.Fprintf(stdout, "note: the receipt was true when issued, but a later re-verification found data again: %s\n",
			meta.FindStatusCondition(dr.Status.Conditions, privacyv1alpha1.ConditionVerified).Message)
	}
	return nil
}

func runFile(ctx context.Context, args []string, stdout io.Writer, deletion bool) error {
	var co common
	var email, userID, phone, regulation, receivedAt, name string
	var dryRun bool
	ids := identifierFlags{}
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
		return &ExitError{Code: 2, Msg: fmt.Sprintf("%s takes no positional arguments (got %q)", cmd, pos[0])}
	}
	for k, v := range map[string]string{"email": email, "userId": userID, "phone": phone} {
		if v != "" {
			ids[k] = v
		}
	}
	if len(ids) == 0 {
		return &ExitError{Code: 2, Msg: cmd + " needs at least one identifier: --email, --user-id, --phone or --identifier name=value"}
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
	prefix := "erase-"
	if !deletion {
		prefix = "access-"
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: prefix + "subject-",
		Labels: map[string]string{"app.kubernetes.io/created-by": "kubectl-dsr"}}, StringData: ids}
	if err := c.Create(ctx, secret); err != nil {
		return fmt.Errorf("creating the identifiers Secret: %w", err)
	}
	common.Subject.IdentifiersSecretRef.Name = secret.Name
	meta := metav1.ObjectMeta{Namespace: ns, Name: name}
	if name == "" {
		meta.GenerateName = prefix
	}
	var req client.Object
	if deletion {
		req = &privacyv1alpha1.DeletionRequest{ObjectMeta: meta, Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: common, DryRun: dryRun}}
	} else {
		req = &privacyv1alpha1.AccessRequest{ObjectMeta: meta, Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: common}}
	}
	if err := c.Create(ctx, req); err != nil {
		// Do not leave the person's identifiers behind without a request.
		_ = c.Delete(context.Background(), secret)
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
		return fmt.Errorf("making the request own its identifiers Secret: %w", err)
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
