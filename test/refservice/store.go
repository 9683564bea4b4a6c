package refservice

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Actions a location applies to a subject's records on erase.
const (
	ActionDelete = "delete"
	ActionMask   = "mask"
	ActionRetain = "retain"
)

// RedactedMarker is what masking writes into a masked field.
const RedactedMarker = "[REDACTED]"

// minContainsLength is the shortest identifier value deep verify looks for inside longer text:
// shorter values ("1", "ab") are inside far too much unrelated text to mean anything.
const minContainsLength = 4

// Location is one place of the service that holds records, with what erasure does there.
type Location struct {
	// Name is reported in results, e.g. "crm.contacts". It never holds an identifier value.
	Name string `json:"name"`
	// Match maps an identifier name (email, userId) to the data field that holds it. A record
	// belongs to the subject when any of these fields holds the subject's identifier as the
	// identifier's kind compares (identifierKinds in the request; exact when absent).
	Match map[string]string `json:"match"`
	// Action on erase: delete, mask or retain.
	Action string `json:"action"`
	// MaskFields are set to RedactedMarker when the action is mask.
	MaskFields []string `json:"maskFields,omitempty"`
	// RetainReason is the legal ground reported for retained records.
	RetainReason string `json:"retainReason,omitempty"`
	// Records held there.
	Records []Record `json:"records,omitempty"`
}

// Record is one record at a location.
type Record struct {
	Key  string         `json:"key,omitempty"`
	Data map[string]any `json:"data"`
}

func (l *Location) validate() error {
	if strings.TrimSpace(l.Name) == "" {
		return fmt.Errorf("a location has no name")
	}
	if len(l.Match) == 0 {
		return fmt.Errorf("location %s matches no identifier", l.Name)
	}
	switch l.Action {
	case ActionDelete:
	case ActionMask:
		if len(l.MaskFields) == 0 {
			return fmt.Errorf("location %s masks no field", l.Name)
		}
	case ActionRetain:
		if strings.TrimSpace(l.RetainReason) == "" {
			return fmt.Errorf("location %s retains without a reason", l.Name)
		}
	default:
		return fmt.Errorf("location %s has unknown action %q", l.Name, l.Action)
	}
	return nil
}

// matches reports whether rec belongs to the subject: a match field holds the subject's value
// of that identifier as its kind compares (see subject.go).
func (l *Location) matches(rec Record, ids subject) bool {
	for name, field := range l.Match {
		if s, isString := rec.Data[field].(string); isString && ids.matches(name, s) {
			return true
		}
	}
	return false
}

// unmasked reports whether a mask location still has to rewrite rec.
func (l *Location) unmasked(rec Record) bool {
	for _, f := range l.MaskFields {
		if v, ok := rec.Data[f]; ok && v != nil && v != RedactedMarker {
			return true
		}
	}
	return false
}

func (l *Location) mask(rec Record) Record {
	data := maps.Clone(rec.Data)
	for _, f := range l.MaskFields {
		if v, ok := data[f]; ok && v != nil {
			data[f] = RedactedMarker
		}
	}
	return Record{Key: rec.Key, Data: data}
}

// deepHits counts the records of l that still hold an identifier value in a field other than
// those the mapping keeps on purpose, by field.
func (l *Location) deepHits(ids subject) map[string]int64 {
	kept := map[string]bool{}
	if l.Action == ActionMask {
		// A mask location keeps its unmasked match fields: that is what masking means.
		for _, f := range l.Match {
			kept[f] = !slices.Contains(l.MaskFields, f)
		}
	}
	hits := map[string]int64{}
	for _, rec := range l.Records {
		for field, v := range rec.Data {
			s, ok := v.(string)
			if !ok || kept[field] {
				continue
			}
			if containsIdentifier(s, ids.searchValues()) {
				hits[field]++
			}
		}
	}
	return hits
}

func containsIdentifier(s string, values []string) bool {
	for _, v := range values {
		if v == "" || s == RedactedMarker {
			continue
		}
		if s == v || (len(v) >= minContainsLength && strings.Contains(s, v)) {
			return true
		}
	}
	return false
}

func cloneLocation(l Location) Location {
	out := l
	out.Match = maps.Clone(l.Match)
	out.MaskFields = slices.Clone(l.MaskFields)
	out.Records = make([]Record, len(l.Records))
	for i, r := range l.Records {
		out.Records[i] = cloneRecord(r)
	}
	return out
}

// cloneRecord copies a record deeply enough that callers cannot reach the service's state.
func cloneRecord(r Record) Record {
	b, err := json.Marshal(r.Data)
	if err != nil {
		// Data came from JSON or from Put, which checked that it marshals.
		panic(err)
	}
	// Numbers stay json.Number: a 64-bit id must not be rounded through float64.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var data map[string]any
	if err := dec.Decode(&data); err != nil {
		panic(err)
	}
	return Record{Key: r.Key, Data: data}
}

// The results of the protocol, as the service sends them.

// header starts every 200 answer.
type header struct {
	ProtocolVersion string `json:"protocolVersion"`
	Status          string `json:"status"`
}

var done = header{ProtocolVersion: ProtocolVersion, Status: "done"}

type locationCount struct {
	Location string `json:"location"`
	Records  int64  `json:"records"`
	Reason   string `json:"reason,omitempty"`
}

type eraseResult struct {
	header
	Erased            int64           `json:"erased"`
	Masked            int64           `json:"masked"`
	Retained          int64           `json:"retained"`
	RetainedLocations []locationCount `json:"retainedLocations"`
}

type verifyResult struct {
	header
	Remaining          int64           `json:"remaining"`
	RemainingLocations []locationCount `json:"remainingLocations"`
	Retained           int64           `json:"retained"`
	RetainedLocations  []locationCount `json:"retainedLocations"`
}

type collectResult struct {
	header
	Records []collectedRecord `json:"records"`
}

type collectedRecord struct {
	Location string         `json:"location"`
	Key      string         `json:"key,omitempty"`
	Data     map[string]any `json:"data"`
}

// erase applies every location's action to the subject's records; with dryRun it only counts.
// The caller holds the service's lock.
func erase(locations []*Location, ids subject, dryRun bool) eraseResult {
	res := eraseResult{header: done, RetainedLocations: []locationCount{}}
	for _, l := range locations {
		var kept []Record
		var n int64
		for _, rec := range l.Records {
			if !l.matches(rec, ids) {
				kept = append(kept, rec)
				continue
			}
			switch l.Action {
			case ActionDelete:
				n++
			case ActionMask:
				if l.unmasked(rec) {
					n++
					rec = l.mask(rec)
				}
				kept = append(kept, rec)
			case ActionRetain:
				n++
				kept = append(kept, rec)
			}
		}
		switch l.Action {
		case ActionDelete:
			res.Erased += n
		case ActionMask:
			res.Masked += n
		case ActionRetain:
			res.Retained += n
			if n > 0 {
				res.RetainedLocations = append(res.RetainedLocations, locationCount{Location: l.Name, Records: n, Reason: l.RetainReason})
			}
		}
		if !dryRun && l.Action != ActionRetain {
			l.Records = kept
		}
	}
	return res
}

func verify(locations []*Location, ids subject, deep bool) verifyResult {
	res := verifyResult{header: done, RemainingLocations: []locationCount{}, RetainedLocations: []locationCount{}}
	for _, l := range locations {
		var n int64
		for _, rec := range l.Records {
			if !l.matches(rec, ids) {
				continue
			}
			if l.Action == ActionDelete || l.Action == ActionRetain || l.unmasked(rec) {
				n++
			}
		}
		if n > 0 {
			if l.Action == ActionRetain {
				res.Retained += n
				res.RetainedLocations = append(res.RetainedLocations, locationCount{Location: l.Name, Records: n, Reason: l.RetainReason})
			} else {
				res.Remaining += n
				res.RemainingLocations = append(res.RemainingLocations, locationCount{Location: l.Name, Records: n})
			}
		}
		if deep && l.Action != ActionRetain {
			hits := l.deepHits(ids)
			for _, field := range slices.Sorted(maps.Keys(hits)) {
				res.Remaining += hits[field]
				res.RemainingLocations = append(res.RemainingLocations, locationCount{
					Location: fmt.Sprintf("%s (deep: %s)", l.Name, field), Records: hits[field]})
			}
		}
	}
	return res
}

func collect(locations []*Location, ids subject) collectResult {
	res := collectResult{header: done, Records: []collectedRecord{}}
	for _, l := range locations {
		for _, rec := range l.Records {
			if l.matches(rec, ids) {
				c := cloneRecord(rec)
				res.Records = append(res.Records, collectedRecord{Location: l.Name, Key: c.Key, Data: c.Data})
			}
		}
	}
	return res
}
