package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/subject"
)

// secretSuffix: the identifiers Secret of request N is N-identifiers-xxxxx.
const secretSuffix = "-identifiers-"

// fileRequest is what erase and access were asked to file.
type fileRequest struct {
	deletion   bool
	ids        identifiers
	regulation string
	receivedAt string
	name       string
	dryRun     bool
}

// newFile builds erase (deletion) or access.
func newFile(o *options, stdout io.Writer, deletion bool) *cobra.Command {
	f := &fileRequest{deletion: deletion, ids: identifiers{ids: map[string]string{}}}
	cmd := &cobra.Command{
		Use:   "erase --email E [--user-id U] [--phone P] [--identifier name=value]...",
		Short: "File a DeletionRequest with its identifiers Secret",
		Long: `Files a DeletionRequest: creates a Secret holding the person's identifiers (keys email, userId,
phone and any --identifier name), then the request referencing it, then makes the request own the
Secret so that it goes when the request goes. Prints the request's name; never the identifiers.
The identifiers are checked as the operator checks them before anything is created.`,
		Example: `  kubectl dsr erase --email jane@example.com --user-id 4242 -n shop
  kubectl dsr erase --email jane@example.com --identifier crmId=C-991 --regulation CCPA \
      --received-at 2026-11-01T09:30:00Z --name erase-jane --dry-run-request -n shop`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				// Not quoted: a stray argument is likely an identifier whose flag was mistyped.
				return usageErr(cmd, "%s takes no positional arguments (got %d); every identifier goes with its flag", cmd.Name(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd, o, stdout) },
	}
	if !deletion {
		cmd.Use = "access --email E [--user-id U] [--phone P] [--identifier name=value]..."
		cmd.Short = "File an AccessRequest with its identifiers Secret"
		cmd.Long = strings.Replace(cmd.Long, "Files a DeletionRequest", "Files an AccessRequest", 1)
		cmd.Example = `  kubectl dsr access --email jane@example.com -n shop
  kubectl dsr export <printed name> -n shop -o jane.json   # once it is Completed`
	}
	fl := cmd.Flags()
	fl.Var(wellKnown{&f.ids, "email", "email"}, "email", "the person's email address (identifier email)")
	fl.Var(wellKnown{&f.ids, "userId", "user-id"}, "user-id", "the person's user id (identifier userId)")
	fl.Var(wellKnown{&f.ids, "phone", "phone"}, "phone", "the person's phone number (identifier phone)")
	fl.Var(named{&f.ids}, "identifier", "another identifier, name=value, as the stores' mappings name it (repeatable)")
	fl.StringVar(&f.regulation, "regulation", string(privacyv1alpha1.RegulationGDPR), "GDPR, UK-GDPR, CCPA, CPRA, LGPD or PIPEDA")
	fl.StringVar(&f.receivedAt, "received-at", "", "when the person asked (RFC 3339); the deadline counts from it (default: now)")
	fl.StringVar(&f.name, "name", "", "the request's name (default: generated)")
	if deletion {
		fl.BoolVar(&f.dryRun, "dry-run-request", false, "file a dry-run request: report what would be erased, change nothing")
	}
	return cmd
}

func (f *fileRequest) run(cmd *cobra.Command, o *options, stdout io.Writer) error {
	if len(f.ids.problems) > 0 {
		return usageErr(cmd, "%s", strings.Join(f.ids.problems, "\n"))
	}
	if len(f.ids.ids) == 0 {
		return usageErr(cmd, "%s needs at least one identifier: --email, --user-id, --phone or --identifier name=value", cmd.Name())
	}
	// The operator's own rules, checked before anything is created: a request it would refuse
	// should not leave the person's identifiers behind in a Secret. Its messages name keys, never values.
	data := make(map[string][]byte, len(f.ids.ids))
	for k, v := range f.ids.ids {
		data[k] = []byte(v)
	}
	if _, err := subject.FromSecretData("(new)", data); err != nil {
		return usageErr(cmd, "%v", err)
	}
	spec := privacyv1alpha1.RequestSpecCommon{Regulation: privacyv1alpha1.Regulation(f.regulation)}
	if f.receivedAt != "" {
		t, err := time.Parse(time.RFC3339, f.receivedAt)
		if err != nil {
			return usageErr(cmd, "--received-at must be RFC 3339, e.g. 2026-11-01T09:30:00Z")
		}
		spec.ReceivedAt = &metav1.Time{Time: t}
	}
	c, ns, err := o.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	prefix := "access-"
	if f.deletion {
		prefix = "erase-"
	}
	// The request's name is chosen here rather than by the API server because the Secret, created
	// first, is named after it and the request's spec (which names the Secret) is immutable.
	for attempt := 1; ; attempt++ {
		name := f.name
		if name == "" {
			name = prefix + utilrand.String(5)
		}
		req, secret, err := f.create(ctx, c, ns, name, spec, data)
		if apierrors.IsAlreadyExists(err) && f.name == "" && attempt < 5 {
			continue
		}
		if err != nil {
			return err
		}
		kind := "accessrequest"
		if f.deletion {
			kind = "deletionrequest"
		}
		fmt.Fprintf(stdout, "%s/%s created (identifiers in Secret %s)\n", kind, req.GetName(), secret.Name)
		return nil
	}
}

// create files the Secret, the request and the Secret's owner reference. A request that cannot be
// created takes its Secret with it.
func (f *fileRequest) create(ctx context.Context, c client.Client, ns, name string, spec privacyv1alpha1.RequestSpecCommon,
	data map[string][]byte) (client.Object, *corev1.Secret, error) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: name + secretSuffix,
		Labels: map[string]string{"app.kubernetes.io/created-by": "kubectl-dsr",
			privacyv1alpha1.SecretTypeLabel: privacyv1alpha1.SecretTypeIdentifiers}}, Type: corev1.SecretTypeOpaque, Data: data}
	if err := c.Create(ctx, secret); err != nil {
		return nil, nil, fmt.Errorf("creating the identifiers Secret in namespace %s: %w", ns, err)
	}
	spec.Subject.IdentifiersSecretRef.Name = secret.Name
	om := metav1.ObjectMeta{Namespace: ns, Name: name}
	var req client.Object
	if f.deletion {
		req = &privacyv1alpha1.DeletionRequest{ObjectMeta: om, Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: spec, DryRun: f.dryRun}}
	} else {
		req = &privacyv1alpha1.AccessRequest{ObjectMeta: om, Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: spec}}
	}
	if err := c.Create(ctx, req); err != nil {
		// Do not leave the person's identifiers behind without a request. A cancelled ctx must
		// not stop this clean-up.
		if derr := c.Delete(context.WithoutCancel(ctx), secret); derr != nil && !apierrors.IsNotFound(derr) {
			return nil, nil, fmt.Errorf("creating the request: %w; and the identifiers Secret %s/%s could not be deleted (%v): delete it yourself", err, ns, secret.Name, derr)
		}
		return nil, nil, fmt.Errorf("creating the request: %w", err)
	}
	// The Secret goes when the request goes.
	gvk, err := c.GroupVersionKindFor(req)
	if err != nil {
		return nil, nil, err
	}
	before := secret.DeepCopy()
	secret.OwnerReferences = []metav1.OwnerReference{{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: req.GetName(), UID: req.GetUID()}}
	if err := c.Patch(ctx, secret, client.MergeFrom(before)); err != nil {
		return nil, nil, fmt.Errorf("%s/%s was created, but making it own its identifiers Secret %s failed, so the Secret will outlive it unless the operator deletes it: %w",
			strings.ToLower(gvk.Kind), req.GetName(), secret.Name, err)
	}
	return req, secret, nil
}
