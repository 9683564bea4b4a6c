// Package plugin is kubectl-dsr, the kubectl plugin for auditors and operators of dsr-operator:
// per-store status of a request, receipt verification (online and offline), filing requests and
// fetching exports.
package plugin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
)

const usage = `kubectl dsr: data-subject-rights requests of dsr-operator

Usage:
  kubectl dsr status [NAME] [--kind deletion|access]   requests in the namespace, or one request store by store
  kubectl dsr receipt show NAME                        a deletion request's signed receipt
  kubectl dsr receipt verify NAME [--public-key FILE]  check the receipt's signature and that it belongs to the request
  kubectl dsr receipt verify --file receipt.json --signature receipt.sig --public-key key.pem
                                                       the signature only, offline, without a cluster
  kubectl dsr erase --email E [--user-id U] [--phone P] [--identifier name=value]...
                    [--regulation GDPR] [--received-at RFC3339] [--name N] [--dry-run-request]
                                                       file a DeletionRequest with its identifiers Secret
  kubectl dsr access --email E ...                     file an AccessRequest the same way
  kubectl dsr export NAME [-o FILE]                    an access request's export, digest checked, decompressed

Flags of every command:
  -n, --namespace NS        namespace of the request (default: the kubeconfig context's)
  --kubeconfig FILE         kubeconfig (default: $KUBECONFIG or ~/.kube/config)
  --context NAME            kubeconfig context
  --operator-namespace NS   where the operator publishes its receipt public key (default dsr-system)

Exit status: 0 on success, 1 when a check fails or the cluster refuses, 2 on a usage error.
Identifier values are never printed.
`

// ExitError carries a command's exit code.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// Main runs the plugin with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := Run(ctx, args, stdout, stderr)
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
	return 1
}

// common are the flags every command takes.
type common struct {
	namespace, kubeconfig, context, operatorNamespace string
}

func (c *common) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.namespace, "namespace", "", "namespace of the request")
	fs.StringVar(&c.namespace, "n", "", "namespace of the request (shorthand)")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file")
	fs.StringVar(&c.context, "context", "", "kubeconfig context")
	fs.StringVar(&c.operatorNamespace, "operator-namespace", "dsr-system", "namespace of the operator's receipt public key")
}

// client builds a client and resolves the namespace from the kubeconfig when -n is not given.
func (c *common) client() (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if c.kubeconfig != "" {
		rules.ExplicitPath = c.kubeconfig
	}
	cfg := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.context})
	rest, err := cfg.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading kubeconfig: %w", err)
	}
	ns := c.namespace
	if ns == "" {
		if ns, _, err = cfg.Namespace(); err != nil {
			return nil, "", err
		}
	}
	cl, err := client.New(rest, client.Options{Scheme: operator.Scheme()})
	return cl, ns, err
}

// parse parses flags that may come before or after positional arguments, as kubectl allows.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, &ExitError{Code: 2, Msg: err.Error() + "\n\n" + usage}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// Run runs one command.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	switch args[0] {
	case "status":
		return runStatus(ctx, args[1:], stdout)
	case "receipt":
		if len(args) < 2 {
			return &ExitError{Code: 2, Msg: "receipt needs show or verify\n\n" + usage}
		}
		switch args[1] {
		case "show":
			return runReceiptShow(ctx, args[2:], stdout)
		case "verify":
			return runReceiptVerify(ctx, args[2:], stdout)
		}
		return &ExitError{Code: 2, Msg: fmt.Sprintf("unknown receipt command %q\n\n%s", args[1], usage)}
	case "erase":
		return runFile(ctx, args[1:], stdout, true)
	case "access":
		return runFile(ctx, args[1:], stdout, false)
	case "export":
		return runExport(ctx, args[1:], stdout)
	}
	return &ExitError{Code: 2, Msg: fmt.Sprintf("unknown command %q\n\n%s", args[0], usage)}
}

func oneName(pos []string, what string) (string, error) {
	if len(pos) != 1 {
		return "", &ExitError{Code: 2, Msg: fmt.Sprintf("%s needs exactly one request NAME\n\n%s", what, usage)}
	}
	return pos[0], nil
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
	return os.WriteFile(path, data, 0o600)
}

// identifierFlags collects --identifier name=value flags. Set never fails: the flag package
// quotes the rejected value in its error, and that value is the person's identifier. Problems are
// kept, by name only, and reported after parsing.
type identifierFlags struct {
	ids      map[string]string
	problems []string
}

func (f *identifierFlags) String() string { return fmt.Sprintf("%d identifiers", len(f.ids)) }

func (f *identifierFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	switch {
	case !ok || name == "":
		f.problems = append(f.problems, fmt.Sprintf("--identifier #%d is not name=value", len(f.ids)+len(f.problems)+1))
	case value == "":
		f.problems = append(f.problems, fmt.Sprintf("--identifier %s has an empty value", name))
	case f.ids[name] != "":
		f.problems = append(f.problems, fmt.Sprintf("identifier %s is given twice", name))
	default:
		f.ids[name] = value
	}
	return nil
}

// add records a well-known identifier from its own flag.
func (f *identifierFlags) add(name, value, flagName string) {
	if value == "" {
		return
	}
	if f.ids[name] != "" {
		f.problems = append(f.problems, fmt.Sprintf("identifier %s is given twice (--%s and --identifier %s=...)", name, flagName, name))
		return
	}
	f.ids[name] = value
}
