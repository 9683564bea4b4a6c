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

// Classify turns err, a failure of op at location (a table, or empty), into a *connector.Error of
// the right kind with the database's own code, whose message holds no identifier value. Mapping
// problems are the connector's own text and become the error's hint; the driver's text never
// does.
func Classify(d Dialect, op string, location connector.Location, err error, ids connector.Identifiers) error {
	return classify(d, op, location, err, ids.Scrub)
}

// classify is Classify with the scrubbing given: a request's derived values are scrubbed too
// (connector.Request.ScrubAll).
func classify(d Dialect, op string, location connector.Location, err error, scrub func(string) string) error {
	if err == nil {
		return nil
	}
	var ce *connector.Error
	if errors.As(err, &ce) {
		return err
	}
	var me *MappingError
	if errors.As(err, &me) {
		return &connector.Error{Kind: connector.KindMapping, Op: op, Location: location, Hint: me.Error(), Err: me}
	}
	msg := err.Error()
	if scrub != nil {
		msg = scrub(msg)
	}
	scrubbed := &scrubbedError{msg: msg}
	e := &connector.Error{Kind: connector.KindUnavailable, Op: op, Location: location, Err: scrubbed}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		scrubbed.cause, e.Code = context.DeadlineExceeded, "timeout"
	case errors.Is(err, context.Canceled):
		scrubbed.cause, e.Code = context.Canceled, "canceled"
	default:
		e.Kind, e.Code = d.Classify(err), d.ErrorCode(err)
	}
	return e
}
