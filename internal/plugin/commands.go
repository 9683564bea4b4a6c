package plugin

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

func newStatus(o *options, stdout io.Writer) *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "List the requests of a namespace, or show one store by store",
		Long: `Without NAME, lists the DeletionRequests and AccessRequests of the namespace. With NAME, shows
that request store by store: what was erased, masked, retained (and why) and what remains, the
conditions, and where its receipt or export is. NAME is looked up as a DeletionRequest, then as an
AccessRequest; --kind chooses.`,
		Example: `  kubectl dsr status -n shop
  kubectl dsr status erase-jane -n shop
  kubectl dsr status copy-jane --kind access -n shop`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErr(cmd, "status takes at most one request NAME (got %d arguments)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch strings.ToLower(kind) {
			case "":
			case "deletion", "deletionrequest", "deletionrequests", "dr":
				kind = "deletion"
			case "access", "accessrequest", "accessrequests", "ar":
				kind = "access"
			default:
				return usageErr(cmd, "--kind must be deletion or access, not %q", kind)
			}
			return runStatus(cmd.Context(), o, kind, args, stdout)
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "deletion or access (default: a DeletionRequest of that name, else an AccessRequest)")
	return cmd
}

func runStatus(ctx context.Context, o *options, kind string, args []string, stdout io.Writer) error {
	c, ns, err := o.client()
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return listRequests(ctx, c, ns, stdout)
	}
	name := args[0]
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
			return &ExitError{Code: exitFailed, Msg: fmt.Sprintf("no DeletionRequest %q in namespace %q", name, ns)}
		}
	}
	var ar privacyv1alpha1.AccessRequest
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ar); err != nil {
		if apierrors.IsNotFound(err) {
			if kind == "access" {
				return &ExitError{Code: exitFailed, Msg: fmt.Sprintf("no AccessRequest %q in namespace %q", name, ns)}
			}
			return &ExitError{Code: exitFailed, Msg: fmt.Sprintf("no DeletionRequest or AccessRequest %q in namespace %q", name, ns)}
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
	printDerived(w, dr.Name, deletionProgress(st.Stores))
	printLocations(w, st.Stores)
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
	printDerived(w, ar.Name, accessProgress(st.Stores))
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
