// Package fake is a scriptable connector for tests: a test says what each operation returns (or
// fails with), call after call, and reads back how often each was called. It is registered under
// a store type of its own, never used by the operator itself.
package fake

import (
	"context"
	"sync"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// StoreType is the test-only store type the fake provider is registered under.
const StoreType privacyv1alpha1.StoreType = "fake"

// Op is a connector operation.
type Op string

const (
	OpCheck   Op = "check"
	OpCollect Op = "collect"
	// OpPlan is an Erase with DryRun set.
	OpPlan   Op = "plan"
	OpErase  Op = "erase"
	OpVerify Op = "verify"
)

// Result is what one call of an operation returns: the field of its operation, or Err.
type Result struct {
	Erase      *connector.EraseResult
	Verify     *connector.VerifyResult
	Collection *connector.Collection
	Err        error
}

// Client is a connector.Client that answers from scripts. Its zero value answers every operation
// with an empty success. It is safe for concurrent use.
type Client struct {
	mu      sync.Mutex
	scripts map[Op][]Result
	calls   map[Op]int
	ids     map[Op][]string
	closed  bool
}

// NewClient returns a client that answers with empty successes until scripted.
func NewClient() *Client { return &Client{} }

// On scripts op: the n-th call returns results[n]; calls after the last repeat it.
func (c *Client) On(op Op, results ...Result) *Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.scripts == nil {
		c.scripts = map[Op][]Result{}
	}
	c.scripts[op] = results
	return c
}

// Calls returns how often op was called.
func (c *Client) Calls(op Op) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

// IDs returns the request IDs op was called with, in order.
func (c *Client) IDs(op Op) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ids[op]...)
}

// Closed reports whether Close was called.
func (c *Client) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *Client) record(op Op, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = map[Op][]string{}
	}
	c.ids[op] = append(c.ids[op], id)
}

func (c *Client) next(op Op) Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[Op]int{}
	}
	n := c.calls[op]
	c.calls[op]++
	script := c.scripts[op]
	if len(script) == 0 {
		return Result{}
	}
	return script[min(n, len(script)-1)]
}

func (c *Client) Check(context.Context) (*connector.CheckResult, error) {
	if r := c.next(OpCheck); r.Err != nil {
		return nil, r.Err
	}
	return &connector.CheckResult{}, nil
}

func (c *Client) Collect(context.Context, connector.Request) (*connector.Collection, error) {
	r := c.next(OpCollect)
	if r.Err != nil {
		return nil, r.Err
	}
	if r.Collection == nil {
		return &connector.Collection{}, nil
	}
	return r.Collection, nil
}

func (c *Client) Erase(_ context.Context, req connector.Request) (*connector.EraseResult, error) {
	op := OpErase
	if req.DryRun {
		op = OpPlan
	}
	c.record(op, req.ID)
	r := c.next(op)
	if r.Err != nil {
		return nil, r.Err
	}
	if r.Erase == nil {
		return &connector.EraseResult{}, nil
	}
	return r.Erase, nil
}

func (c *Client) Verify(context.Context, connector.Request) (*connector.VerifyResult, error) {
	r := c.next(OpVerify)
	if r.Err != nil {
		return nil, r.Err
	}
	if r.Verify == nil {
		return &connector.VerifyResult{}, nil
	}
	return r.Verify, nil
}

func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// Provider hands out the Client registered for a store's name.
type Provider struct {
	mu      sync.Mutex
	clients map[string]*Client
}

// Set makes the store named name use cl.
func (p *Provider) Set(name string, cl *Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clients == nil {
		p.clients = map[string]*Client{}
	}
	p.clients[name] = cl
}

// ValidateSpec accepts every spec.
func (p *Provider) ValidateSpec(*privacyv1alpha1.DataStoreSpec) error { return nil }

// NewClient returns the Client set for cfg.Name.
func (p *Provider) NewClient(_ context.Context, cfg connector.Config) (connector.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cl, ok := p.clients[cfg.Name]
	if !ok {
		return nil, connector.Errorf(connector.KindInvalid, "connect", "no fake client for store %q", cfg.Name)
	}
	return cl, nil
}

var (
	registerOnce sync.Once
	registered   = &Provider{}
)

// Register registers the fake provider under StoreType (once per process) and returns it.
func Register() *Provider {
	registerOnce.Do(func() { connector.Register(StoreType, registered) })
	return registered
}

// Unavailable is an error the operator classifies as transient (the store is retried with backoff).
func Unavailable(op string) error {
	return connector.Errorf(connector.KindUnavailable, op, "fake store unavailable")
}

// Failed is an error the operator classifies as permanent (the store is retried slowly).
func Failed(op string) error {
	return connector.Errorf(connector.KindRejected, op, "fake store refused the operation")
}

// IdentifierNames accepts any identifier: a fake store's behaviour is scripted by the test, not
// derived from a mapping.
func (p *Provider) IdentifierNames(*privacyv1alpha1.DataStoreSpec) (names []string, acceptsAny bool) {
	return nil, true
}
