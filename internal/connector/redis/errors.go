package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// maxMessage bounds the part of a server or network message an error repeats.
const maxMessage = 256

// scrubbedError carries a message with identifier values removed. Its only cause is a context
// error: unwrapping must not reach a message that still holds a value.
type scrubbedError struct {
	msg   string
	cause error
}

func (e *scrubbedError) Error() string { return e.msg }

func (e *scrubbedError) Unwrap() error { return e.cause }

// fail turns err into a *connector.Error of the right kind whose message holds no identifier value.
// Its code is the server's error prefix (WRONGTYPE, NOPERM...), its hint the connector's own
// advice; the server's text goes only into the message.
func fail(ctx context.Context, op string, err error, ids connector.Identifiers) error {
	var ce *connector.Error
	if errors.As(err, &ce) {
		return err
	}
	text := scrub(err.Error(), ids)
	e := &scrubbedError{msg: text}
	ce = &connector.Error{Kind: connector.KindUnavailable, Op: op, Code: errorPrefix(err), Err: e}
	_, moved := goredis.IsMovedError(err)
	_, ask := goredis.IsAskError(err)
	switch {
	case ctx.Err() != nil:
		// go-redis reports a deadline it set from ctx as an i/o timeout.
		e.cause = ctx.Err()
		e.msg = fmt.Sprintf("%v (%s)", ctx.Err(), text)
		ce.Code = contextCode(ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		e.cause, ce.Code = context.DeadlineExceeded, "timeout"
	case errors.Is(err, context.Canceled):
		e.cause, ce.Code = context.Canceled, "canceled"
	case goredis.IsAuthError(err):
		ce.Kind, ce.Hint = connector.KindAuth, "the server refused the credentials"
	case goredis.IsPermissionError(err):
		ce.Kind, ce.Hint = connector.KindAuth, "the Redis user lacks a permission the connector needs"
	case moved, ask, goredis.IsClusterDownError(err), goredis.HasErrorPrefix(err, "CROSSSLOT"):
		return errCluster(op)
	case goredis.IsReadOnlyError(err):
		ce.Kind, ce.Hint = connector.KindInvalid, "the URL points at a read-only replica; erasure needs the primary"
	case goredis.HasErrorPrefix(err, "DB index is out of range"):
		ce.Kind, ce.Hint = connector.KindInvalid, "the database number in the URL does not exist on the server"
	case goredis.HasErrorPrefix(err, "unknown command"):
		ce.Kind, ce.Hint = connector.KindRejected, "the server does not know a command the connector needs (it needs Redis 4.0 or later, with UNLINK, SCAN and TYPE not renamed)"
	}
	if ce.Hint != "" {
		e.msg = ce.Hint + ": " + e.msg
	}
	return ce
}

func contextCode(err error) string {
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	return "timeout"
}

// errorPrefix is the error code a Redis server puts first in an error reply ("WRONGTYPE",
// "NOPERM", "ERR"): upper-case letters only, so that no free text passes as a code.
func errorPrefix(err error) string {
	var re goredis.Error
	if !errors.As(err, &re) {
		return ""
	}
	word, _, _ := strings.Cut(re.Error(), " ")
	if word == "" || len(word) > 32 {
		return ""
	}
	for _, r := range word {
		if r < 'A' || r > 'Z' {
			return ""
		}
	}
	return "Redis " + word
}

// refused is a refusal the connector decided itself (an ambiguous pattern, a scan limit): its
// text is the connector's own, naming identifiers and patterns but never a value, so it is shown
// as the hint.
func refused(op, location string, err error) error {
	return &connector.Error{Kind: connector.KindRejected, Op: op, Location: location, Hint: err.Error(), Err: err}
}

// scrub removes identifier values and echoed command arguments from a message and bounds its
// length. Values go first, so that truncation cannot leave part of one behind.
func scrub(msg string, ids connector.Identifiers) string {
	msg = ids.Scrub(msg)
	// "ERR unknown command 'X', with args beginning with: 'session:alice:1'" quotes keys.
	if i := strings.Index(msg, ", with args beginning with"); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "..."
	}
	return strings.ToValidUTF8(msg, "?")
}
