package httpstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"unicode"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

var _ connector.Sweeper = (*Client)(nil)

// maxSweepRefBytes bounds a digest's ref, which the client sends back to resolve it.
const maxSweepRefBytes = 200

// maxSweepCursorBytes bounds the cursor a service hands back between pages.
const maxSweepCursorBytes = 1024

// sweepKinds are the kinds a sweep asks digests for: those the DROP platform lists.
var sweepKinds = []string{string(normalize.Email), string(normalize.Phone)}

// Sweep asks a service that declares the sweep capability for salted digests of its stored
// emails and phone numbers, a page at a time (POST /v1/sweep), matches them against the list
// (opts.Digests), and asks the values of the matches only (POST /v1/sweep/resolve), so that
// nothing about anyone else leaves the service. Each resolved value is checked against its
// digest before it is visited: a service cannot make the operator erase a bystander by
// answering the wrong value. See docs/connector-protocol.md, "Sweeps".
func (c *Client) Sweep(ctx context.Context, opts connector.SweepOptions, visit func(connector.SweepHit) error) (*connector.SweepStats, error) {
	const op = "sweep"
	offered, err := c.offersSweep(ctx)
	if err != nil {
		return nil, err
	}
	if !offered {
		return nil, connector.ErrSweepNotOffered
	}
	if opts.Digests == nil || opts.Digests.Match == nil || len(opts.Digests.Salt) == 0 {
		return nil, connector.ErrSweepNeedsDigests
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	req := sweepRequest{ProtocolVersion: ProtocolVersion, SweepID: hex.EncodeToString(id[:]),
		Salt: base64.StdEncoding.EncodeToString(opts.Digests.Salt), Kinds: sweepKinds, PageSize: opts.PageSizeOrDefault()}
	stats := &connector.SweepStats{}
	pacer := connector.NewPacer(opts.RowsPerSecond)
	seenCursors := map[string]bool{}
	for {
		body, _ := json.Marshal(req)
		var res sweepResponse
		if _, err := c.post(ctx, call{op: op, body: body, limit: c.opts.MaxResponseBytes}, &res); err != nil {
			return stats, err
		}
		if res.Digests == nil || res.NextCursor == nil {
			return stats, c.protocolError(op, "digests and nextCursor are required")
		}
		hits := map[string]wireDigest{}
		for i, d := range res.Digests {
			salted, kind, problem := checkDigest(d)
			if problem != "" {
				return stats, c.protocolError(op, "digests[%d]: %s", i, problem)
			}
			stats.Scanned++
			if opts.Digests.Match(kind, salted) {
				hits[d.Ref] = d
			}
		}
		if len(hits) > 0 {
			if err := c.resolveHits(ctx, req.SweepID, opts.Digests.Salt, hits, visit); err != nil {
				return stats, err
			}
		}
		next := *res.NextCursor
		if next == "" {
			return stats, nil
		}
		if len(next) > maxSweepCursorBytes || seenCursors[next] {
			// A cursor seen before would sweep forever.
			return stats, c.protocolError(op, "nextCursor is longer than %d bytes or repeats an earlier one", maxSweepCursorBytes)
		}
		seenCursors[next] = true
		req.Cursor = next
		if err := pacer.Wait(ctx, len(res.Digests)); err != nil {
			return stats, err
		}
	}
}

// offersSweep asks /v1/check whether the service declares the sweep capability.
func (c *Client) offersSweep(ctx context.Context) (bool, error) {
	body, _ := json.Marshal(checkRequest{ProtocolVersion: ProtocolVersion})
	var res checkResponse
	if _, err := c.post(ctx, call{op: "check", body: body, limit: c.opts.MaxResponseBytes}, &res); err != nil {
		return false, err
	}
	return slices.Contains(res.Capabilities, CapabilitySweep), nil
}

// checkDigest validates one digest row; problem never quotes the row's ref or digest.
func checkDigest(d wireDigest) (salted [sha256.Size]byte, kind normalize.Kind, problem string) {
	switch {
	case d.Ref == "" || len(d.Ref) > maxSweepRefBytes || !isHeaderToken(d.Ref):
		return salted, "", "ref must be 1 to 200 visible ASCII characters"
	case strings.TrimSpace(d.Location) == "":
		return salted, "", "location is missing"
	case strings.TrimSpace(d.Identifier) == "":
		return salted, "", "identifier is missing"
	case !slices.Contains(sweepKinds, d.Kind):
		return salted, "", "kind must be email or phone"
	}
	raw, err := base64.StdEncoding.DecodeString(d.Digest)
	if err != nil || len(raw) != sha256.Size {
		return salted, "", "digest must be the standard base64 of 32 bytes"
	}
	copy(salted[:], raw)
	return salted, normalize.Kind(d.Kind), ""
}

// resolveHits asks the values of the matched refs, checks each against its digest and visits it.
func (c *Client) resolveHits(ctx context.Context, sweepID string, salt []byte, hits map[string]wireDigest,
	visit func(connector.SweepHit) error) error {
	const op = "sweep/resolve"
	refs := slices.Sorted(func(yield func(string) bool) {
		for r := range hits {
			if !yield(r) {
				return
			}
		}
	})
	body, _ := json.Marshal(resolveRequest{ProtocolVersion: ProtocolVersion, SweepID: sweepID, Refs: refs})
	var res resolveResponse
	if _, err := c.post(ctx, call{op: op, body: body, limit: c.opts.MaxResponseBytes}, &res); err != nil {
		return err
	}
	if res.Values == nil {
		return c.protocolError(op, "values is required")
	}
	done := map[string]bool{}
	for i, v := range res.Values {
		d, asked := hits[v.Ref]
		if !asked || done[v.Ref] {
			return c.protocolError(op, "values[%d]: a ref that was not asked, or answered twice", i)
		}
		done[v.Ref] = true
		kind := normalize.Kind(d.Kind)
		h, ok := dropHash(kind, v.Value)
		if !ok || connector.SaltedDigest(salt, h) != mustDigest(d.Digest) {
			return c.protocolError(op, "values[%d]: the value does not have its ref's digest", i)
		}
		hit := connector.SweepHit{Location: sanitize(d.Location, nil, MaxLocationBytes),
			Identifier: sanitize(d.Identifier, nil, MaxLocationBytes), Kind: kind, Value: v.Value, Retained: d.Retained}
		if err := visit(hit); err != nil {
			return err
		}
	}
	// A ref not answered is a record gone since its page was read: nothing to erase.
	return nil
}

func mustDigest(s string) (out [sha256.Size]byte) {
	raw, _ := base64.StdEncoding.DecodeString(s)
	copy(out[:], raw)
	return out
}

// dropHash is SHA-256 of value normalised as the DROP platform prescribes, as the service must
// compute it (docs/connector-protocol.md): an email trimmed and lower-cased, a phone number's
// digits, the last ten of them. It must agree with suppression.DropHash (sweep_test.go checks).
func dropHash(kind normalize.Kind, value string) ([sha256.Size]byte, bool) {
	var norm string
	switch kind {
	case normalize.Email:
		norm = strings.ToLower(strings.TrimSpace(value))
	case normalize.Phone:
		var b strings.Builder
		for _, r := range value {
			if r >= '0' && r <= '9' {
				b.WriteRune(r)
			} else if unicode.IsDigit(r) {
				return [sha256.Size]byte{}, false
			}
		}
		norm = b.String()
		if len(norm) > 10 {
			norm = norm[len(norm)-10:]
		}
		if len(norm) != 10 {
			return [sha256.Size]byte{}, false
		}
	default:
		return [sha256.Size]byte{}, false
	}
	if norm == "" {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256([]byte(norm)), true
}
