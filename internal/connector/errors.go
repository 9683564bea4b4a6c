package connector

import (
	"errors"
	"fmt"
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

// Error is a store error with its kind. Its message must never hold an identifier value.
type Error struct {
	Kind ErrorKind
	// Op is the operation: check, collect, erase, verify, connect.
	Op  string
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s: %v", e.Op, e.Kind, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error.
func Errorf(kind ErrorKind, op, format string, args ...any) error {
	return &Error{Kind: kind, Op: op, Err: fmt.Errorf(format, args...)}
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
