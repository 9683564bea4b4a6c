package deliver

import (
	"context"
	"errors"
	"fmt"

	"github.com/minio/minio-go/v7"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/s3"
)

// Error is a failed call to the destination, described by the S3 error code and HTTP status or
// the kind of network error: never the request's URL, nor the server's text.
type Error struct {
	Op  string
	Msg string
	// Transient failures are retried with the exponential backoff; the others slowly.
	Transient bool
}

func (e *Error) Error() string { return fmt.Sprintf("could not %s: %s", e.Op, e.Msg) }

// describe turns err into an *Error.
func describe(ctx context.Context, op string, err error) error {
	var ce *connector.Error
	if errors.As(err, &ce) && ce.Kind == connector.KindEgressDenied {
		return &Error{Op: op, Msg: ce.Error()}
	}
	if ctx.Err() != nil {
		return &Error{Op: op, Msg: ctx.Err().Error(), Transient: true}
	}
	resp := minio.ToErrorResponse(err)
	if code := s3.PlainCode(resp.Code); code != "" {
		e := &Error{Op: op, Msg: fmt.Sprintf("S3 %s (HTTP %d)", code, resp.StatusCode), Transient: resp.StatusCode >= 500 || resp.StatusCode == 429}
		switch code {
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
			e.Msg += ": the endpoint refused the destination's credentials or the operation"
		case "NoSuchBucket":
			e.Msg += ": the bucket does not exist"
		}
		return e
	}
	return &Error{Op: op, Msg: s3.NetworkText(err), Transient: true}
}

// IsTransient reports whether err is worth retrying soon.
func IsTransient(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Transient
}
