// Package plugin is kubectl-dsr, the kubectl plugin for auditors and operators of dsr-operator:
// per-store status of a request, receipt verification (online and offline), filing requests and
// fetching exports.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
)

// ExitError carries a command's exit code.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// Exit codes.
const (
	// exitFailed: a check failed or the cluster refused.
	exitFailed = 1
	// exitUsage: the command line is wrong.
	exitUsage = 2
)

// Main runs the plugin with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := NewCommand(stdout, stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Msg != "" {
			fmt.Fprintln(stderr, ee.Msg)
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "error:", err)
	return exitFailed
}

// options are the flags every command takes: kubectl's own (-n, --kubeconfig, --context and
// the rest of genericclioptions) and where the operator lives.
type options struct {
	config            *genericclioptions.ConfigFlags
	operatorNamespace string
	stderr            io.Writer
}

// client builds a client and resolves the namespace from the kubeconfig when -n is not given.
func (o *options) client() (client.Client, string, error) {
	cfg, err := o.config.ToRESTConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading kubeconfig: %w", err)
	}
	// As kubectl does; controller-runtime would send them to its logger, which a CLI does not set.
	cfg.WarningHandler = rest.NewWarningWriter(o.stderr, rest.WarningWriterOptions{Deduplicate: true})
	ns, _, err := o.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("resolving the namespace: %w", err)
	}
	cl, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		return nil, "", err
	}
	return cl, ns, nil
}

// usageErr is a wrong command line: exit 2, with where to read more.
func usageErr(cmd *cobra.Command, format string, a ...any) error {
	return &ExitError{Code: exitUsage, Msg: fmt.Sprintf(format, a...) + fmt.Sprintf("\nSee '%s --help'.", cmd.CommandPath())}
}

// flagError redacts pflag's errors: some quote the argument they choke on, and on erase and access
// that argument is likely a person's identifier (`-eann@example.com`, `--dry-run-request=...`).
func flagError(cmd *cobra.Command, err error) error {
	var (
		notExist *pflag.NotExistError
		required *pflag.ValueRequiredError
		invalid  *pflag.InvalidValueError
		syntax   *pflag.InvalidSyntaxError
		msg      string
	)
	switch {
	case errors.As(err, &notExist) && notExist.GetSpecifiedShortnames() != "":
		msg = fmt.Sprintf("unknown shorthand flag: -%c", []rune(notExist.GetSpecifiedName())[0])
	case errors.As(err, &notExist):
		// The name only: pflag cut any "=value" off.
		msg = "unknown flag: --" + notExist.GetSpecifiedName()
	case errors.As(err, &required):
		msg = "flag needs an argument: --" + required.GetFlag().Name
	case errors.As(err, &invalid):
		msg = "invalid value for flag --" + invalid.GetFlag().Name
	case errors.As(err, &syntax):
		msg = "bad flag syntax"
	default:
		msg = "invalid flags"
	}
	return usageErr(cmd, "%s", msg)
}

// exactName accepts one request NAME.
func exactName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageErr(cmd, "%s needs exactly one request NAME (got %d arguments)", cmd.CommandPath(), len(args))
	}
	return nil
}

// noSubcommand refuses a group command run on its own or with an unknown subcommand. The word
// typed is not echoed: on a mistyped command line it may be an identifier (a user name is a word
// too). A close command name is suggested instead.
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageErr(cmd, "%s needs a command", cmd.CommandPath())
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, which SuggestionsFor does not apply
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		return usageErr(cmd, "unknown command for %s; did you mean %q?", cmd.CommandPath(), s[0])
	}
	return usageErr(cmd, "unknown command for %s", cmd.CommandPath())
}

// NewCommand builds the kubectl-dsr command tree writing to stdout and stderr.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	o := &options{config: genericclioptions.NewConfigFlags(true), stderr: stderr}
	root := &cobra.Command{
		Use:   "kubectl-dsr",
		Short: "Data-subject-rights requests of dsr-operator",
		Long: `kubectl dsr: data-subject-rights requests of dsr-operator.

Shows requests store by store, verifies signed deletion receipts (with or without a cluster),
files deletion and access requests, and fetches access exports.

Exit status: 0 on success, 1 when a check fails or the cluster refuses, 2 on a usage error.
Identifier values are never printed.`,
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl dsr"},
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			return noSubcommand(cmd, args)
		},
		RunE:              func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(flagError)
	o.config.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVar(&o.operatorNamespace, "operator-namespace", "dsr-system", "namespace where the operator publishes its receipt public key")

	receiptCmd := &cobra.Command{
		Use:   "receipt",
		Short: "Show or verify a deletion request's signed receipt",
		Args:  noSubcommand,
		RunE:  func(*cobra.Command, []string) error { return nil },
	}
	receiptCmd.AddCommand(newReceiptShow(o, stdout), newReceiptVerify(o, stdout))
	root.AddCommand(newStatus(o, stdout), receiptCmd, newFile(o, stdout, true), newFile(o, stdout, false), newExport(o, stdout), newKeys(o, stdout),
		newDiscover(o, stdout), newSuppression(o, stdout))
	return root
}

func getDeletion(ctx context.Context, c client.Client, ns, name string) (*privacyv1alpha1.DeletionRequest, error) {
	var dr privacyv1alpha1.DeletionRequest
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &dr); err != nil {
		return nil, fmt.Errorf("DeletionRequest %s/%s: %w", ns, name, err)
	}
	return &dr, nil
}

func writeFileOrStdout(path string, data []byte, stdout io.Writer) error {
	if path == "" || path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	// 0600: an export is the person's data.
	return os.WriteFile(path, data, 0o600)
}

// identifiers collects the identifiers of erase and access. Its flags never fail: pflag would
// quote the rejected value in its error, and that value is the person's identifier. Problems are
// kept, by name only, and reported after parsing.
type identifiers struct {
	ids      map[string]string
	problems []string
	n        int
}

func (f *identifiers) add(name, value, flag string) {
	f.n++
	switch {
	case name == "":
		f.problems = append(f.problems, fmt.Sprintf("--%s #%d is not name=value", flag, f.n))
	case value == "":
		f.problems = append(f.problems, fmt.Sprintf("identifier %s has an empty value", name))
	case f.ids[name] != "":
		f.problems = append(f.problems, fmt.Sprintf("identifier %s is given twice", name))
	default:
		f.ids[name] = value
	}
}

// wellKnown is --email, --user-id or --phone: the identifier name is fixed.
type wellKnown struct {
	set        *identifiers
	name, flag string
}

func (w wellKnown) String() string     { return "" }
func (w wellKnown) Type() string       { return "string" }
func (w wellKnown) Set(v string) error { w.set.add(w.name, v, w.flag); return nil }

// named is --identifier name=value.
type named struct{ set *identifiers }

func (n named) String() string { return "" }
func (n named) Type() string   { return "name=value" }
func (n named) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		name = ""
	}
	n.set.add(name, value, "identifier")
	return nil
}
