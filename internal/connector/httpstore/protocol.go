package httpstore

// The wire format of protocol v1 (docs/connector-protocol.md). Required fields of answers are
// pointers, so that a missing one is told from a zero: a service that answers {} must not pass
// for one that erased nothing.

type checkRequest struct {
	ProtocolVersion string `json:"protocolVersion"`
}

type operationRequest struct {
	ProtocolVersion string            `json:"protocolVersion"`
	RequestID       string            `json:"requestId"`
	Identifiers     map[string]string `json:"identifiers"`
	// Values holds every value of every identifier, several per name (a second email, the
	// derived order ids of linked data). Sent only when the request has more than the
	// identifiers' single values, so that a v1 service that ignores it still acts on identifiers.
	Values map[string][]string `json:"values,omitempty"`
	// IdentifierKinds says how each identifier's values compare: email, phone or exact (by the
	// identifier's name, see internal/normalize). Additive to v1: a service that ignores it
	// compares exactly, as before.
	IdentifierKinds map[string]string `json:"identifierKinds"`
	// DefaultRegion places phone numbers written without a country code; absent when unset.
	DefaultRegion string `json:"defaultRegion,omitempty"`
	DryRun        bool   `json:"dryRun"`
	Deep          bool   `json:"deep"`
}

// envelope starts every 200 and 202 answer; each answer type embeds it.
type envelope struct {
	ProtocolVersion string `json:"protocolVersion"`
	// Status is "pending" in a 202 answer, "done" or absent in a 200 answer.
	Status string `json:"status"`
}

type checkResponse struct {
	envelope
	OK       *bool    `json:"ok"`
	Warnings []string `json:"warnings"`
	Message  string   `json:"message"`
	// Capabilities lists optional parts of the protocol the service serves ("sweep"). Additive
	// to v1: a service without it serves the four endpoints only.
	Capabilities []string `json:"capabilities"`
}

type wireLocationCount struct {
	Location string `json:"location"`
	Records  *int64 `json:"records"`
	Reason   string `json:"reason"`
}

type eraseResponse struct {
	envelope
	Erased            *int64              `json:"erased"`
	Masked            *int64              `json:"masked"`
	Retained          *int64              `json:"retained"`
	RetainedLocations []wireLocationCount `json:"retainedLocations"`
}

type verifyResponse struct {
	envelope
	Remaining          *int64              `json:"remaining"`
	RemainingLocations []wireLocationCount `json:"remainingLocations"`
	Retained           *int64              `json:"retained"`
	RetainedLocations  []wireLocationCount `json:"retainedLocations"`
}

type collectResponse struct {
	envelope
	Records wireRecords `json:"records"`
}

// wireRecords are read one record at a time (see answer.go).
type wireRecords []wireRecord

type wireRecord struct {
	Location string         `json:"location"`
	Key      string         `json:"key"`
	Data     map[string]any `json:"data"`
}

// CapabilitySweep is the capability of a service that answers /v1/sweep and /v1/sweep/resolve.
const CapabilitySweep = "sweep"

type sweepRequest struct {
	ProtocolVersion string `json:"protocolVersion"`
	SweepID         string `json:"sweepId"`
	// Salt is standard base64 of SweepSaltSize random bytes.
	Salt     string   `json:"salt"`
	Kinds    []string `json:"kinds"`
	Cursor   string   `json:"cursor"`
	PageSize int      `json:"pageSize"`
}

type sweepResponse struct {
	envelope
	Digests    []wireDigest `json:"digests"`
	NextCursor *string      `json:"nextCursor"`
}

type wireDigest struct {
	Ref        string `json:"ref"`
	Location   string `json:"location"`
	Identifier string `json:"identifier"`
	Kind       string `json:"kind"`
	Digest     string `json:"digest"`
	Retained   bool   `json:"retained"`
}

type resolveRequest struct {
	ProtocolVersion string   `json:"protocolVersion"`
	SweepID         string   `json:"sweepId"`
	Refs            []string `json:"refs"`
}

type resolveResponse struct {
	envelope
	Values []wireResolved `json:"values"`
}

type wireResolved struct {
	Ref   string `json:"ref"`
	Value string `json:"value"`
}
