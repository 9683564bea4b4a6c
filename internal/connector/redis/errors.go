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
func fail(ctx context.Context, op string, err error, ids connector.Identifiers) error {
	var ce *connector.Error
	if errors.As(err, &ce) {
		return err
	}
	text := scrub(err.Error(), ids)
	e := &scrubbedError{msg: text}
	kind := connector.KindUnavailable
	_, moved := goredis.IsMovedError(err)
	_, ask := goredis.IsAskError(err)
	switch {
	case ctx.Err() != nil:
		// go-redis reports a deadline it set from ctx as an i/o timeout.
		e.cause = ctx.Err()
		e.msg = fmt.Sprintf("%v (%s)", ctx.Err(), text)
	case errors.Is(err, context.DeadlineExceeded):
		e.cause = context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		e.cause = context.Canceled
	case goredis.IsAuthError(err):
		kind = connector.KindAuth
		e.msg = "the server refused the credentials: " + text
	case goredis.IsPermissionError(err):
		kind = connector.KindAuth
		e.msg = "the Redis user lacks a permission the connector needs: " + text
	case moved, ask, goredis.IsClusterDownError(err), goredis.HasErrorPrefix(err, "CROSSSLOT"):
		return errCluster(op)
	case goredis.IsReadOnlyError(err):
		kind = connector.KindInvalid
		e.msg = "the URL points at a read-only replica; erasure needs the primary: " + text
	case goredis.HasErrorPrefix(err, "DB index is out of range"):
		kind = connector.KindInvalid
		e.msg = "the database number in the URL does not exist on the server: " + text
	case goredis.HasErrorPrefix(err, "unknown command"):
		kind = connector.KindRejected
		e.msg = "the server does not know a command the connector needs (it needs Redis 4.0 or later, with UNLINK, SCAN and TYPE not renamed): " + text
	}
	return &connector.Error{Kind: kind, Op: op, Err: e}
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
