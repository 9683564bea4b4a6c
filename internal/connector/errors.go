package connector

import (
	"errors"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ErrorKind says what went wrong with a store, which decides whether to retry and which reason
// the controllers report.
type ErrorKind string

const (
	// KindUnavailable: the store could not be reached or timed out. Transient: retry with backoff.
	KindUnavailable ErrorKind = "Unavailable"
	// KindAuth: the store refused the credentials. Retried, since the Secret may be fixed.
	KindAuth ErrorKind = "AuthFailed"
	// KindMapping: a mapped table, column or key pattern does not exist or cannot be used.
	// Permanent until the DataStore changes.
	KindMapping ErrorKind = "MappingInvalid"
	// KindInvalid: the configuration (DSN, URL, CA bundle) is malformed. Permanent.
	KindInvalid ErrorKind = "InvalidConfig"
	// KindRejected: the store refused the operation (e.g. an http processor answering 4xx).
	// Permanent for this request.
	KindRejected ErrorKind = "Rejected"
	// KindEgressDenied: the operator's egress policy refuses the store's address or its plain
	// http:// URL; nothing was sent. Permanent until the store or the policy changes.
	KindEgressDenied ErrorKind = "EgressDenied"
)

// Error is a store error with its kind. Its message must never hold an identifier value, but it
// may hold a driver's or service's own text (which may echo a value in a form no scrub
// recognises, or name hosts and users): Error() is for the operator's debug log only. What status
// and events show is Summary, built from the fields below, which never hold free driver text.
type Error struct {
	Kind ErrorKind
	// Op is the operation: check, collect, erase, verify, connect.
	Op string
	// Code is the store's own code for the failure, labelled by its scheme: "SQLSTATE 42P01",
	// "MySQL 1146", "SQLite 5", "Redis WRONGTYPE", "HTTP 503"; empty when there is none.
	Code string
	// Location is where it failed: a table, key pattern or endpoint path from the spec. Never
	// an identifier value, a host or a user.
	Location string
	// Hint is text written by the connector (advice, or a mapping problem naming the spec's
	// tables and columns); never driver or service text.
	Hint string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s: %v", e.Op, e.Kind, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// Summary is what status and events may show: operation, kind, code, location and hint.
func (e *Error) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.Op, e.Kind)
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Location != "" {
		fmt.Fprintf(&b, " at %s", e.Location)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, ": %s", e.Hint)
	}
	return b.String()
}

// Summary is what status and events may show of err: the Summary of its *Error, or only its kind
// for an error that is not one (its text is unknown and may come from a driver).
func Summary(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Summary()
	}
	return string(KindOf(err)) + ": the store operation failed (the operator's debug log has the details)"
}

// Errorf builds an *Error. Without args the text is a constant written by the connector, so it
// also becomes the Hint; with args it may carry driver text and stays out of status.
func Errorf(kind ErrorKind, op, format string, args ...any) error {
	e := &Error{Kind: kind, Op: op, Err: fmt.Errorf(format, args...)}
	if len(args) == 0 {
		e.Hint = format
	}
	return e
}

// Hinted builds an *Error whose whole text is written by the connector (e.g. mapping problems
// naming the spec's tables and columns) and so may be shown as it is.
func Hinted(kind ErrorKind, op, hint string) error {
	return &Error{Kind: kind, Op: op, Hint: hint, Err: errors.New(hint)}
}

// Wrap gives err a kind; nil stays nil.
func Wrap(kind ErrorKind, op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: kind, Op: op, Err: err}
}

// KindOf returns the kind of err; errors without one count as unavailable, so that an
// unexpected failure is retried rather than reported as final.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnavailable
}

// IsTransient reports whether err is worth retrying.
func IsTransient(err error) bool {
	switch KindOf(err) {
	case KindUnavailable, KindAuth:
		return true
	default:
		return false
	}
}

// ScrubForms removes identifier values from msg in every form a driver or service is likely to
// echo them in: any letter case, percent-encoded (query or path), HTML-escaped, with quotes doubled
// (SQL) or backslash-escaped (JSON, Go, C), and with non-ASCII letters as \uXXXX. It is for debug
// logs: status and events never get driver text at all. When the values cannot be matched, the
// whole message is withheld.
func ScrubForms(msg string, ids Identifiers) string {
	seen := map[string]bool{}
	var forms []string
	for _, v := range ids {
		if v == "" {
			continue
		}
		for _, f := range valueForms(v) {
			if f != "" && !seen[f] {
				seen[f] = true
				forms = append(forms, regexp.QuoteMeta(f))
			}
		}
	}
	if len(forms) == 0 {
		return msg
	}
	// Longest first: the alternation is leftmost-first, and a value containing another must go whole.
	sort.Slice(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	re, err := regexp.Compile(`(?i)(?:` + strings.Join(forms, "|") + `)`)
	if err != nil {
		return "[message withheld: it could not be scrubbed of identifiers]"
	}
	return re.ReplaceAllLiteralString(msg, "[identifier]")
}

func valueForms(v string) []string {
	backslashed := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `'`, `\'`).Replace(v)
	quoted := strconv.Quote(v)
	return []string{
		v,
		url.QueryEscape(v),
		url.PathEscape(v),
		html.EscapeString(v),
		strings.ReplaceAll(v, "'", "''"),
		strings.ReplaceAll(v, `"`, `""`),
		backslashed,
		quoted[1 : len(quoted)-1],
		strconv.QuoteToASCII(v)[1 : len(strconv.QuoteToASCII(v))-1],
	}
}
