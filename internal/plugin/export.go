package plugin

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

func newExport(o *options, stdout io.Writer) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export NAME [-o FILE]",
		Short: "Write an access request's export, digest checked and decompressed",
		Long: `Fetches the export of a completed AccessRequest from its Secret (status.export), checks that the
stored bytes have the SHA-256 of status.export.sha256, decompresses them when gzipped and writes the
JSON document to FILE (mode 0600) or stdout. The export is the person's data: hand it over, then
delete your copy.`,
		Example: "  kubectl dsr export copy-jane -n shop -o jane.json",
		Args:    exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := fetchExport(cmd.Context(), o, args[0])
			if err != nil {
				return err
			}
			return writeFileOrStdout(out, data, stdout)
		},
	}
	cmd.Flags().StringVarP(&out, "output-file", "o", "", "write to this file (default: stdout)")
	return cmd
}

func fetchExport(ctx context.Context, o *options, name string) ([]byte, error) {
	c, ns, err := o.client()
	if err != nil {
		return nil, err
	}
	var ar privacyv1alpha1.AccessRequest
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ar); err != nil {
		return nil, fmt.Errorf("AccessRequest %s/%s: %w", ns, name, err)
	}
	ref := ar.Status.Export
	if ref == nil {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("AccessRequest %s/%s has no export (phase %s)", ns, name, orDash(string(ar.Status.Phase)))}
	}
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.SecretName}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the export Secret %s/%s is gone (expires %s)", ns, ref.SecretName, stamp(ref.ExpiresAt))}
		}
		return nil, err
	}
	data, ok := s.Data[ref.Key]
	if !ok {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the export Secret %s/%s has no key %s", ns, ref.SecretName, ref.Key)}
	}
	if got := receipt.Digest(data); got != ref.SHA256 {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the export's digest %s differs from status.export.sha256 %s: not written", got, orDash(ref.SHA256))}
	}
	switch ref.Encoding {
	case "", "identity":
		return data, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the export in Secret %s/%s is not gzip: %v", ns, ref.SecretName, err)}
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("decompressing the export in Secret %s/%s: %v", ns, ref.SecretName, err)}
		}
		return raw, nil
	}
	return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the export's encoding %q is unknown to this plugin", ref.Encoding)}
}
