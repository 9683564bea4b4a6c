package httpstore

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/requests"
)

func TestStatusAndTransportErrorsShowNoServiceText(t *testing.T) {
	const value = "Zoe.O'Hara+dsr@example.test"
	ids := connector.Identifiers{"email": value}
	echoes := strings.Join([]string{strings.ToUpper(value), "'" + value + "'", url.QueryEscape(value), url.PathEscape(value)}, " ")
	base, _ := url.Parse("https://privacy.internal.example:8443/dsr")
	c := &Client{base: base}

	resp := &http.Response{StatusCode: http.StatusConflict, Header: http.Header{"Content-Type": {"application/json"}}}
	body := []byte(`{"error":{"code":"subject_locked","message":"subject ` + echoes + ` is locked"}}`)
	for _, tc := range []struct {
		name     string
		err      error
		wantCode string
	}{
		{"error status", c.statusFailure("erase", statusError(c.endpoint("erase"), resp, body, ids)), "HTTP 409"},
		{"transport", c.transportError("erase", errors.New("dial tcp: lookup privacy.internal.example: "+echoes), ids), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := requests.Classify(tc.err, ids)
			if !strings.Contains(f.Message, "POST /dsr/v1/erase") || !strings.Contains(f.Message, tc.wantCode) {
				t.Errorf("message %q lacks the endpoint path or the code %q", f.Message, tc.wantCode)
			}
			if strings.Contains(f.Message, "privacy.internal.example") || strings.Contains(f.Message, "locked") {
				t.Errorf("message %q holds the host or the service's text", f.Message)
			}
			for _, text := range []string{f.Message, f.Detail} {
				low := strings.ToLower(text)
				for _, form := range []string{"o'hara", `o\'hara`, "%40example", "o%27hara", "zoe.o"} {
					if strings.Contains(low, form) {
						t.Fatalf("%q holds the identifier form %q", text, form)
					}
				}
			}
		})
	}
}
