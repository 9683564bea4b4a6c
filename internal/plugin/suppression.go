package plugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// newSuppression is "kubectl dsr suppression status|report|add-drop" (docs/suppression.md).
func newSuppression(o *options, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "suppression",
		Short: "Show a SuppressionList or load a DROP download into its Secret",
		Args:  noSubcommand,
		RunE:  func(*cobra.Command, []string) error { return nil },
	}
	status := &cobra.Command{
		Use:     "status NAME",
		Short:   "Show a SuppressionList store by store",
		Example: "  kubectl dsr suppression status drop -n brokers",
		Args:    exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSuppressionStatus(cmd.Context(), o, args[0], stdout)
		},
	}
	var secretName string
	addDrop := &cobra.Command{
		Use:   "add-drop --secret NAME FILE...",
		Short: "Write a DROP download (email.csv, phone.csv, withdrawn.csv) into its Secret",
		Long: `Checks the files as the operator will (rows ID,Hash; withdrawn.csv rows ID) and writes them,
under their base names, into the Secret, labelled privacy.dsr.dev/secret-type=suppression-list.
A Secret of that name is replaced. Nothing is written when a file is refused.`,
		Example: "  kubectl dsr suppression add-drop --secret drop-download -n brokers email.csv phone.csv",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr(cmd, "add-drop needs at least one FILE")
			}
			if secretName == "" {
				return usageErr(cmd, "add-drop needs --secret NAME")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAddDrop(cmd.Context(), o, secretName, args, stdout)
		},
	}
	addDrop.Flags().StringVar(&secretName, "secret", "", "name of the download Secret the SuppressionList's spec.source.dropSecretRef names")
	var outFile string
	report := &cobra.Command{
		Use:   "report NAME [-o FILE]",
		Short: "Write a DROP list's status report (ID,Status), assembled from its Secrets",
		Long: `Reads the report Secret of the SuppressionList (status.reportSecretName) and, for a report split
into parts, every part its index names, checks each part's SHA-256 and item count and the whole
report's, and writes the CSV: the file to upload to DROP as the status report. Nothing is written
when a part is missing or does not match (a sweep rewriting the report meanwhile: run it again).`,
		Example: "  kubectl dsr suppression report drop -n brokers -o drop-status.csv",
		Args:    exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSuppressionReport(cmd.Context(), o, args[0], outFile, stdout)
		},
	}
	report.Flags().StringVarP(&outFile, "output", "o", "", "file to write the report to (default: standard output)")
	cmd.AddCommand(status, report, addDrop)
	return cmd
}

// getSuppressionList reads the list name of the options' namespace, with the client it used.
func getSuppressionList(ctx context.Context, o *options, name string) (client.Client, string, *privacyv1alpha1.SuppressionList, error) {
	c, ns, err := o.client()
	if err != nil {
		return nil, "", nil, err
	}
	var l privacyv1alpha1.SuppressionList
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &l); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("no SuppressionList %q in namespace %q", name, ns)}
		}
		return nil, "", nil, err
	}
	return c, ns, &l, nil
}

func runSuppressionStatus(ctx context.Context, o *options, name string, stdout io.Writer) error {
	c, ns, l, err := getSuppressionList(ctx, o, name)
	if err != nil {
		return err
	}
	source := "deletionRequests"
	if l.Spec.Source.DropSecretRef != nil {
		source = "DROP download Secret " + l.Spec.Source.DropSecretRef.Name
	}
	fmt.Fprintf(stdout, "SuppressionList %s/%s\nSource:     %s\nAction:     %s\nEntries:    %d\n", ns, name, source, l.Spec.Action, l.Status.Entries)
	fmt.Fprintf(stdout, "Sweeps:     %d (last %s, next %s)\n", l.Status.Sweeps, timeOrNever(l.Status.LastSweepTime), timeOrNever(l.Status.NextSweepTime))
	if l.Status.ReportSecretName != "" {
		fmt.Fprintf(stdout, "Report:     %s (kubectl dsr suppression report %s)\n", reportLocation(ctx, c, ns, l.Status.ReportSecretName), name)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSTORE\tTYPE\tSCANNED\tMATCHED\tERASED\tRETAINED\tMESSAGE")
	for _, st := range l.Status.Stores {
		fmt.Fprintf(tw, "%s %s\t%s\t%d\t%d\t%d\t%d\t%s\n", st.Kind, st.Name, st.Type, st.Scanned, st.Matched, st.Erased, st.Retained, st.Message)
	}
	_ = tw.Flush()
	for _, c := range l.Status.Conditions {
		fmt.Fprintf(stdout, "%s=%s (%s): %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	return nil
}

func timeOrNever(t *metav1.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func runAddDrop(ctx context.Context, o *options, secretName string, files []string, stdout io.Writer) error {
	data := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return &ExitError{Code: exitFailed, Msg: err.Error()}
		}
		data[filepath.Base(f)] = b
	}
	d, err := suppression.ParseDownload(data)
	if err != nil {
		return &ExitError{Code: exitFailed, Msg: "refused, nothing written: " + err.Error()}
	}
	c, ns, err := o.client()
	if err != nil {
		return err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secretName,
		Labels: map[string]string{privacyv1alpha1.SecretTypeLabel: privacyv1alpha1.SecretTypeSuppressionList}},
		Type: corev1.SecretTypeOpaque, Data: data}
	err = c.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		var existing corev1.Secret
		if err := c.Get(ctx, client.ObjectKeyFromObject(secret), &existing); err != nil {
			return err
		}
		existing.Data = data
		if existing.Labels == nil {
			existing.Labels = map[string]string{}
		}
		existing.Labels[privacyv1alpha1.SecretTypeLabel] = privacyv1alpha1.SecretTypeSuppressionList
		err = c.Update(ctx, &existing)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Secret %s/%s: %d items, %d withdrawn (%s)\n", ns, secretName, len(d.Items), len(d.Withdrawn), d.Digest)
	return nil
}
