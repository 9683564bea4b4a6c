package httpstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Limits on text from the service that the connector passes on.
const (
	// MaxMessageBytes caps an error message or warning from the service.
	MaxMessageBytes = 512
	// MaxCodeBytes caps an error code from the service.
	MaxCodeBytes = 64
	// MaxLocationBytes caps a location name in a result.
	MaxLocationBytes = 256
	// MaxReasonBytes caps a retain reason, as spec.tables[].retainReason is.
	MaxReasonBytes = 1024
	// MaxWarnings caps the warnings of a check.
	MaxWarnings = 32
	// maxErrorBodyBytes is how much of an error answer is read: enough for any error object.
	maxErrorBodyBytes = 64 << 10
	// maxRetryAfter caps a Retry-After, so that a wrong date cannot park a request for years.
	maxRetryAfter = 24 * time.Hour
)

// StatusError is an error status answered by the service. Its message is already scrubbed.
// Callers that schedule retries can read the service's Retry-After through
//
//	var ra interface{ RetryAfter() time.Duration }
//	if errors.As(err, &ra) { ... }
type StatusError struct {
	// Endpoint is the URL called; it never holds an identifier.
	Endpoint string
	// StatusCode is the HTTP status.
	StatusCode int
	// Code and Message are those of the error body, scrubbed and capped; empty when the body
	// was not a protocol error object.
	Code    string
	Message string
	// After is the Retry-After of the answer, zero when it had none.
	After time.Duration
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s: HTTP %d %s", e.Endpoint, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.After > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.After)
	}
	return b.String()
}

// RetryAfter is how long the service asked to wait before the next call.
func (e *StatusError) RetryAfter() time.Duration { return e.After }

// kindOfStatus classifies an error status; see the package documentation.
func kindOfStatus(status int) connector.ErrorKind {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return connector.KindAuth
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented:
		return connector.KindInvalid
	case status == http.StatusRequestTimeout || status == http.StatusTooEarly || status == http.StatusTooManyRequests || status >= 500:
		return connector.KindUnavailable
	case status >= 300 && status < 400:
		return connector.KindInvalid
	default:
		return connector.KindRejected
	}
}

// errorBody is the protocol's error object.
type errorBody struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// statusError builds the error of an answer with an error status. body is at most
// maxErrorBodyBytes of it.
func statusError(endpoint string, resp *http.Response, body []byte, ids connector.Identifiers) *StatusError {
	e := &StatusError{Endpoint: endpoint, StatusCode: resp.StatusCode, After: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var eb errorBody
	if isJSON(resp.Header.Get("Content-Type")) && json.Unmarshal(body, &eb) == nil && eb.Error != nil {
		e.Code = sanitizeCode(eb.Error.Code)
		e.Message = sanitize(eb.Error.Message, ids, MaxMessageBytes)
	}
	return e
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now).Round(time.Second)
	}
	return min(max(d, 0), maxRetryAfter)
}

// transportError classifies a failure to get an answer at all. The error's location is the
// endpoint's path (never the host, which status readers need not see), its hint the connector's
// advice; the network's own text goes only into the message.
func (c *Client) transportError(op string, err error, ids connector.Identifiers) error {
	endpoint := "POST " + c.endpoint(op)
	located := func(kind connector.ErrorKind, code, hint string, inner error) error {
		return &connector.Error{Kind: kind, Op: op, Code: code, Location: c.location(op), Hint: hint, Err: inner}
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	switch {
	case errors.As(err, &certErr) || errors.As(err, &unknownAuthority) || errors.As(err, &hostnameErr) || errors.As(err, &invalidCert):
		hint := "the service's TLS certificate is not trusted: set connection.caSecretRef to the PEM bundle of the CA that signed it"
		if c.hasCABundle {
			hint = "the service's TLS certificate is not trusted: it must chain to a certificate of the CA bundle of connection.caSecretRef and name the host of connection.url"
		}
		return located(connector.KindAuth, "", hint,
			fmt.Errorf("%s: %s (%s)", endpoint, hint, sanitize(tlsDetail(err), ids, MaxMessageBytes)))
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		hint := "the service answered in plain HTTP: connection.url should start with http://, or the port is wrong"
		return located(connector.KindInvalid, "", hint, fmt.Errorf("%s: %s", endpoint, hint))
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return located(connector.KindUnavailable, "timeout", "",
			&scrubbedError{msg: fmt.Sprintf("%s: no answer within the timeout (connection.timeout %s, or the caller's deadline)", endpoint, c.timeout), cause: context.DeadlineExceeded})
	case errors.Is(err, context.Canceled):
		return located(connector.KindUnavailable, "canceled", "", &scrubbedError{msg: endpoint + ": canceled", cause: context.Canceled})
	}
	// The url.Error repeats the endpoint; keep only what went wrong.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return located(connector.KindUnavailable, "", "", fmt.Errorf("%s: %s", endpoint, sanitize(err.Error(), ids, MaxMessageBytes)))
}

// location is where an operation's errors happen, for status: method and path, without the host.
func (c *Client) location(op string) string {
	return "POST " + c.base.JoinPath("v1", op).EscapedPath()
}

// statusFailure is the *connector.Error of an error status: the HTTP status is its code, and the
// service's own code and message stay in the message, out of status.
func (c *Client) statusFailure(op string, se *StatusError) error {
	return &connector.Error{Kind: kindOfStatus(se.StatusCode), Op: op, Code: "HTTP " + strconv.Itoa(se.StatusCode), Location: c.location(op), Err: se}
}

// tlsDetail is the x509 part of a TLS error, without Go's "tls: failed to verify certificate".
func tlsDetail(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "x509: "); i >= 0 {
		return msg[i:]
	}
	return msg
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// scrubbedError carries a message with identifier values removed and, as its only cause, a
// context sentinel: unwrapping must never reach a message that still holds a value.
type scrubbedError struct {
	msg   string
	cause error
}

func (e *scrubbedError) Error() string { return e.msg }

func (e *scrubbedError) Unwrap() error { return e.cause }

// protocolError is an answer that breaks the protocol: most likely connection.url does not
// point at a protocol v1 service, or the service is broken. Either way retrying will not help.
func (c *Client) protocolError(op, format string, args ...any) error {
	hint := "the answer breaks protocol " + ProtocolVersion
	return &connector.Error{Kind: connector.KindInvalid, Op: op, Location: c.location(op), Hint: hint,
		Err: fmt.Errorf("POST %s: %s: %s", c.endpoint(op), hint, fmt.Sprintf(format, args...))}
}

// sanitize makes text from the service safe to pass on: identifier values scrubbed, control
// and formatting characters (newlines, bidi overrides) turned into spaces, cut to limit bytes.
func sanitize(s string, ids connector.Identifiers, limit int) string {
	s = scrub(s, ids)
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	return truncate(s, limit)
}

// truncate cuts s to at most limit bytes on a rune boundary, marking the cut.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const mark = "..."
	cut := limit - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// sanitizeCode keeps an error code only if it looks like one: a short token of letters,
// digits, and . _ -.
func sanitizeCode(code string) string {
	if code == "" || len(code) > MaxCodeBytes {
		return ""
	}
	for _, r := range code {
		if r >= utf8.RuneSelf || !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '.' && r != '_' && r != '-' {
			return ""
		}
	}
	return code
}

const identifierMarker = "[identifier]"

// jsonForms are the ways a JSON encoder may write v inside a string: with or without HTML
// escaping (Go escapes <, > and &), and with non-ASCII characters as is or as \uXXXX (Python's
// default).
func jsonForms(v string) []string {
	var forms []string
	for _, escapeHTML := range []bool{true, false} {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(escapeHTML)
		if enc.Encode(v) != nil {
			continue
		}
		plain := strings.TrimSuffix(strings.TrimSuffix(b.String(), "\n"), "\"")[1:]
		forms = append(forms, plain, asciiJSON(plain))
	}
	return forms
}

// asciiJSON writes the non-ASCII characters of a JSON string body as \uXXXX escapes, in
// UTF-16 surrogate pairs beyond the BMP.
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, "\\u%04x\\u%04x", r1, r2)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.String()
}

// scrub removes identifier values from s, as Identifiers.Scrub does, and also the forms a
// service is likely to echo them in: another letter case (services normalise email addresses),
// and JSON, URL and HTML escaped. When that cannot be done, the whole message is withheld.
func scrub(s string, ids connector.Identifiers) string {
	s = ids.Scrub(s)
	seen := map[string]bool{}
	var variants []string
	for _, name := range ids.Names() {
		v := ids[name]
		if v == "" {
			continue
		}
		forms := append([]string{v, url.QueryEscape(v), url.PathEscape(v), html.EscapeString(v)}, jsonForms(v)...)
		for _, f := range forms {
			if f != "" && !seen[f] {
				seen[f] = true
				variants = append(variants, f)
			}
		}
	}
	if len(variants) == 0 {
		return s
	}
	// Longest first: the alternation is leftmost-first, and a value containing another must go
	// whole.
	slices.SortFunc(variants, func(a, b string) int { return len(b) - len(a) })
	quoted := make([]string, len(variants))
	for i, v := range variants {
		quoted[i] = regexp.QuoteMeta(v)
	}
	re, err := regexp.Compile(`(?i)(?:` + strings.Join(quoted, "|") + `)`)
	if err != nil {
		return "[message withheld: it could not be scrubbed of identifiers]"
	}
	return re.ReplaceAllLiteralString(s, identifierMarker)
}
