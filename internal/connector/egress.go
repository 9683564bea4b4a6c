package connector

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/dsr-operator/dsr-operator/internal/egress"
)

// DialFunc is the dial function every connector hands its driver.
type DialFunc = func(ctx context.Context, network, address string) (net.Conn, error)

// DialContext returns a dial function that checks every connection against cfg.Egress (the
// default policy when nil) before a packet is sent. A refusal is a KindEgressDenied *Error that
// drivers pass on inside their own errors, so that KindOf still finds it.
func (cfg Config) DialContext(timeout time.Duration) DialFunc {
	return DialThrough(cfg.Egress, timeout)
}

// DialThrough is Config.DialContext for callers that only hold the policy.
func DialThrough(policy *egress.Policy, timeout time.Duration) DialFunc {
	dial := policy.OrDefault().DialContext(&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second})
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		conn, err := dial(ctx, network, address)
		var denied *egress.DeniedError
		if errors.As(err, &denied) {
			return nil, &Error{Kind: KindEgressDenied, Op: "connect", Err: denied}
		}
		return conn, err
	}
}
