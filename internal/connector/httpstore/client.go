package httpstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// maxRequestIDBytes bounds Request.ID, which travels in the Idempotency-Key header.
const maxRequestIDBytes = 200

// maxDrainBytes is how much of an answer's unread rest is read so that its connection can be
// reused; a longer rest closes the connection instead.
const maxDrainBytes = 64 << 10

// Client talks to one protocol v1 service.
type Client struct {
	name        string
	base        *url.URL
	token       string
	hasCABundle bool
	transport   *http.Transport
	http        *http.Client
	timeout     time.Duration
	opts        Options
	// region is sent as defaultRegion, for the service's phone comparisons.
	region string
}

var _ connector.Client = (*Client)(nil)

// Check asks the service whether it can serve requests.
func (c *Client) Check(ctx context.Context) (*connector.CheckResult, error) {
	const op = "check"
	body, _ := json.Marshal(checkRequest{ProtocolVersion: ProtocolVersion})
	var res checkResponse
	pending, err := c.post(ctx, call{op: op, body: body, limit: c.opts.MaxResponseBytes}, &res)
	if err != nil {
		return nil, err
	}
	if pending {
		return nil, c.protocolError(op, "check must answer 200, not 202")
	}
	if res.OK == nil {
		return nil, c.protocolError(op, "ok is missing")
	}
	if !*res.OK {
		msg := sanitize(res.Message, nil, MaxMessageBytes)
		if msg == "" {
			msg = "no reason given"
		}
		return nil, connector.Errorf(connector.KindRejected, op, "POST %s: the service reports that it cannot serve requests: %s", c.endpoint(op), msg)
	}
	out := &connector.CheckResult{}
	for i, w := range res.Warnings {
		if i == MaxWarnings {
			out.Warnings = append(out.Warnings, fmt.Sprintf("(%d more warnings from the service)", len(res.Warnings)-MaxWarnings))
			break
		}
		if w = sanitize(w, nil, MaxMessageBytes); w != "" {
			out.Warnings = append(out.Warnings, w)
		}
	}
	if c.base.Scheme == "http" && !isLoopback(c.base.Hostname()) {
		out.Warnings = append(out.Warnings, "connection.url is http://: the bearer token and the subjects' identifiers cross the network unencrypted")
	}
	if c.token == "" {
		out.Warnings = append(out.Warnings, "the service answers without a bearer token: connection.secretRef is not set")
	}
	return out, nil
}

// Collect asks for every record the service holds about the subject.
func (c *Client) Collect(ctx context.Context, req connector.Request) (*connector.Collection, error) {
	const op = "collect"
	var res collectResponse
	pending, err := c.operation(ctx, op, "collect", req, c.opts.MaxCollectBytes, &res)
	if err != nil {
		return nil, err
	}
	if pending {
		return &connector.Collection{Pending: true}, nil
	}
	if res.Records == nil {
		return nil, c.protocolError(op, "records is missing")
	}
	out := &connector.Collection{Records: make([]connector.Record, 0, len(res.Records))}
	for i, r := range res.Records {
		if strings.TrimSpace(r.Location) == "" {
			return nil, c.protocolError(op, "records[%d] has no location", i)
		}
		if r.Data == nil {
			return nil, c.protocolError(op, "records[%d] has no data object", i)
		}
		// Key and data are the subject's own, for the subject's export: they are not scrubbed.
		out.Records = append(out.Records, connector.Record{
			Location: sanitize(r.Location, req.Identifiers, MaxLocationBytes),
			Key:      r.Key,
			Data:     r.Data,
		})
	}
	return out, nil
}

// Erase asks the service to erase the subject's data, or with req.DryRun to count what it
// would do. A repeat with the same req.ID returns the first answer: see the package doc.
func (c *Client) Erase(ctx context.Context, req connector.Request) (*connector.EraseResult, error) {
	const op = "erase"
	keyOp := "erase"
	if req.DryRun {
		keyOp = "erase-dryrun"
	}
	var res eraseResponse
	pending, err := c.operation(ctx, op, keyOp, req, c.opts.MaxResponseBytes, &res)
	if err != nil {
		return nil, err
	}
	if pending {
		return &connector.EraseResult{Pending: true}, nil
	}
	var problems []string
	erased := count(&problems, "erased", res.Erased)
	masked := count(&problems, "masked", res.Masked)
	retained := count(&problems, "retained", res.Retained)
	locations := locationCounts(&problems, "retainedLocations", res.RetainedLocations, retained, true, req.Identifiers)
	if len(problems) > 0 {
		return nil, c.protocolError(op, "%s", strings.Join(problems, "; "))
	}
	return &connector.EraseResult{Erased: erased, Masked: masked, Retained: retained, RetainedLocations: locations}, nil
}

// Verify asks the service what still identifies the subject.
func (c *Client) Verify(ctx context.Context, req connector.Request) (*connector.VerifyResult, error) {
	const op = "verify"
	keyOp := "verify"
	if req.Deep {
		keyOp = "verify-deep"
	}
	var res verifyResponse
	pending, err := c.operation(ctx, op, keyOp, req, c.opts.MaxResponseBytes, &res)
	if err != nil {
		return nil, err
	}
	if pending {
		return &connector.VerifyResult{Pending: true}, nil
	}
	var problems []string
	remaining := count(&problems, "remaining", res.Remaining)
	retained := count(&problems, "retained", res.Retained)
	remainingLocations := locationCounts(&problems, "remainingLocations", res.RemainingLocations, remaining, false, req.Identifiers)
	retainedLocations := locationCounts(&problems, "retainedLocations", res.RetainedLocations, retained, true, req.Identifiers)
	if len(problems) > 0 {
		return nil, c.protocolError(op, "%s", strings.Join(problems, "; "))
	}
	return &connector.VerifyResult{
		Remaining: remaining, RemainingLocations: remainingLocations,
		Retained: retained, RetainedLocations: retainedLocations,
	}, nil
}

// Close drops the client's idle connections.
func (c *Client) Close() error {
	c.transport.CloseIdleConnections()
	return nil
}

// operation posts a collect, erase or verify request. keyOp names the operation in the
// Idempotency-Key; it tells a dry run from an erasure and a deep verify from a plain one, so
// that the service never confuses their jobs.
func (c *Client) operation(ctx context.Context, op, keyOp string, req connector.Request, limit int64, into answer) (bool, error) {
	if req.ID == "" || len(req.ID) > maxRequestIDBytes || !isHeaderToken(req.ID) {
		return false, connector.Errorf(connector.KindRejected, op, "the request ID must be 1 to %d visible ASCII characters: it is sent as the Idempotency-Key", maxRequestIDBytes)
	}
	ids, kinds := map[string]string{}, map[string]string{}
	for name, v := range req.Identifiers {
		if v != "" {
			ids[name] = v
			kinds[name] = string(normalize.KindFor(name, ""))
		}
	}
	values := wireValues(req)
	promote := len(ids) == 0
	for name, vs := range values {
		kinds[name] = string(normalize.KindFor(name, ""))
		// A request known only by further values (a sweep's finds) still names its first
		// value of each identifier in identifiers, which every v1 service requires and reads.
		if i := slices.IndexFunc(vs, func(v string) bool { return v != "" }); promote && i >= 0 {
			ids[name] = vs[i]
		}
	}
	if len(ids) == 0 && len(values) == 0 {
		// A careless service could read an empty set of identifiers as "everyone".
		return false, connector.Errorf(connector.KindRejected, op, "the request has no identifier values; nothing is sent")
	}
	body, err := json.Marshal(operationRequest{
		ProtocolVersion: ProtocolVersion,
		RequestID:       req.ID,
		Identifiers:     ids,
		Values:          values,
		IdentifierKinds: kinds,
		DefaultRegion:   c.region,
		DryRun:          req.DryRun,
		Deep:            req.Deep,
	})
	if err != nil {
		return false, connector.Errorf(connector.KindRejected, op, "the request cannot be encoded as JSON")
	}
	return c.post(ctx, call{op: op, key: req.ID + "-" + keyOp, body: body, limit: limit, ids: scrubIdentifiers(req), pendingOK: true}, into)
}

// call is one POST to the service.
type call struct {
	op        string
	key       string
	body      []byte
	limit     int64
	ids       connector.Identifiers
	pendingOK bool
}

func (c *Client) endpoint(op string) string {
	return c.base.JoinPath("v1", op).String()
}

// post sends a call and decodes the answer into into as it arrives (see answer.go); pending
// reports a 202.
func (c *Client) post(ctx context.Context, cl call, into answer) (bool, error) {
	endpoint := c.endpoint(cl.op)
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(cl.body))
	if err != nil {
		return false, connector.Errorf(connector.KindInvalid, cl.op, "POST %s: the request cannot be built", endpoint)
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")
	httpReq.Header.Set("User-Agent", "dsr-operator-http-connector/"+ProtocolVersion)
	if c.token != "" {
		httpReq.Header.Set("Authorization", "Bearer "+c.token)
	}
	if cl.key != "" {
		// The header also lets Go's transport resend the POST when a pooled connection turns
		// out to be dead before the service saw the request.
		httpReq.Header.Set("Idempotency-Key", cl.key)
	}
	resp, err := c.http.Do(httpReq)
	if err != nil {
		var ce *connector.Error
		if errors.As(err, &ce) && ce.Kind == connector.KindEgressDenied {
			return false, connector.Wrap(connector.KindEgressDenied, cl.op, fmt.Errorf("POST %s: %w", endpoint, ce.Err))
		}
		return false, c.transportError(cl.op, err, cl.ids)
	}
	defer func() {
		// Drain a little so the connection can be reused; a bigger rest is not worth reading.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
		_ = resp.Body.Close()
	}()

	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusAccepted:
		if !cl.pendingOK {
			return false, c.protocolError(cl.op, "%s must answer 200, not 202", cl.op)
		}
	default:
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return false, c.protocolError(cl.op, "status %d: only 200 and 202 are answers", resp.StatusCode)
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return false, connector.Errorf(connector.KindInvalid, cl.op,
				"POST %s: the service redirects (HTTP %d), which the connector does not follow: set connection.url to the service's final address",
				endpoint, resp.StatusCode)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, min(maxErrorBodyBytes, c.opts.MaxResponseBytes)))
		se := statusError(endpoint, resp, body, cl.ids)
		return false, c.statusFailure(cl.op, se)
	}

	if !isJSON(resp.Header.Get("Content-Type")) {
		return false, c.protocolError(cl.op, "the answer is not application/json: is connection.url the base URL of a protocol %s service?", ProtocolVersion)
	}
	if resp.ContentLength > cl.limit {
		return false, c.tooLarge(cl.op, cl.limit)
	}
	body := newCappedReader(resp.Body, cl.limit)
	fieldErr, err := decodeAnswer(body, into)
	switch {
	case body.over:
		return false, c.tooLarge(cl.op, cl.limit)
	case body.readErr != nil:
		return false, c.transportError(cl.op, body.readErr, cl.ids)
	case err != nil:
		return false, c.protocolError(cl.op, "%s", err.Error())
	}
	accepted := resp.StatusCode == http.StatusAccepted
	if err := c.checkEnvelope(cl.op, *into.header(), accepted); err != nil {
		return false, err
	}
	if fieldErr != nil && !accepted {
		// The decoder's message names fields and types; scrub it anyway, it may quote input.
		return false, c.protocolError(cl.op, "%s", sanitize(fieldErr.Error(), cl.ids, MaxMessageBytes))
	}
	return accepted, nil
}

func (c *Client) checkEnvelope(op string, env envelope, accepted bool) error {
	switch {
	case env.ProtocolVersion == "":
		return c.protocolError(op, "protocolVersion is missing: is connection.url the base URL of a protocol %s service?", ProtocolVersion)
	case env.ProtocolVersion != ProtocolVersion:
		return c.protocolError(op, "the service speaks protocol %q", sanitize(env.ProtocolVersion, nil, MaxCodeBytes))
	case accepted && env.Status != "pending":
		return c.protocolError(op, `a 202 answer must have status "pending"`)
	case !accepted && env.Status != "" && env.Status != "done":
		return c.protocolError(op, `a 200 answer must have status "done" or none`)
	}
	return nil
}

func (c *Client) tooLarge(op string, limit int64) error {
	return connector.Errorf(connector.KindRejected, op, "POST %s: the answer exceeds the limit of %s", c.endpoint(op), formatBytes(limit))
}

func isJSON(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"))
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// count checks a required, non-negative count.
func count(problems *[]string, field string, v *int64) int64 {
	switch {
	case v == nil:
		*problems = append(*problems, field+" is missing")
	case *v < 0:
		*problems = append(*problems, field+" is negative")
	default:
		return *v
	}
	return 0
}

// locationCounts checks a list of locations against its total and converts it. Retained
// locations must give their reason.
func locationCounts(problems *[]string, field string, in []wireLocationCount, total int64, retained bool, ids connector.Identifiers) []connector.LocationCount {
	var out []connector.LocationCount
	var sum int64
	for i, l := range in {
		switch {
		case strings.TrimSpace(l.Location) == "":
			*problems = append(*problems, fmt.Sprintf("%s[%d] has no location", field, i))
		case l.Records == nil || *l.Records < 0:
			*problems = append(*problems, fmt.Sprintf("%s[%d] has no valid records count", field, i))
		case retained && strings.TrimSpace(l.Reason) == "":
			*problems = append(*problems, fmt.Sprintf("%s[%d] has no reason", field, i))
		default:
			sum += *l.Records
			lc := connector.LocationCount{Location: sanitize(l.Location, ids, MaxLocationBytes), Records: *l.Records}
			if retained {
				lc.Reason = sanitize(l.Reason, ids, MaxReasonBytes)
			}
			out = append(out, lc)
		}
	}
	if sum != total && len(*problems) == 0 {
		*problems = append(*problems, fmt.Sprintf("the records of %s add up to %d, not %d", field, sum, total))
	}
	return out
}

// wireValues is every value of the request when it has more than the identifiers' single values
// (Request.Values), else nil: the field is left out and the body is what v1 always sent.
func wireValues(req connector.Request) map[string][]string {
	if req.Values.Count() == 0 {
		return nil
	}
	return req.AllValues()
}

// scrubIdentifiers are the values an error message from the service is scrubbed of: every value
// sent, one name per value.
func scrubIdentifiers(req connector.Request) connector.Identifiers {
	out := connector.Identifiers{}
	for name, v := range req.Identifiers {
		out[name] = v
	}
	i := 0
	for _, values := range req.AllValues() {
		for _, v := range values {
			out[fmt.Sprintf("value-%d", i)] = v
			i++
		}
	}
	return out
}
