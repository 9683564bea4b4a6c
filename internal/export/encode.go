package export

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// Encode serializes the document as JSON, gzips it when that makes it smaller, and refuses what is
// over limit bytes (MaxBytes when limit is 0).
func Encode(doc *Document, limit int) (*Encoded, error) {
	files, err := EncodeFiles(doc, []privacyv1alpha1.ExportFormat{privacyv1alpha1.ExportFormatJSON}, limit)
	if err != nil {
		return nil, err
	}
	return files[0], nil
}

// EncodeFiles renders the document in every format asked for, in that order, each file ready to be
// one key of the export Secret, and refuses the lot when together they are over limit bytes
// (MaxBytes when limit is 0): a person gets all the formats asked for or none. A file is never
// held beyond limit bytes, raw or compressed: an export far too large for a Secret is refused
// once that is certain, without rendering it whole in memory.
func EncodeFiles(doc *Document, formats []privacyv1alpha1.ExportFormat, limit int) ([]*Encoded, error) {
	if limit <= 0 {
		limit = MaxBytes
	}
	files := make([]*Encoded, 0, len(formats))
	total := 0
	for _, f := range formats {
		var enc *Encoded
		var err error
		switch f {
		case privacyv1alpha1.ExportFormatJSON:
			enc, err = encodeCapped("export.json", true, limit, func(w io.Writer) error { return WriteJSON(w, doc) })
		case privacyv1alpha1.ExportFormatCSV:
			enc, err = encodeCapped("export.csv.zip", false, limit, func(w io.Writer) error { return WriteCSV(w, doc) })
		case privacyv1alpha1.ExportFormatHTML:
			enc, err = encodeCapped("report.html", true, limit, func(w io.Writer) error { return WriteHTML(w, doc) })
		default:
			return nil, fmt.Errorf("unknown export format %q", f)
		}
		var tooLarge *TooLargeError
		if errors.As(err, &tooLarge) {
			tooLarge.Size += total
			return nil, err
		}
		if err != nil {
			return nil, err
		}
		enc.Format = f
		sum := sha256.Sum256(enc.Bytes)
		enc.SHA256 = "sha256:" + hex.EncodeToString(sum[:])
		total += len(enc.Bytes)
		files = append(files, enc)
	}
	if total > limit {
		return nil, &TooLargeError{Size: total, Limit: limit}
	}
	return files, nil
}

// errOverCap stops a renderer whose output can no longer fit.
var errOverCap = errors.New("over the limit")

// capBuffer keeps what is written to it until it is over max bytes, then drops it all.
type capBuffer struct {
	bytes.Buffer
	max  int
	over bool
	n    int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.n += len(p)
	if !c.over && c.Len()+len(p) > c.max {
		c.over = true
		c.Buffer = bytes.Buffer{}
	}
	if !c.over {
		c.Buffer.Write(p)
	}
	return len(p), nil
}

// encodeCapped renders one file under key, gzipped (under key.gz) when compress is set and that
// is smaller (from gzipFrom bytes), and stops with a TooLargeError once neither form can fit in
// limit bytes.
func encodeCapped(key string, compress bool, limit int, render func(io.Writer) error) (*Encoded, error) {
	raw := &capBuffer{max: limit}
	var gz *capBuffer
	var zw *gzip.Writer
	out := io.Writer(raw)
	if compress {
		gz = &capBuffer{max: limit}
		zw, _ = gzip.NewWriterLevel(gz, gzip.BestCompression)
		out = io.MultiWriter(raw, zw)
	}
	w := writerFunc(func(p []byte) (int, error) {
		if raw.over && (gz == nil || gz.over) {
			return 0, errOverCap
		}
		return out.Write(p)
	})
	stopped := func() error {
		size := raw.n
		if gz != nil {
			size = gz.n
		}
		return &TooLargeError{Size: size, Limit: limit, Stopped: true}
	}
	if err := render(w); errors.Is(err, errOverCap) {
		return nil, stopped()
	} else if err != nil {
		return nil, err
	}
	enc := &Encoded{Key: key, Bytes: raw.Bytes(), Encoding: "identity", Raw: raw.n}
	if !compress {
		if raw.over {
			return nil, stopped()
		}
		return enc, nil
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	switch {
	case gz.over && raw.over:
		return nil, stopped()
	case raw.over, raw.n >= gzipFrom && gz.n < raw.n:
		enc.Key, enc.Bytes, enc.Encoding = key+".gz", gz.Bytes(), "gzip"
	}
	return enc, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
