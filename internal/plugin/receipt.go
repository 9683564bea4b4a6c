package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

// receiptOf fetches a request's receipt ConfigMap.
func receiptOf(ctx context.Context, c client.Client, dr *privacyv1alpha1.DeletionRequest) ([]byte, []byte, error) {
	if dr.Status.Receipt == nil {
		return nil, nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("DeletionRequest %s/%s has no receipt (phase %s): a receipt is issued when the erasure is verified",
			dr.Namespace, dr.Name, orDash(string(dr.Status.Phase)))}
	}
	return receiptConfigMap(ctx, c, dr.Namespace, dr.Status.Receipt.ConfigMapName)
}

func newReceiptShow(o *options, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Print a deletion request's receipt, its signature and key id (checks nothing)",
		Long: `Prints the receipt of a DeletionRequest indented for reading, with its signature, the key id and
the SHA-256 of the stored bytes. It checks nothing: use 'kubectl dsr receipt verify'. The signature
covers the stored bytes, not the indented ones shown here.`,
		Example: "  kubectl dsr receipt show erase-jane -n shop",
		Args:    exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			dr, err := getDeletion(ctx, c, ns, args[0])
			if err != nil {
				return err
			}
			data, sig, err := receiptOf(ctx, c, dr)
			if err != nil {
				return err
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, data, "", "  "); err != nil {
				return &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the receipt in ConfigMap %s/%s is not JSON: %v", ns, dr.Status.Receipt.ConfigMapName, err)}
			}
			fmt.Fprintln(stdout, pretty.String())
			fmt.Fprintf(stdout, "signature (Ed25519, base64): %s\nkey id: %s\nreceipt.json digest: %s\n(shown, not verified: kubectl dsr receipt verify %s)\n",
				strings.TrimSpace(string(sig)), dr.Status.Receipt.KeyID, receipt.Digest(data), dr.Name)
			return nil
		},
	}
}

func newReceiptVerify(o *options, stdout io.Writer) *cobra.Command {
	var file, sigFile, keyFile string
	cmd := &cobra.Command{
		Use:   "verify NAME | verify --file receipt.json --signature receipt.sig --public-key pub.pem",
		Short: "Check a receipt's signature and that it belongs to the request",
		Long: `With NAME, fetches the DeletionRequest, its receipt ConfigMap (status.receipt.configMapName) and
the operator's public key (ConfigMap dsr-operator-receipt-public-key in --operator-namespace, or
--public-key FILE: your own trusted copy, a PEM key or the key set keys.json), then checks:

  1. the Ed25519 signature of receipt.json with that key;
  2. that the SHA-256 of receipt.json equals status.receipt.sha256;
  3. that receipt.sig equals status.receipt.signature;
  4. that the receipt's keyID equals status.receipt.keyID;
  5. that the receipt names this request: kind, namespace, name and UID;
  6. that its subjectDigest equals status.subjectDigest;
  7. that every store shows 0 remaining.

When the DeletionRequest was deleted, its receipt ConfigMap NAME-receipt is kept for the
operator's records period (24 months by default): verify then checks the signature (1), that the
receipt names a DeletionRequest of this namespace and NAME, and that every store shows 0
remaining; compare request.uid and subjectDigest with your records of the request.

The published ConfigMap keeps every key the operator signed with (keys.json, each with the period
it was used), so receipts signed before a key rotation still verify; export it for offline use
with: kubectl get configmap dsr-operator-receipt-public-key -n dsr-system -o jsonpath='{.data.keys\.json}'

With --file, --signature and --public-key it needs no cluster: it checks the signature, the
receipt's version and key id, and that nothing remains; compare request.uid and subjectDigest with
the request yourself.

Exits 0 with "receipt verified: ..." or 1 with "receipt NOT verified: " and what does not match.`,
		Example: `  kubectl dsr receipt verify erase-jane -n shop --public-key trusted.pem
  kubectl dsr receipt verify --file receipt.json --signature receipt.sig --public-key trusted.pem`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" || sigFile != "" {
				if file == "" || sigFile == "" || keyFile == "" {
					return usageErr(cmd, "offline verification needs --file, --signature and --public-key")
				}
				if len(args) > 0 {
					return usageErr(cmd, "offline verification takes no request NAME: it checks the files only")
				}
				return verifyOffline(file, sigFile, keyFile, stdout)
			}
			if err := exactName(cmd, args); err != nil {
				return err
			}
			return verifyOnline(cmd.Context(), o, args[0], keyFile, stdout)
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "receipt.json, for offline verification")
	cmd.Flags().StringVar(&sigFile, "signature", "", "receipt.sig (base64), for offline verification")
	cmd.Flags().StringVar(&keyFile, "public-key", "", "the operator's public key (PEM) or key set (keys.json); default: the published ConfigMap")
	return cmd
}

func verifyOnline(ctx context.Context, o *options, name, keyFile string, stdout io.Writer) error {
	var pubPEM []byte
	keySource := keyFile
	if keyFile != "" {
		var err error
		if pubPEM, err = os.ReadFile(keyFile); err != nil {
			return &ExitError{Code: exitFailed, Msg: fmt.Sprintf("reading the public key: %v", err)}
		}
	}
	c, ns, err := o.client()
	if err != nil {
		return err
	}
	// A receipt outlives its request for the operator's records period: with the request gone,
	// the receipt ConfigMap of its name is checked on its own.
	dr, err := getDeletion(ctx, c, ns, name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	var data, sig []byte
	cmName := receipt.ConfigMapName(name)
	if dr != nil {
		if data, sig, err = receiptOf(ctx, c, dr); err == nil {
			cmName = dr.Status.Receipt.ConfigMapName
		}
	} else {
		data, sig, err = receiptConfigMap(ctx, c, ns, cmName)
		if apierrors.IsNotFound(err) {
			return &ExitError{Code: exitFailed, Msg: fmt.Sprintf("receipt NOT verified: neither DeletionRequest %s/%s nor its receipt ConfigMap %s exists (a receipt is deleted at the end of the operator's records period)", ns, name, cmName)}
		}
	}
	if err != nil {
		return err
	}
	if pubPEM == nil {
		var cm corev1.ConfigMap
		keySource = fmt.Sprintf("ConfigMap %s/%s", o.operatorNamespace, receipt.PublicKeyConfigMapName)
		if err := c.Get(ctx, client.ObjectKey{Namespace: o.operatorNamespace, Name: receipt.PublicKeyConfigMapName}, &cm); err != nil {
			return fmt.Errorf("the operator's public key %s (is --operator-namespace right?): %w", keySource, err)
		}
		// Every key the operator ever signed with, so that receipts from before a rotation verify.
		pubPEM = []byte(cm.Data[receipt.KeySetKey])
		if len(pubPEM) == 0 {
			pubPEM = []byte(cm.Data[receipt.KeyPEM])
		}
	}
	rc, err := verifyWith(data, sig, pubPEM, keySource)
	if err != nil {
		return notVerified("%v (receipt ConfigMap %s/%s)", err, ns, cmName)
	}
	if dr == nil {
		return verifiedWithoutRequest(ns, name, rc, stdout)
	}
	if err := matchRequest(dr, data, sig, rc); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "receipt verified: DeletionRequest %s/%s (uid %s), subject %s, %d stores, %s; completed %s; signed by key %s\n",
		dr.Namespace, dr.Name, dr.UID, rc.SubjectDigest, len(rc.Stores), receiptTotals(rc), rc.CompletedAt.UTC().Format(time.RFC3339), rc.KeyID)
	printLinkedFindings(stdout, rc)
	if meta.IsStatusConditionFalse(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) {
		fmt.Fprintf(stdout, "note: the receipt was true when issued, but a later verification found data again: %s\n",
			meta.FindStatusCondition(dr.Status.Conditions, privacyv1alpha1.ConditionVerified).Message)
	}
	return nil
}

// receiptConfigMap reads a receipt ConfigMap by name.
func receiptConfigMap(ctx context.Context, c client.Client, ns, name string) ([]byte, []byte, error) {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
		return nil, nil, fmt.Errorf("receipt ConfigMap %s/%s: %w", ns, name, err)
	}
	for _, k := range []string{receipt.DataKey, receipt.SignatureKey} {
		if cm.Data[k] == "" {
			return nil, nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("receipt NOT verified: receipt ConfigMap %s/%s has no %s", ns, name, k)}
		}
	}
	return []byte(cm.Data[receipt.DataKey]), []byte(cm.Data[receipt.SignatureKey]), nil
}

// verifiedWithoutRequest finishes the check of a receipt whose signature is good and whose request
// was deleted: with no status to compare, it checks that the receipt names a DeletionRequest of
// this namespace and name and that nothing remained.
func verifiedWithoutRequest(ns, name string, rc *receipt.Receipt, stdout io.Writer) error {
	r := rc.Request
	if r.Kind != "DeletionRequest" || r.APIVersion != privacyv1alpha1.GroupVersion.String() {
		return notVerified("the receipt is for a %s %s, not for a DeletionRequest %s", r.APIVersion, r.Kind, privacyv1alpha1.GroupVersion)
	}
	if r.Namespace != ns || r.Name != name {
		return notVerified("the receipt is for %s/%s, not for %s/%s", r.Namespace, r.Name, ns, name)
	}
	if err := noneRemaining(rc); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "receipt verified: DeletionRequest %s/%s (uid %s, request deleted), subject %s, %d stores, 0 remaining; completed %s; signed by key %s\n",
		ns, name, r.UID, rc.SubjectDigest, len(rc.Stores), rc.CompletedAt.UTC().Format(time.RFC3339), rc.KeyID)
	printLinkedFindings(stdout, rc)
	fmt.Fprintln(stdout, "note: the request is gone, so the receipt was checked on its own: compare request.uid and subjectDigest with your records of the request")
	return nil
}

func notVerified(format string, a ...any) error {
	return &ExitError{Code: exitFailed, Msg: "receipt NOT verified: " + fmt.Sprintf(format, a...)}
}

// matchRequest checks that a receipt whose signature is good is the one the request points at and
// is about this very request: a validly signed receipt of another request (or of an earlier
// request of the same name) must not pass.
func matchRequest(dr *privacyv1alpha1.DeletionRequest, data, sig []byte, rc *receipt.Receipt) error {
	ref := dr.Status.Receipt
	if got := receipt.Digest(data); got != ref.SHA256 {
		return notVerified("the receipt's digest %s differs from status.receipt.sha256 %s", got, orDash(ref.SHA256))
	}
	if strings.TrimSpace(string(sig)) != ref.Signature {
		return notVerified("the receipt ConfigMap's signature differs from status.receipt.signature")
	}
	if rc.KeyID != ref.KeyID {
		return notVerified("the receipt was signed by key %s but status.receipt.keyID is %s", rc.KeyID, orDash(ref.KeyID))
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
	return noneRemaining(rc)
}

// receiptTotals sums the receipt's stores: erased, masked, retained, shared and unmapped (the
// last two only when some store has them), and 0 remaining.
func receiptTotals(rc *receipt.Receipt) string {
	var erased, masked, retained, shared, unmapped int64
	for _, s := range rc.Stores {
		erased, masked, retained = erased+s.Erased, masked+s.Masked, retained+s.Retained
		shared, unmapped = shared+s.Shared, unmapped+s.Unmapped
	}
	out := fmt.Sprintf("%d erased, %d masked, %d retained", erased, masked, retained)
	if shared > 0 {
		out += fmt.Sprintf(", %d shared", shared)
	}
	if unmapped > 0 {
		out += fmt.Sprintf(", %d unmapped", unmapped)
	}
	return out + ", 0 remaining"
}

// printLinkedFindings lists, per store, the shared records left untouched and the unmapped
// copies a deep verification found, by location: what an auditor must look at beyond the counts.
func printLinkedFindings(w io.Writer, rc *receipt.Receipt) {
	where := func(locs []receipt.LocationCount) string {
		parts := make([]string, len(locs))
		for i, l := range locs {
			parts[i] = fmt.Sprintf("%s %d", l.Location, l.Records)
		}
		return strings.Join(parts, ", ")
	}
	for _, s := range rc.Stores {
		if s.Shared > 0 {
			fmt.Fprintf(w, "shared: %s %s left %d records untouched that are also someone else's (%s)\n", s.Kind, s.Name, s.Shared, where(s.SharedLocations))
		}
		if s.Unmapped > 0 {
			fmt.Fprintf(w, "unmapped: %s %s holds %d copies of the subject's identifiers outside its mapping (%s); the mapping does not erase them\n",
				s.Kind, s.Name, s.Unmapped, where(s.UnmappedLocations))
		}
	}
}

func noneRemaining(rc *receipt.Receipt) error {
	for _, s := range rc.Stores {
		if s.Remaining != 0 {
			return notVerified("store %s %s reports %d remaining records", s.Kind, s.Name, s.Remaining)
		}
	}
	return nil
}

// verifyOffline checks files only: the signature, and what the receipt says about itself.
func verifyOffline(file, sigFile, keyFile string, stdout io.Writer) error {
	read := func(what, path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("reading the %s: %v", what, err)}
		}
		return b, nil
	}
	data, err := read("receipt", file)
	if err != nil {
		return err
	}
	sig, err := read("signature", sigFile)
	if err != nil {
		return err
	}
	pubPEM, err := read("public key", keyFile)
	if err != nil {
		return err
	}
	rc, err := verifyWith(data, sig, pubPEM, keyFile)
	if err != nil {
		return notVerified("%v", err)
	}
	if err := noneRemaining(rc); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "receipt verified: %s %s/%s (uid %s), subject %s, %d stores, completed %s, signed by key %s, %s\n",
		rc.Request.Kind, rc.Request.Namespace, rc.Request.Name, rc.Request.UID, rc.SubjectDigest, len(rc.Stores),
		rc.CompletedAt.UTC().Format(time.RFC3339), rc.KeyID, receipt.Digest(data))
	printLinkedFindings(stdout, rc)
	fmt.Fprintln(stdout, "offline: compare request.uid and subjectDigest with the request yourself")
	return nil
}

// verifyWith verifies a receipt with keys: one PEM public key, or a key set (the public-key
// ConfigMap's keys.json, exported for offline use) from which the receipt's key id picks the key.
func verifyWith(data, sig, keys []byte, source string) (*receipt.Receipt, error) {
	if trimmed := bytes.TrimSpace(keys); len(trimmed) > 0 && trimmed[0] == '[' {
		ks, err := receipt.ParseKeySet(trimmed)
		if err != nil {
			return nil, fmt.Errorf("the key set from %s: %w", source, err)
		}
		rc, err := receipt.VerifyWithKeySet(data, sig, ks)
		if err != nil {
			return nil, fmt.Errorf("%w (key set from %s)", err, source)
		}
		return rc, nil
	}
	pub, err := receipt.ParsePublicKey(keys)
	if err != nil {
		return nil, fmt.Errorf("the public key from %s: %w", source, err)
	}
	rc, err := receipt.Verify(data, sig, pub)
	if err != nil {
		return nil, fmt.Errorf("%w (public key %s from %s)", err, receipt.KeyID(pub), source)
	}
	return rc, nil
}
