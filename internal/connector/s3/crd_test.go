package s3

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// KeyRE and BucketRE must be the CRD's expressions, in every copy of the CRDs: a
// ClusterDataStore written before a schema change was never checked against the current one.
func TestPatternsAreTheCRDs(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	files := []string{"config/crd/bases/privacy.dsr.dev_datastores.yaml", "config/crd/bases/privacy.dsr.dev_clusterdatastores.yaml",
		"charts/dsr-operator/crds/privacy.dsr.dev_datastores.yaml", "charts/dsr-operator/crds/privacy.dsr.dev_clusterdatastores.yaml"}
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		keys, buckets := 0, 0
		for _, line := range strings.Split(string(raw), "\n") {
			v, ok := strings.CutPrefix(strings.TrimSpace(line), "pattern: ")
			switch {
			case !ok:
			case strings.Contains(v, `\x00`):
				keys++
				if v != KeyRE {
					t.Errorf("%s: the CRD's object key pattern is\n%s\nthe connector's\n%s", f, v, KeyRE)
				}
			case strings.Contains(v, `{1,61}`):
				buckets++
				if v != BucketRE {
					t.Errorf("%s: the CRD's bucket pattern is %s, the connector's %s", f, v, BucketRE)
				}
			}
		}
		if keys != 1 || buckets != 1 {
			t.Errorf("%s: %d key and %d bucket patterns found, want 1 each", f, keys, buckets)
		}
	}
}

func TestParseKeyAndHolds(t *testing.T) {
	for src, want := range map[string]bool{
		"users/{userId}/":         true,
		"avatars/{userId}.png":    true,
		"a/{x}{y}":                true,
		"users/all/":              false,
		"users/{userId":           false,
		"users/{1d}/":             false,
		"users/{userId}/\x01":     false,
		strings.Repeat("a", 1025): false,
	} {
		_, err := parseKey(src)
		if (err == nil) != want {
			t.Errorf("parseKey(%q) = %v, want ok %v", src, err, want)
		}
	}
	for _, tc := range []struct {
		key, v string
		want   bool
	}{
		{"exports/dump-u-4711.csv", "u-4711", true},
		{"exports/7.csv", "7", true},
		{"exports/17.csv", "7", false},
		{"exports/a7b", "7", false},
	} {
		if got := connector.NameHolds(tc.key, tc.v); got != tc.want {
			t.Errorf("NameHolds(%q, %q) = %v", tc.key, tc.v, got)
		}
	}
}
