// Package httpstore is the connector for stores reached over HTTP: a service that speaks the
// dsr-operator connector protocol v1, described in docs/connector-protocol.md, in front of a
// system the operator cannot reach directly (a SaaS CRM, a data processor, a team's own API).
// Blank-import it to register it:
//
//	import _ "github.com/dsr-operator/dsr-operator/internal/connector/httpstore"
//
// spec.connection.url is the base URL; the endpoints are {url}/v1/check, /v1/collect,
// /v1/erase and /v1/verify, all POST with a JSON body. The Secret is the bearer token; the CA
// bundle, when set, is the only set of roots the service's certificate may chain to.
// test/refservice is a reference implementation of the service side.
//
// # Sweeps
//
// A service that lists "sweep" in its check answer's capabilities can be swept for a DROP
// suppression list (Client.Sweep, sweep.go): it sends salted digests of its emails and phone
// numbers, never their values; the client matches them and asks the values of the matches only.
//
// # Idempotency and slow services
//
// Every collect, erase and verify carries an Idempotency-Key derived from Request.ID and the
// operation. A service that needs time answers 202 Accepted; the client then reports Pending
// and the caller polls by calling again with the same Request: the service finds the job by the
// key. A real erasure's result is kept by the service under its key and returned unchanged for
// every repeat, so a retried erasure neither runs twice nor counts twice. This differs from the
// SQL and Redis connectors, whose second Erase finds nothing left and answers zero counts: the
// caller records the counts of the first successful (non-pending) answer and treats later
// answers as confirmation only. To erase again data that reappeared, use a new Request.ID:
// with the same one the service only replays its first answer.
//
// # Errors
//
// 401 and 403, and a TLS certificate that does not verify, are KindAuth; 408, 425, 429, 5xx
// (except 501), connection failures and timeouts are KindUnavailable, and an error's
// RetryAfter method (see StatusError) returns the service's Retry-After; 404, 405 and 501 (the
// URL serves no such endpoint), redirects, and answers that break the protocol are KindInvalid;
// every other 4xx is KindRejected. Messages from the service are scrubbed of the request's
// identifier values (also in other letter cases and in JSON, URL and HTML escaped forms),
// stripped of control characters and cut to MaxMessageBytes. Location names and retain reasons
// in results are scrubbed too.
package httpstore
