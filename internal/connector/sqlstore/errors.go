package sqlstore

import (
	"context"
	"errors"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// scrubbedError carries a driver error's message with identifier values removed. It keeps only
// a context sentinel as its cause, never the driver error itself: unwrapping must not reach a
// message that still holds a value.
type scrubbedError struct {
	msg   string
	cause error
}

func (e *scrubbedError) Error() string { return e.msg }

func (e *scrubbedError) Unwrap() error { return e.cause }

// classify turns err into a *connector.Error of the right kind whose message holds no
// identifier value.
func classify(d Dialect, op string, err error, scrub func(string) string) error {
	if err == nil {
		return nil
	}
	var ce *connector.Error
	if errors.As(err, &ce) {
		return err
	}
	var me *MappingError
	if errors.As(err, &me) {
		return &connector.Error{Kind: connector.KindMapping, Op: op, Err: me}
	}
	msg := err.Error()
	if scrub != nil {
		msg = scrub(msg)
	}
	scrubbed := &scrubbedError{msg: msg}
	kind := connector.KindUnavailable
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		scrubbed.cause = context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		scrubbed.cause = context.Canceled
	default:
		kind = d.Classify(err)
	}
	return &connector.Error{Kind: kind, Op: op, Err: scrubbed}
}
