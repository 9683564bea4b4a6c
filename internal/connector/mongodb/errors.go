package mongodb

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// locatedError carries the mapped collection an operation failed at, for classify.
type locatedError struct {
	location string
	err      error
}

func (e *locatedError) Error() string { return e.err.Error() }
func (e *locatedError) Unwrap() error { return e.err }

func locate(err error, m *mapping) error {
	if err == nil {
		return nil
	}
	return &locatedError{location: m.location(), err: err}
}

// authCodes are the server's codes for refused credentials or privileges.
var authCodes = map[int]bool{13: true, 18: true, 8000: true, 11: true}

// transientCodes are the server's codes for a primary stepping down, a shutdown or a restart.
var transientCodes = map[int]bool{
	6: true, 7: true, 89: true, 91: true, 189: true, 262: true, 9001: true,
	10107: true, 11600: true, 11602: true, 13435: true, 13436: true, 50: true,
}

// classify turns a driver error into a *connector.Error: network, timeout and stepping-down
// errors are KindUnavailable, refused credentials KindAuth, anything else the server refuses is
// KindMapping (the mapping asks for something the deployment cannot do). The server's code goes
// into Code; its text, scrubbed of the subject's values, only into the debug-log message.
func classify(op string, err error, req connector.Request) error {
	if err == nil {
		return nil
	}
	var ce *connector.Error
	if errors.As(err, &ce) {
		cp := *ce
		if cp.Op == "find" {
			cp.Op = op
		}
		var le *locatedError
		if cp.Location == "" && errors.As(err, &le) {
			cp.Location = le.location
		}
		return &cp
	}
	out := &connector.Error{Op: op, Kind: connector.KindUnavailable, Err: errors.New(req.ScrubAll(err.Error()))}
	var le *locatedError
	if errors.As(err, &le) {
		out.Location = le.location
	}
	var se mongo.ServerError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), mongo.IsTimeout(err):
		out.Hint = "the server did not answer in time"
	case mongo.IsNetworkError(err), errors.Is(err, mongo.ErrClientDisconnected):
		out.Hint = "the server could not be reached"
	case errors.As(err, &se):
		code := firstCode(se)
		if code != 0 {
			out.Code = fmt.Sprintf("MongoDB %d", code)
		}
		switch {
		case authCodes[code]:
			out.Kind = connector.KindAuth
			out.Hint = "the server refused the credentials or privileges"
		case transientCodes[code] || se.HasErrorLabel("RetryableWriteError") || se.HasErrorLabel("TransientTransactionError"):
			out.Hint = "the server is restarting or changing its primary"
		default:
			out.Kind = connector.KindMapping
		}
	default:
		// Server selection failures (nothing answered) and other client-side errors.
		out.Hint = "the server could not be reached"
	}
	return out
}

func firstCode(se mongo.ServerError) int {
	var ce mongo.CommandError
	if errors.As(se, &ce) {
		return int(ce.Code)
	}
	var we mongo.WriteException
	if errors.As(se, &we) {
		for _, e := range we.WriteErrors {
			return e.Code
		}
		if we.WriteConcernError != nil {
			return we.WriteConcernError.Code
		}
	}
	var bwe mongo.BulkWriteException
	if errors.As(se, &bwe) {
		for _, e := range bwe.WriteErrors {
			return e.Code
		}
	}
	return 0
}
