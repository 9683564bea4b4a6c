package plugin

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

func newExport(o *options, stdout io.Writer) *cobra.Command {
	var out, dir, format string
	cmd := &cobra.Command{
		Use:   "export NAME [-o FILE | --format html | --dir DIR]",
		Short: "Write an access request's export files, digests checked and decompressed",
		Long: `Fetches the export of a completed AccessRequest from its Secret (status.export.files), checks that
each file's stored bytes have the SHA-256 of its status entry and decompresses them when gzipped.
An export delivered to a bucket (spec.destination) is downloaded through the links of its Secret's
files.json; each file's SHA-256 is checked against status and files.json before it is written, and
its name, size and digest are printed to stderr. The links are credentials: they are never printed.

Without flags the JSON document goes to stdout; -o FILE writes it to FILE (mode 0600).
--format csv or html picks another file the request asked for (spec.formats): the zip of CSV files,
or the HTML report, a letter to the person. The HTML report without -o is written to a new private
temporary directory and its path printed, to open in a browser.
--dir DIR writes every file (export.json, export.csv.zip, report.html) into DIR and prints their paths.

The export is the person's data: hand it over, then delete your copies.`,
		Example: `  kubectl dsr export copy-jane -n shop -o jane.json
  kubectl dsr export copy-jane -n shop --format html
  kubectl dsr export copy-jane -n shop --dir ./jane`,
		Args: exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir != "" && (out != "" || format != "") {
				return &ExitError{Code: exitUsage, Msg: "--dir writes every file: it takes neither -o nor --format"}
			}
			want := privacyv1alpha1.ExportFormat(format)
			if want == "" {
				want = privacyv1alpha1.ExportFormatJSON
			}
			only := want
			if dir != "" {
				only = "" // every file
			}
			files, err := fetchExportFiles(cmd.Context(), o, args[0], only)
			if err != nil {
				return err
			}
			if dir != "" {
				return saveAll(dir, files, stdout)
			}
			for _, f := range files {
				if f.format != want {
					continue
				}
				if want == privacyv1alpha1.ExportFormatHTML && out == "" {
					return saveHTML(args[0], f.data, stdout)
				}
				return writeFileOrStdout(out, f.data, stdout)
			}
			return &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the export has no %s file (the request's spec.formats did not ask for it)", want)}
		},
	}
	cmd.Flags().StringVarP(&out, "output-file", "o", "", "write to this file (default: stdout; for html a new temporary file)")
	cmd.Flags().StringVar(&format, "format", "", "which file: json (default), csv (a zip) or html")
	cmd.Flags().StringVar(&dir, "dir", "", "write every file of the export into this directory")
	return cmd
}

// exportFile is one verified, decompressed file of an export.
type exportFile struct {
	format privacyv1alpha1.ExportFormat
	name   string
	data   []byte
}

// saveAll writes every file into dir (created 0700, files 0600) and prints their paths.
func saveAll(dir string, files []exportFile, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, f.data, 0o600); err != nil {
			return err
		}
		fmt.Fprintln(stdout, path)
	}
	return nil
}

// saveHTML writes the report into a new private temporary directory and prints its path.
func saveHTML(name string, data []byte, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "dsr-"+name+"-")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintln(stdout, path)
	return nil
}

// fetchExportFiles returns the export's files of format only (every file when only is empty),
// verified and decompressed.
func fetchExportFiles(ctx context.Context, o *options, name string, only privacyv1alpha1.ExportFormat) ([]exportFile, error) {
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
	entries := ref.Files
	if len(entries) == 0 { // exports delivered before status.export.files: one JSON document
		entries = []privacyv1alpha1.ExportFile{{Format: privacyv1alpha1.ExportFormatJSON, Key: ref.Key, SHA256: ref.SHA256, Bytes: ref.Bytes, Encoding: ref.Encoding}}
	}
	if only != "" {
		entries = slices.DeleteFunc(slices.Clone(entries), func(e privacyv1alpha1.ExportFile) bool { return e.Format != only })
	}
	if ref.Delivery != nil {
		if _, held := s.Data[ref.Key]; !held {
			return downloadFiles(ctx, &s, entries, o.stderr)
		}
	}
	files := make([]exportFile, 0, len(entries))
	for _, e := range entries {
		data, err := verifiedFile(&s, e)
		if err != nil {
			return nil, err
		}
		files = append(files, exportFile{format: e.Format, name: strings.TrimSuffix(e.Key, ".gz"), data: data})
	}
	return files, nil
}

// verifiedFile returns one file's bytes, decompressed, after checking its digest.
func verifiedFile(s *corev1.Secret, e privacyv1alpha1.ExportFile) ([]byte, error) {
	data, ok := s.Data[e.Key]
	if !ok {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the export Secret %s/%s has no key %s", s.Namespace, s.Name, e.Key)}
	}
	if got := receipt.Digest(data); got != e.SHA256 {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the export's digest %s differs from status.export.sha256 %s: not written", got, orDash(e.SHA256))}
	}
	switch e.Encoding {
	case "", "identity":
		return data, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the export in Secret %s/%s is not gzip: %v", s.Namespace, s.Name, err)}
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("decompressing the export in Secret %s/%s: %v", s.Namespace, s.Name, err)}
		}
		return raw, nil
	}
	return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the export's encoding %q is unknown to this plugin", e.Encoding)}
}
