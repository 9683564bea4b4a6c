// Package connector is the one small interface between the request controllers and the stores that
// hold personal data. Each store type has a Provider in its own package, registered by type.
package connector

import (
	"context"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/egress"
)

// Provider builds clients for one store type. Providers are stateless and safe for concurrent use.
type Provider interface {
	// ValidateSpec checks what the CRD schema cannot (e.g. mask columns also used to match) without
	// any I/O. Its errors are of KindMapping.
	ValidateSpec(spec *privacyv1alpha1.DataStoreSpec) error
	// IdentifierNames returns the identifier names a spec's mapping matches on, so that a request
	// naming none of them is refused instead of erasing nothing. acceptsAny is true for a store
	// that decides itself which identifiers it uses (an http service): any name may be sent to it.
	IdentifierNames(spec *privacyv1alpha1.DataStoreSpec) (names []string, acceptsAny bool)
	// NewClient connects to the store described by cfg. The client is long-lived and pooled.
	NewClient(ctx context.Context, cfg Config) (Client, error)
}

// Config is what a provider needs to reach one store.
type Config struct {
	// Name identifies the store in messages, e.g. "DataStore shop/customers-db". Never a secret.
	Name string
	// Spec of the store.
	Spec *privacyv1alpha1.DataStoreSpec
	// Secret is the value under spec.connection.secretRef: a DSN, file path, URL or bearer token.
	Secret []byte
	// CABundle is the PEM bundle under spec.connection.caSecretRef (http and s3).
	CABundle []byte
	// HashSalt salts the "hash" mask strategy, so that hashed values still join inside a store
	// but cannot be looked up in a rainbow table.
	HashSalt []byte
	// Egress is the policy every connection to the store is checked against; nil is
	// egress.Default(). Use Config.DialContext to dial through it.
	Egress *egress.Policy
	// DefaultPhoneRegion places phone numbers written without a country code when the store's
	// spec.defaultRegion is unset (the manager's --default-phone-region), e.g. "US".
	DefaultPhoneRegion string
}

// PhoneRegion is the region that places phone numbers without a country code: the store's
// spec.defaultRegion, or else the manager's.
func (c Config) PhoneRegion() string {
	if c.Spec != nil && c.Spec.DefaultRegion != "" {
		return c.Spec.DefaultRegion
	}
	return c.DefaultPhoneRegion
}

// Client talks to one store. Every method honours ctx's deadline and cancellation, is safe for
// concurrent use, and never puts an identifier value into an error message.
type Client interface {
	// Check verifies that the connection works and every mapped table, column or key pattern is
	// usable. Problems that do not stop erasure (a matched column without an index) are warnings.
	Check(ctx context.Context) (*CheckResult, error)
	// Collect returns every record that the mapping attributes to the subject, for an access request.
	Collect(ctx context.Context, req Request) (*Collection, error)
	// Erase applies the mapping: delete, mask, retain. It is idempotent: a second call finds
	// nothing left to do and succeeds with zero counts. With req.DryRun it only counts.
	Erase(ctx context.Context, req Request) (*EraseResult, error)
	// Verify re-reads the store and counts what still identifies the subject (Remaining) and what is
	// kept on purpose (Retained). With req.Deep it also searches unmapped text columns.
	Verify(ctx context.Context, req Request) (*VerifyResult, error)
	// Close releases the client's connections.
	Close() error
}

// Request is one operation on behalf of one subject.
type Request struct {
	// ID is stable across retries of the same request (the request's UID); the http connector sends
	// it as the idempotency key.
	ID string
	// Identifiers of the subject, one value per name (the identifiers Secret). Never log them.
	Identifiers Identifiers
	// Values are further values of the subject's identifiers, several per name: more values of a
	// Secret identifier, and the derived identifiers of linked data (values read from the
	// provides columns of the subject's rows, see Deriver). Connectors match every value of
	// Identifiers and Values alike (Request.AllValues). Never log them.
	Values Values
	// Shared are derived values that also belong to someone else (an address another customer
	// lives at). A row reached only through them is never changed; it is counted as shared.
	// Never log them.
	Shared Values
	// DryRun: Erase counts what it would do and changes nothing.
	DryRun bool
	// Plan: Derive also counts what an Erase dry run with what it derived would report
	// (Derivation.Plan), in the same snapshot, so that the controllers need not plan apart.
	Plan bool
	// Planned, when set, is how many records a dry run of the same request counted to erase or
	// mask: a connector may size its erasure by it instead of counting again. It is a hint: what
	// an erasure reports is what it changed.
	Planned *int64
	// Deep: Verify also searches every text-like column of the mapped tables.
	Deep bool
}

// CheckResult is the outcome of a successful Check.
type CheckResult struct {
	// Warnings that do not make the store unusable.
	Warnings []string
}

// Location is where records live in a store: a table ("public.users") or a key pattern
// ("session:{userId}:*"). It never holds an identifier value.
type Location = string

// LocationCount is a count of records at one location.
type LocationCount struct {
	Location Location `json:"location"`
	Records  int64    `json:"records"`
	// Reason is the retainReason of a retained location.
	Reason string `json:"reason,omitempty"`
}

// EraseResult is what an Erase did (or, in a dry run, would do).
type EraseResult struct {
	// Erased records: deleted rows or keys.
	Erased int64
	// Masked rows.
	Masked int64
	// Retained records, with where and why.
	Retained          int64
	RetainedLocations []LocationCount
	// Shared records are reached only through a derived value that also belongs to someone
	// else: left untouched, with where.
	Shared          int64
	SharedLocations []LocationCount
	// Pending is true when the store accepted the erasure but finishes it later (an http
	// processor answering 202): call Erase again with the same Request.ID to poll.
	Pending bool
}

// VerifyResult is what a Verify found.
type VerifyResult struct {
	// Remaining records still identify the subject where the mapping says they must not.
	Remaining          int64
	RemainingLocations []LocationCount
	// Retained records are kept on purpose; they never count as remaining.
	Retained          int64
	RetainedLocations []LocationCount
	// Shared records are reached only through a derived value that also belongs to someone
	// else; they never count as remaining.
	Shared          int64
	SharedLocations []LocationCount
	// Unmapped records are copies of the subject's identifier values that a deep verification
	// found outside the mapping (a table or column the mapping does not cover), by table and
	// column ("public.audit_log.payload"). They are findings for a human, not remaining: the
	// mapping cannot erase them until someone maps them.
	Unmapped          int64
	UnmappedLocations []LocationCount
	// Pending: the store has not finished verifying; call again later.
	Pending bool
}

// Collection is a subject's records in one store.
type Collection struct {
	Records []Record
	// Pending: the store has not finished collecting; call again later.
	Pending bool
}

// CollectStreamer is implemented by clients that can hand over a subject's records one at a time
// as they read them, rather than as one slice: an access export is then spooled to disk as it is
// collected, and the manager's memory does not grow with its size. Clients without it are
// collected with Collect.
type CollectStreamer interface {
	// CollectTo calls emit with every record Collect would return, in the same order, from one
	// goroutine; an error from emit ends the collection with that error. pending is Collect's
	// Collection.Pending: the records emitted before it are to be discarded.
	CollectTo(ctx context.Context, req Request, emit func(Record) error) (pending bool, err error)
}

// CollectAll is Collect for a client that streams: it gathers what CollectTo emits.
func CollectAll(ctx context.Context, s CollectStreamer, req Request) (*Collection, error) {
	out := &Collection{Records: []Record{}}
	pending, err := s.CollectTo(ctx, req, func(r Record) error {
		out.Records = append(out.Records, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if pending {
		return &Collection{Records: []Record{}, Pending: true}, nil
	}
	return out, nil
}

// Record is one row or key of the subject's, as the store holds it (masked values stay masked).
type Record struct {
	Location Location       `json:"location"`
	Key      string         `json:"key,omitempty"`
	Data     map[string]any `json:"data"`
}

// Deriver is implemented by clients whose mapping can provide derived identifiers (the SQL
// stores' tables with provides). The controllers call Derive store by store in the order
// internal/linkgraph resolves, before anything is erased, passing every value known so far.
type Deriver interface {
	// Derive reads the provides columns of the subject's rows, following the store's own
	// provides/match links until nothing new is found, and returns the derived values. It changes
	// nothing.
	Derive(ctx context.Context, req Request) (*Derivation, error)
}

// Derivation is what one store derived.
type Derivation struct {
	// Values of the derived identifiers that are the subject's alone. Pass them on as
	// Request.Values.
	Values Values
	// Shared values are also held by rows that are not the subject's; pass them on as
	// Request.Shared.
	Shared Values
	// Plan is set when Request.Plan asked for it and the store can count while deriving.
	Plan *DerivedPlan
}

// DerivedPlan is what an Erase dry run would report, counted while deriving, and the values it
// counted with (besides the request's Identifiers): it stands for a dry run of a later request
// only when that request's values and shared values of the identifiers the store matches are
// these.
type DerivedPlan struct {
	Result         *EraseResult
	Values, Shared Values
}
