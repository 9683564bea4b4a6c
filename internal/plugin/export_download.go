package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

// manifestKey is the export Secret's key that lists the files of an export delivered to a bucket.
const manifestKey = "files.json"

// manifestFile is one file of files.json. URL is a presigned link: a credential, never printed.
type manifestFile struct {
	Name         string    `json:"name"`
	SHA256       string    `json:"sha256"`
	Bytes        int64     `json:"bytes"`
	URL          string    `json:"url"`
	URLExpiresAt time.Time `json:"urlExpiresAt"`
}

// downloadFiles downloads the files of an export delivered to a bucket through the links of the
// export Secret's files.json. A file is returned only when status and files.json agree on its
// digest and size and the downloaded bytes have both.
func downloadFiles(ctx context.Context, s *corev1.Secret, entries []privacyv1alpha1.ExportFile, stderr io.Writer) ([]exportFile, error) {
	raw, ok := s.Data[manifestKey]
	if !ok {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the export Secret %s/%s has no key %s (the export was delivered to a bucket)", s.Namespace, s.Name, manifestKey)}
	}
	var manifest struct {
		Files []manifestFile `json:"files"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the %s of Secret %s/%s is not JSON", manifestKey, s.Namespace, s.Name)}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = 30 * time.Second
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport}
	files := make([]exportFile, 0, len(entries))
	for _, e := range entries {
		m, err := manifestEntry(manifest.Files, e)
		if err != nil {
			return nil, err
		}
		data, err := download(ctx, hc, m)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "%s: %d bytes, %s, verified\n", m.Name, m.Bytes, m.SHA256)
		files = append(files, exportFile{format: e.Format, name: m.Name, data: data})
	}
	return files, nil
}

// manifestEntry finds status entry e in files.json and checks that both record the same file.
func manifestEntry(files []manifestFile, e privacyv1alpha1.ExportFile) (*manifestFile, error) {
	for i := range files {
		m := &files[i]
		if m.Name != e.Key {
			continue
		}
		if m.SHA256 != e.SHA256 || m.Bytes != e.Bytes {
			return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("%s: files.json records %s (%d bytes), status.export.files %s (%d bytes): not downloaded",
				m.Name, orDash(m.SHA256), m.Bytes, orDash(e.SHA256), e.Bytes)}
		}
		if e.Encoding != "" && e.Encoding != "identity" {
			return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("%s: the encoding %q of a delivered file is unknown to this plugin", m.Name, e.Encoding)}
		}
		if m.URL == "" {
			return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("%s: files.json has no link for it", m.Name)}
		}
		return m, nil
	}
	return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("files.json does not list %s, which status.export.files names", e.Key)}
}

// download fetches one file through its link and checks its size and digest. Its errors never
// quote the link: the signature in it grants access to the person's data.
func download(ctx context.Context, hc *http.Client, m *manifestFile) ([]byte, error) {
	if !m.URLExpiresAt.IsZero() && time.Now().After(m.URLExpiresAt) {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("%s: its link expired at %s", m.Name, m.URLExpiresAt.UTC().Format(time.RFC3339))}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL, nil)
	if err != nil {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("%s: files.json holds a link that is not a URL", m.Name)}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("%s: downloading failed: %s", m.Name, withoutURL(err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("%s: the bucket answered %s (an expired export is deleted with its files)", m.Name, resp.Status)}
	}
	// One byte more than recorded tells a longer file from the right one.
	data, err := io.ReadAll(io.LimitReader(resp.Body, m.Bytes+1))
	if err != nil {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("%s: downloading failed: %s", m.Name, withoutURL(err))}
	}
	if int64(len(data)) != m.Bytes {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("%s: downloaded %d bytes, %d recorded: not written", m.Name, len(data), m.Bytes)}
	}
	if got := receipt.Digest(data); got != m.SHA256 {
		return nil, &ExitError{Code: exitFailed, Msg: fmt.Sprintf("%s: the downloaded digest %s differs from the recorded %s: not written", m.Name, got, m.SHA256)}
	}
	return data, nil
}

// withoutURL is err's text without the request URL net/http puts into it.
func withoutURL(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if i := strings.Index(msg, "X-Amz-"); i >= 0 { // never seen, but never printed either
		msg = msg[:i] + "…"
	}
	return msg
}
