package plugin_test

import (
	"strings"
	"testing"
)

// An s3 store has no catalog: discover refuses it by its type, its endpoint or its credentials
// Secret with a message that says what to do, and never prints the credentials.
func TestDiscoverRefusesAnObjectStore(t *testing.T) {
	const secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	for name, args := range map[string][]string{
		"type":        {"discover", "--type", "S3", "--dsn", "https://s3.eu-west-1.amazonaws.com"},
		"type alone":  {"discover", "--type", "s3"},
		"https url":   {"discover", "--dsn", "https://minio.storage.svc:9000"},
		"http url":    {"discover", "--dsn", "http://127.0.0.1:7070/"},
		"s3 url":      {"discover", "--dsn", "s3://shop-uploads/users/"},
		"credentials": {"discover", "--dsn", "AKIAIOSFODNN7EXAMPLE:" + secretKey},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runOffline(t, args...)
			if code != 2 || !strings.Contains(errOut, "an s3 store has none") || !strings.Contains(errOut, "spec.objects") {
				t.Errorf("exit %d, stderr %q; want exit 2 and the s3 explanation", code, errOut)
			}
			if strings.Contains(out+errOut, secretKey) || strings.Contains(out+errOut, "AKIAIOSFODNN7EXAMPLE") {
				t.Errorf("the credentials are printed: %q", out+errOut)
			}
		})
	}
	// Database DSNs are not taken for an object store (they fail later, unreachable or missing).
	for _, dsn := range []string{"dsr:pw@tcp(127.0.0.1:1)/shop", "/nonexistent/app.db", "file:app.db?mode=ro"} {
		if _, _, errOut := runOffline(t, "discover", "--dsn", dsn); strings.Contains(errOut, "s3 store") {
			t.Errorf("%q is refused as an s3 store: %q", dsn, errOut)
		}
	}
}
