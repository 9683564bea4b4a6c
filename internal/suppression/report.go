package suppression

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The DROP status report is "ID,Status" lines under a header. A report that fits one Secret is
// kept there under ReportKey, plain, as it always was. A larger one is split into parts, each a
// Secret holding one gzip-compressed run of the CSV under ReportPartKey; the first Secret then
// holds only the index of the parts under ReportIndexKey. Concatenating the parts' CSV in index
// order gives the whole report, byte for byte.
const (
	ReportKey      = "report.csv"
	ReportPartKey  = "report.csv.gz"
	ReportIndexKey = "report-index.json"
	ReportHeader   = "ID,Status\n"
	// ReportIndexVersion is the layout of ReportIndex; readers refuse another.
	ReportIndexVersion = 1
)

// ReportIndex lists the parts of a split report.
type ReportIndex struct {
	Version int `json:"version"`
	// Items is the number of report lines (the header not counted).
	Items int `json:"items"`
	// Bytes and SHA256 are those of the whole CSV.
	Bytes  int64        `json:"bytes"`
	SHA256 string       `json:"sha256"`
	Parts  []ReportPart `json:"parts"`
}

// ReportPart is one part of a split report. Bytes and SHA256 are those of its CSV, uncompressed.
type ReportPart struct {
	Name   string `json:"name"`
	Items  int    `json:"items"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// EncodedReport is a report ready to be stored: Single when it fits one Secret, otherwise Parts
// (gzip data, in order) and Index (whose part names the caller fills in).
type EncodedReport struct {
	Single []byte
	Parts  [][]byte
	Index  ReportIndex
}

// reportFlushEvery is how much CSV goes into the compressor between two size checks; a part is
// closed while it still has room for that much more (deflate expands nothing by more than a few
// bytes per block, which reportSlack covers).
const (
	reportFlushEvery = 32 << 10
	reportSlack      = 4 << 10
)

// EncodeReport encodes the report of lines (each "ID,Status", without newline, already sorted)
// so that no stored value exceeds maxBytes.
func EncodeReport(lines []string, maxBytes int) (*EncodedReport, error) {
	if maxBytes < 2*(reportFlushEvery+reportSlack+MaxIDLen) {
		return nil, fmt.Errorf("report part limit %d is too small", maxBytes)
	}
	size := len(ReportHeader)
	for _, l := range lines {
		size += len(l) + 1
	}
	if size <= maxBytes {
		var b bytes.Buffer
		b.Grow(size)
		b.WriteString(ReportHeader)
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		return &EncodedReport{Single: b.Bytes()}, nil
	}
	enc := &EncodedReport{Index: ReportIndex{Version: ReportIndexVersion, Items: len(lines), Bytes: int64(size)}}
	whole := sha256.New()
	p := newPartWriter()
	write := func(s string) {
		p.write(s)
		_, _ = io.WriteString(whole, s)
	}
	write(ReportHeader)
	p.items-- // the header is no item
	for _, l := range lines {
		write(l + "\n")
		if p.pending >= reportFlushEvery {
			if err := p.flush(); err != nil {
				return nil, err
			}
			if p.out.Len()+reportFlushEvery+reportSlack+MaxIDLen > maxBytes {
				if err := enc.closePart(p); err != nil {
					return nil, err
				}
				p = newPartWriter()
			}
		}
	}
	if err := enc.closePart(p); err != nil {
		return nil, err
	}
	enc.Index.SHA256 = hex.EncodeToString(whole.Sum(nil))
	return enc, nil
}

type partWriter struct {
	out     bytes.Buffer
	gz      *gzip.Writer
	sum     io.Writer
	digest  interface{ Sum([]byte) []byte }
	pending int
	items   int
	bytes   int64
}

func newPartWriter() *partWriter {
	p := &partWriter{}
	p.gz = gzip.NewWriter(&p.out)
	h := sha256.New()
	p.sum, p.digest = h, h
	return p
}

// write adds one line. Writes to a bytes.Buffer and a hash do not fail.
func (p *partWriter) write(s string) {
	_, _ = io.WriteString(p.gz, s)
	_, _ = io.WriteString(p.sum, s)
	p.pending += len(s)
	p.items++
	p.bytes += int64(len(s))
}

func (p *partWriter) flush() error {
	p.pending = 0
	return p.gz.Flush()
}

func (e *EncodedReport) closePart(p *partWriter) error {
	if p.items <= 0 && len(e.Parts) > 0 {
		return nil
	}
	if err := p.gz.Close(); err != nil {
		return err
	}
	e.Parts = append(e.Parts, p.out.Bytes())
	e.Index.Parts = append(e.Index.Parts, ReportPart{Items: p.items, Bytes: p.bytes, SHA256: hex.EncodeToString(p.digest.Sum(nil))})
	return nil
}

// ParseReportIndex reads an index and checks that it is one this code can read.
func ParseReportIndex(data []byte) (*ReportIndex, error) {
	var idx ReportIndex
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("the report index is not valid JSON: %w", err)
	}
	if idx.Version != ReportIndexVersion {
		return nil, fmt.Errorf("the report index has version %d; this version reads %d", idx.Version, ReportIndexVersion)
	}
	if len(idx.Parts) == 0 {
		return nil, errors.New("the report index lists no parts")
	}
	return &idx, nil
}

// DecodeReportPart writes the CSV of one stored part to w, and fails when it is not what the
// index says: its digest, size or item count differ. The first part also holds the header.
func DecodeReportPart(data []byte, part ReportPart, first bool, w io.Writer) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("part %s is not gzip data: %w", part.Name, err)
	}
	h := sha256.New()
	counter := &lineCounter{}
	n, err := io.Copy(io.MultiWriter(h, counter, w), bufio.NewReader(zr))
	if err != nil {
		return fmt.Errorf("part %s: %w", part.Name, err)
	}
	items := counter.lines
	if first {
		items--
	}
	if part.SHA256 == "" || hex.EncodeToString(h.Sum(nil)) != part.SHA256 {
		return fmt.Errorf("part %s does not match its SHA-256 in the index", part.Name)
	}
	if n != part.Bytes {
		return fmt.Errorf("part %s holds %d bytes, the index says %d", part.Name, n, part.Bytes)
	}
	if items != part.Items {
		return fmt.Errorf("part %s holds %d lines, the index says %d items", part.Name, items, part.Items)
	}
	return nil
}

type lineCounter struct{ lines int }

func (c *lineCounter) Write(b []byte) (int, error) {
	c.lines += bytes.Count(b, []byte{'\n'})
	return len(b), nil
}
