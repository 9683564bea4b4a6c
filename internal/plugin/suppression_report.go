package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// reportLocation says where a list's report is, for status; it never fails the command.
func reportLocation(ctx context.Context, c client.Client, ns, name string) string {
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		return "Secret " + name
	}
	if csv, ok := s.Data[suppression.ReportKey]; ok {
		return fmt.Sprintf("Secret %s, key %s, %d items", name, suppression.ReportKey, max(bytes.Count(csv, []byte{'\n'})-1, 0))
	}
	idx, err := suppression.ParseReportIndex(s.Data[suppression.ReportIndexKey])
	if err != nil {
		return fmt.Sprintf("Secret %s (no readable report: %v)", name, err)
	}
	return fmt.Sprintf("%d items in %d parts (%s ... %s, key %s) indexed by Secret %s, key %s",
		idx.Items, len(idx.Parts), idx.Parts[0].Name, idx.Parts[len(idx.Parts)-1].Name, suppression.ReportPartKey, name, suppression.ReportIndexKey)
}

// runSuppressionReport writes the list's whole report to outFile (stdout when empty). It is
// assembled in a temporary file first, so that nothing is written, and no half report uploaded,
// when a part does not match its index.
func runSuppressionReport(ctx context.Context, o *options, name, outFile string, stdout io.Writer) error {
	c, ns, l, err := getSuppressionList(ctx, o, name)
	if err != nil {
		return err
	}
	if l.Status.ReportSecretName == "" {
		return &ExitError{Code: exitFailed, Msg: fmt.Sprintf("SuppressionList %s/%s has no report yet (a DROP list gets one after its first sweep)", ns, name)}
	}
	dir := os.TempDir()
	if outFile != "" {
		dir = filepath.Dir(outFile)
	}
	tmp, err := os.CreateTemp(dir, ".dsr-report-*")
	if err != nil {
		return &ExitError{Code: exitFailed, Msg: err.Error()}
	}
	defer func() { _ = tmp.Close(); _ = os.Remove(tmp.Name()) }()
	items, parts, err := assembleReport(ctx, c, ns, l.Status.ReportSecretName, tmp)
	if err != nil {
		return &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the report of %s/%s was not written: %v", ns, name, err)}
	}
	if outFile == "" {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		_, err := io.Copy(stdout, tmp)
		return err
	}
	if err := tmp.Close(); err != nil {
		return &ExitError{Code: exitFailed, Msg: err.Error()}
	}
	if err := os.Rename(tmp.Name(), outFile); err != nil {
		return &ExitError{Code: exitFailed, Msg: err.Error()}
	}
	how := "from one Secret"
	if parts > 0 {
		how = fmt.Sprintf("from %d parts, each checked against the index", parts)
	}
	fmt.Fprintf(stdout, "%s: %d items of SuppressionList %s/%s (%s)\n", outFile, items, ns, name, how)
	return nil
}

// assembleReport writes the CSV of the report whose first Secret is first to w and returns its
// item and part counts. Every part's digest, size and item count, and the whole report's, must
// match the index.
func assembleReport(ctx context.Context, c client.Client, ns, first string, w io.Writer) (int, int, error) {
	get := func(name string) (*corev1.Secret, error) {
		var s corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("secret %s is missing (a sweep may be rewriting the report: run the command again)", name)
			}
			return nil, err
		}
		return &s, nil
	}
	head, err := get(first)
	if err != nil {
		return 0, 0, err
	}
	if csv, ok := head.Data[suppression.ReportKey]; ok {
		if !bytes.HasPrefix(csv, []byte(suppression.ReportHeader)) {
			return 0, 0, fmt.Errorf("secret %s key %s has no %q header", first, suppression.ReportKey, suppression.ReportHeader[:len(suppression.ReportHeader)-1])
		}
		_, err := w.Write(csv)
		return bytes.Count(csv, []byte{'\n'}) - 1, 0, err
	}
	idx, err := suppression.ParseReportIndex(head.Data[suppression.ReportIndexKey])
	if err != nil {
		return 0, 0, fmt.Errorf("secret %s: %w", first, err)
	}
	whole := sha256.New()
	counted := &countingWriter{}
	out := io.MultiWriter(w, whole, counted)
	items := 0
	for i, part := range idx.Parts {
		s, err := get(part.Name)
		if err != nil {
			return 0, 0, err
		}
		if err := suppression.DecodeReportPart(s.Data[suppression.ReportPartKey], part, i == 0, out); err != nil {
			return 0, 0, err
		}
		items += part.Items
	}
	if items != idx.Items || counted.n != idx.Bytes || hex.EncodeToString(whole.Sum(nil)) != idx.SHA256 {
		return 0, 0, fmt.Errorf("the assembled report does not match the SHA-256, size or item count of index %s", first)
	}
	return items, len(idx.Parts), nil
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	return len(b), nil
}
