package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/minio/minio-go/v7"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// codeError carries only the server's error code and HTTP status, or the network error beneath a
// failed request. S3 error replies quote the object key and request URLs hold it, and keys hold
// identifier values, so no server text and no URL is ever kept. Its only cause is a context
// error.
type codeError struct {
	msg   string
	cause error
}

func (e *codeError) Error() string { return e.msg }

func (e *codeError) Unwrap() error { return e.cause }

// fail turns err into a *connector.Error of the right kind whose message holds no key and no
// identifier value. location is the mapping's bucket and key template.
func fail(ctx context.Context, op, location string, err error) error {
	var ce *connector.Error
	if errors.As(err, &ce) {
		// Our own error (a refusal, the egress policy's), without the request URL around it.
		return ce
	}
	resp := minio.ToErrorResponse(err)
	e := &codeError{msg: "request failed"}
	ce = &connector.Error{Kind: connector.KindUnavailable, Op: op, Location: location, Err: e}
	if code := PlainCode(resp.Code); code != "" {
		ce.Code = "S3 " + code
		e.msg = fmt.Sprintf("S3 %s (HTTP %d)", code, resp.StatusCode)
	}
	switch {
	case ctx.Err() != nil:
		e.cause, ce.Code, e.msg = ctx.Err(), contextCode(ctx.Err()), ctx.Err().Error()
	case errors.Is(err, context.DeadlineExceeded):
		e.cause, ce.Code, e.msg = context.DeadlineExceeded, "timeout", "timeout"
	case resp.Code == "":
		e.msg = NetworkText(err)
	default:
		switch resp.Code {
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "ExpiredToken", "InvalidToken":
			ce.Kind, ce.Hint = connector.KindAuth, "the endpoint refused the credentials or the operation; see docs/datastores.md for the permissions the connector needs"
		case "NoSuchBucket":
			ce.Kind, ce.Hint = connector.KindMapping, "the bucket does not exist"
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "XMinioServerNotInitialized":
		default:
			if resp.StatusCode >= 400 && resp.StatusCode < 500 {
				ce.Kind = connector.KindRejected
			}
		}
	}
	if ce.Hint != "" {
		e.msg = ce.Hint + ": " + e.msg
	}
	return ce
}

// NetworkText describes a failure without a server reply by the kind of network error only: the
// error's own text holds the request URL, and so the key (the export destination uses it too).
func NetworkText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var egress *connector.Error
	if errors.As(err, &egress) {
		return egress.Error()
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Sprintf("network error (%s %s)", oe.Op, oe.Net)
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "the endpoint's host name does not resolve"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "network error"
}

func contextCode(err error) string {
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	return "timeout"
}

// PlainCode keeps an S3 error code only if it is a short word of letters and digits, so that no
// free text passes as a code.
func PlainCode(code string) string {
	if code == "" || len(code) > 64 {
		return ""
	}
	for _, r := range code {
		if (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return ""
		}
	}
	return code
}

// refused is a refusal the connector decided itself (a hostile value, a scan limit): its text is
// the connector's own, naming identifiers and keys templates but never a value.
func refused(op, location string, err error) error {
	return &connector.Error{Kind: connector.KindRejected, Op: op, Location: location, Hint: err.Error(), Err: err}
}

// isNotFound reports a reply saying there is no lock configuration, retention or legal hold.
func isNotFound(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case "ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration", "NoSuchObjectLegalHold",
		"NoSuchObjectRetention", "InvalidRequest", "NoSuchKey", "NoSuchVersion", "MethodNotAllowed":
		return true
	}
	return false
}
