package httpstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// An answer is read as it arrives, field by field and, for the records of a collect, record by
// record: the raw body is never held whole, and a body over the limit is refused as soon as the
// limit is crossed, without reading the rest. Sixteen requests times eight stores may be reading
// at once; what they hold is what they decoded, never more than the limit of raw bytes each.

// answer is the decoded body of a 200 or 202 answer.
type answer interface {
	header() *envelope
	// field returns where the value of the top-level field name goes: a pointer to decode it
	// into, an arrayTarget to receive it one element at a time, or nil to skip it.
	field(name string) any
}

// arrayTarget receives a JSON array one element at a time, so that a long array is never
// buffered as one value. null leaves it nil.
type arrayTarget interface {
	// start is called at the array's '[': it empties the target (a repeated field replaces it).
	start()
	decodeElement(dec *json.Decoder) error
}

func (e *envelope) header() *envelope { return e }

func (e *envelope) envelopeField(name string) any {
	switch name {
	case "protocolVersion":
		return &e.ProtocolVersion
	case "status":
		return &e.Status
	}
	return nil
}

func (r *checkResponse) field(name string) any {
	switch name {
	case "ok":
		return &r.OK
	case "warnings":
		return &r.Warnings
	case "message":
		return &r.Message
	case "capabilities":
		return &r.Capabilities
	}
	return r.envelopeField(name)
}

func (r *sweepResponse) field(name string) any {
	switch name {
	case "digests":
		return &r.Digests
	case "nextCursor":
		return &r.NextCursor
	}
	return r.envelopeField(name)
}

func (r *resolveResponse) field(name string) any {
	if name == "values" {
		return &r.Values
	}
	return r.envelopeField(name)
}

func (r *eraseResponse) field(name string) any {
	switch name {
	case "erased":
		return &r.Erased
	case "masked":
		return &r.Masked
	case "retained":
		return &r.Retained
	case "retainedLocations":
		return &r.RetainedLocations
	}
	return r.envelopeField(name)
}

func (r *verifyResponse) field(name string) any {
	switch name {
	case "remaining":
		return &r.Remaining
	case "remainingLocations":
		return &r.RemainingLocations
	case "retained":
		return &r.Retained
	case "retainedLocations":
		return &r.RetainedLocations
	}
	return r.envelopeField(name)
}

func (r *collectResponse) field(name string) any {
	if name == "records" {
		return &r.Records
	}
	return r.envelopeField(name)
}

func (rs *wireRecords) start() { *rs = wireRecords{} }

func (rs *wireRecords) decodeElement(dec *json.Decoder) error {
	var r wireRecord
	if err := dec.Decode(&r); err != nil {
		return err
	}
	*rs = append(*rs, r)
	return nil
}

// errTooLarge: the body crossed the limit of its cappedReader.
var errTooLarge = errors.New("the answer exceeds its limit")

// errNotObject: the answer is not one JSON object.
var errNotObject = errors.New("the answer is not a JSON object")

// cappedReader passes through at most limit bytes and fails with errTooLarge on the byte after.
// It counts what it read and keeps the first transport error, to tell a broken connection from
// a malformed answer.
type cappedReader struct {
	r       io.Reader
	left    int64
	read    int64
	over    bool
	readErr error
}

func newCappedReader(r io.Reader, limit int64) *cappedReader {
	return &cappedReader{r: r, left: limit}
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.over {
		return 0, errTooLarge
	}
	// One byte past the limit tells an answer of exactly limit bytes from a longer one.
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.read += int64(n)
	c.left -= int64(n)
	if c.left < 0 {
		c.over = true
		return n + int(c.left), errTooLarge
	}
	if err != nil && !errors.Is(err, io.EOF) && c.readErr == nil {
		c.readErr = err
	}
	return n, err
}

// decodeAnswer reads one JSON object from r into into. A field of the wrong type does not stop
// the reading: like encoding/json, the first such error is returned once the object is read, so
// that the envelope can be checked first. Numbers stay json.Number, so that large integer ids in
// collected data are not rounded through float64.
func decodeAnswer(r io.Reader, into answer) (fieldErr, err error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, notObject(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, notObject(err)
		}
		name, _ := tok.(string)
		var ferr error
		switch target := into.field(name).(type) {
		case nil:
			var skip json.RawMessage
			ferr = dec.Decode(&skip)
		case arrayTarget:
			ferr = decodeArray(dec, name, target)
		default:
			ferr = dec.Decode(target)
		}
		var typeErr *json.UnmarshalTypeError
		var shapeErr *arrayShapeError
		switch {
		case ferr == nil:
		case errors.As(ferr, &typeErr) || errors.As(ferr, &shapeErr):
			if fieldErr == nil {
				fieldErr = ferr
			}
		default:
			return nil, notObject(ferr)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, notObject(err)
	}
	// Only white space may follow the object, as for json.Unmarshal.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil || !errors.Is(err, errTooLarge) && !isReadError(err) {
			return nil, errors.New("the answer holds more than one JSON object")
		}
		return nil, err
	}
	return fieldErr, nil
}

// arrayShapeError: a field streamed as an array holds something else.
type arrayShapeError struct{ field string }

func (e *arrayShapeError) Error() string { return fmt.Sprintf("%s is not an array", e.field) }

func decodeArray(dec *json.Decoder, name string, target arrayTarget) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case nil:
		return nil
	case json.Delim('['):
	case json.Delim('{'):
		// Skip the object so that the rest of the answer can still be read.
		for dec.More() {
			var skip json.RawMessage
			if _, err := dec.Token(); err != nil {
				return err
			}
			if err := dec.Decode(&skip); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		return &arrayShapeError{field: name}
	default:
		return &arrayShapeError{field: name}
	}
	target.start()
	var firstErr error
	for dec.More() {
		err := target.decodeElement(dec)
		var typeErr *json.UnmarshalTypeError
		switch {
		case err == nil:
		case errors.As(err, &typeErr):
			if firstErr == nil {
				firstErr = err
			}
		default:
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	return firstErr
}

// notObject keeps errTooLarge and transport errors as they are and calls anything else a
// malformed answer.
func notObject(err error) error {
	if err != nil && (errors.Is(err, errTooLarge) || isReadError(err)) {
		return err
	}
	return errNotObject
}

// isReadError reports whether err came from reading the body rather than from its syntax.
func isReadError(err error) bool {
	var syntaxErr *json.SyntaxError
	return !errors.As(err, &syntaxErr) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errNotObject)
}
