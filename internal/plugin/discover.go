package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/discover"
)

type discoverFlags struct {
	secret, key, dsn, dsnFile, typ, name string
	identifiers                          []string
	noInfer                              bool
}

func newDiscover(o *options, stdout io.Writer) *cobra.Command {
	f := &discoverFlags{}
	cmd := &cobra.Command{
		Use:   "discover",
		Short: "Propose a DataStore mapping from a SQL database's catalog",
		Long: `Connects to a PostgreSQL, MySQL/MariaDB or SQLite database, reads its catalog (tables, columns,
foreign keys, indexes; never a row) and prints a commented DataStore proposal:

  - columns that look like the subject's identifiers (email, phone, user id, by name and type)
    as matches: only the identifiers the requests carry (--identifiers, default email);
  - foreign-key chains as provides and match: customer.id provided as customerId, orders matched
    on customer_id, orders.id provided as orderId, order_item matched on order_id...; without
    declared keys, columns named after a table's id (customer_id) are followed (--no-infer: not);
  - tables the subject's rows point at from several places (an address) as mask;
  - secondary contact columns (alt_email) as mask;
  - warnings for matched or provided columns without an index.

The DSN comes from a Secret (--secret namespace/name, --key), from --dsn-file (- for stdin) or
from --dsn; it is never printed. The proposal's connection names the Secret given with --secret
(the DataStore goes into its namespace), or a Secret <name>-db with key dsn to create.

An s3 store has no catalog to read: discover refuses its endpoint and its credentials, and its
spec.objects are written by hand.`,
		Example: `  kubectl dsr discover --secret shop/shop-db --key dsn > shop-datastore.yaml
  kubectl dsr discover --dsn-file ./dsn.txt --name shop -n shop
  kubectl dsr discover --type sqlite --dsn /var/lib/app/app.db --identifiers email,phone`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr(cmd, "discover takes no arguments (got %d)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return runDiscover(cmd, o, f, stdout) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.secret, "secret", "", "Secret holding the DSN, as namespace/name (or name, in the -n namespace)")
	fl.StringVar(&f.key, "key", "", "key of the DSN in the Secret (default: its only key, else dsn)")
	fl.StringVar(&f.dsnFile, "dsn-file", "", "file holding the DSN; - reads standard input")
	fl.StringVar(&f.dsn, "dsn", "", "the DSN itself (it stays in your shell history: prefer --secret or --dsn-file)")
	fl.StringVar(&f.typ, "type", "", "postgres, mysql, sqlite or mongodb (default: from the DSN's form)")
	fl.StringVar(&f.name, "name", "", "name of the proposed DataStore (default: the Secret's name, else discovered)")
	fl.BoolVar(&f.noInfer, "no-infer", false, "follow declared foreign keys only, not columns named after a table's id (customer_id)")
	fl.StringSliceVar(&f.identifiers, "identifiers", []string{discover.IdentifierEmail},
		"identifiers the requests' identifiers Secret carries, of email, phone, userId")
	return cmd
}

func runDiscover(cmd *cobra.Command, o *options, f *discoverFlags, stdout io.Writer) error {
	if privacyv1alpha1.StoreType(strings.ToLower(f.typ)) == privacyv1alpha1.StoreTypeS3 {
		return &ExitError{Code: exitUsage, Msg: noObjectStoreDiscovery}
	}
	sources := 0
	for _, s := range []string{f.secret, f.dsn, f.dsnFile} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return usageErr(cmd, "give the DSN with exactly one of --secret, --dsn-file and --dsn")
	}
	for _, id := range f.identifiers {
		if id != discover.IdentifierEmail && id != discover.IdentifierPhone && id != discover.IdentifierUserID {
			return usageErr(cmd, "--identifiers takes email, phone and userId")
		}
	}
	if f.name != "" && len(validation.IsDNS1123Subdomain(f.name)) > 0 {
		return usageErr(cmd, "--name must be a DNS subdomain name (lower-case letters, digits, - and .)")
	}
	header := discover.Header{Name: f.name, SecretKey: "dsn", Known: f.identifiers}
	if o.config.Namespace != nil {
		header.Namespace = *o.config.Namespace
	}
	var dsn string
	var err error
	switch {
	case f.secret != "":
		dsn, err = dsnFromSecret(cmd.Context(), o, f, &header)
	case f.dsnFile == "-":
		dsn, err = readDSN(cmd.InOrStdin())
	case f.dsnFile != "":
		dsn, err = readDSNFile(f.dsnFile)
	default:
		dsn = f.dsn
	}
	if err != nil {
		return &ExitError{Code: exitFailed, Msg: err.Error()}
	}
	if f.typ == "" && looksLikeObjectStore(dsn) {
		return &ExitError{Code: exitUsage, Msg: noObjectStoreDiscovery}
	}
	if header.Name == "" {
		header.Name = "discovered"
	}
	if header.SecretName == "" {
		header.SecretName = header.Name + "-db"
	}
	typ := privacyv1alpha1.StoreType(strings.ToLower(f.typ))
	if typ == "" {
		if typ, err = discover.DetectType(dsn); err != nil {
			return &ExitError{Code: exitUsage, Msg: err.Error()}
		}
	} else if !typ.IsSQL() && typ != privacyv1alpha1.StoreTypeMongoDB {
		return usageErr(cmd, "--type must be postgres, mysql, sqlite or mongodb")
	}
	if typ == privacyv1alpha1.StoreTypeMongoDB {
		p, err := discover.DiscoverMongo(cmd.Context(), dsn, discover.Options{Known: f.identifiers})
		if err != nil {
			return &ExitError{Code: exitFailed, Msg: "discover: " + err.Error()}
		}
		var out bytes.Buffer
		if err := discover.RenderMongo(&out, p, header); err != nil {
			return err
		}
		_, err = stdout.Write(out.Bytes())
		return err
	}
	p, err := discover.Discover(cmd.Context(), typ, dsn, discover.Options{Known: f.identifiers, NoInference: f.noInfer})
	if err != nil {
		return &ExitError{Code: exitFailed, Msg: "discover: " + err.Error()}
	}
	var out bytes.Buffer
	if err := discover.Render(&out, p, header); err != nil {
		return err
	}
	_, err = stdout.Write(out.Bytes())
	return err
}

// noObjectStoreDiscovery explains why an s3 store is not discovered: listing a bucket would read
// the keys, and so the identifiers, of everyone in it, and key layouts are the application's.
const noObjectStoreDiscovery = "discover reads a database's catalog; an s3 store has none (its object keys are " +
	"the mapping, and listing a bucket would read everyone's keys): write spec.objects by hand, " +
	"see docs/datastores.md, section S3-compatible object storage"

// s3AccessKeyID is the form of an access key id (AWS AKIA..., MinIO and Ceph keys alike).
var s3AccessKeyID = regexp.MustCompile(`^[A-Za-z0-9]{16,128}$`)

// looksLikeObjectStore tells an s3 store's endpoint (s3://, http:// or https://, which no
// database DSN discover reads starts with) or its "<accessKeyId>:<secretAccessKey>" Secret.
// Neither is ever printed.
func looksLikeObjectStore(dsn string) bool {
	s := strings.TrimSpace(dsn)
	lowered := strings.ToLower(s)
	for _, scheme := range []string{"s3://", "s3a://", "http://", "https://"} {
		if strings.HasPrefix(lowered, scheme) {
			return true
		}
	}
	id, secret, ok := strings.Cut(s, ":")
	return ok && s3AccessKeyID.MatchString(id) && secret != "" &&
		!strings.ContainsAny(secret, "@=: \t") && !strings.HasSuffix(lowered, ".db")
}

// dsnFromSecret reads the DSN from a Secret through the kube client; the DataStore is proposed
// in the Secret's namespace and its connection names the Secret.
func dsnFromSecret(ctx context.Context, o *options, f *discoverFlags, h *discover.Header) (string, error) {
	c, ns, err := o.client()
	if err != nil {
		return "", err
	}
	name := f.secret
	if before, after, ok := strings.Cut(f.secret, "/"); ok {
		ns, name = before, after
	}
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("no Secret %q in namespace %q", name, ns)
		}
		return "", fmt.Errorf("reading Secret %s/%s: %w", ns, name, err)
	}
	k := f.key
	if k == "" {
		k = "dsn"
		if len(s.Data) == 1 {
			for only := range s.Data {
				k = only
			}
		}
	}
	v, ok := s.Data[k]
	if !ok || len(bytes.TrimSpace(v)) == 0 {
		keys := make([]string, 0, len(s.Data))
		for key := range s.Data {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		return "", fmt.Errorf("secret %s/%s has no key %q (it has: %s); choose one with --key", ns, name, k, strings.Join(keys, ", "))
	}
	h.Namespace, h.SecretName, h.SecretKey = ns, name, k
	if h.Name == "" {
		h.Name = name
	}
	return string(v), nil
}

func readDSNFile(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return "", fmt.Errorf("reading --dsn-file: %v", pe.Err)
		}
		return "", errors.New("reading --dsn-file failed")
	}
	defer fh.Close()
	return readDSN(fh)
}

// readDSN reads a DSN of at most 64 KiB: its first line, trimmed.
func readDSN(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return "", errors.New("reading the DSN failed")
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return "", errors.New("the DSN is empty")
	}
	return line, nil
}
