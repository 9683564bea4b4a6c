package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Count is the number of the location's records.
func (l *Location) Count() int64 {
	if l.spooled != nil {
		return l.spooled.count
	}
	return int64(len(l.Records))
}

// each calls fn with every record of the location, in the order collected. A spooled record is
// decoded anew for each call (numbers as json.Number, so that they print as they were read), and
// only one is in memory at a time.
func (l *Location) each(fn func(*Record) error) error {
	if l.spooled == nil {
		for i := range l.Records {
			if err := fn(&l.Records[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return l.spooled.lines(func(line []byte) error {
		var r Record
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("decoding a spooled record: %w", err)
		}
		if r.Data == nil {
			r.Data = map[string]any{}
		}
		return fn(&r)
	})
}

// eachJSON calls fn with every record of the location as compact JSON, as the document encodes it.
func (l *Location) eachJSON(fn func([]byte) error) error {
	if l.spooled != nil {
		return l.spooled.lines(fn)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, r := range l.Records {
		buf.Reset()
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("encoding export: %w", err)
		}
		if err := fn(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))); err != nil {
			return err
		}
	}
	return nil
}

// columns is what a location's table needs before its first row: whether any record has a key,
// and the union of the records' fields, sorted.
func (l *Location) columns() (hasKey bool, names []string) {
	fields := map[string]bool{}
	if l.spooled != nil {
		fields, hasKey = l.spooled.fields, l.spooled.hasKey
	} else {
		for _, r := range l.Records {
			hasKey = hasKey || r.Key != ""
			for f := range r.Data {
				fields[f] = true
			}
		}
	}
	names = make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	return hasKey, names
}

// WriteJSON writes the document as indented JSON, record by record: the same bytes as encoding
// the whole Document with encoding/json (indent of two spaces, no HTML escaping), without holding
// more than one record at a time. Each level's header is encoded with an empty last array
// (stores, locations, records) whose brackets are then filled in here.
func WriteJSON(w io.Writer, doc *Document) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	head := *doc
	head.Stores = []Store{}
	if err := writeOpen(bw, &head, ""); err != nil {
		return err
	}
	for i := range doc.Stores {
		s := &doc.Stores[i]
		sh := *s
		sh.Locations = []Location{}
		if err := writeElem(bw, i, "    ", &sh); err != nil {
			return err
		}
		for j := range s.Locations {
			loc := &s.Locations[j]
			if err := writeElem(bw, j, "        ", &Location{Location: loc.Location, Records: []Record{}}); err != nil {
				return err
			}
			k := 0
			var ind bytes.Buffer
			const prefix = "            "
			err := loc.eachJSON(func(raw []byte) error {
				sep := ",\n"
				if k == 0 {
					sep = "\n"
				}
				k++
				_, _ = bw.WriteString(sep + prefix)
				ind.Reset()
				if err := json.Indent(&ind, raw, prefix, "  "); err != nil {
					return fmt.Errorf("encoding export: %w", err)
				}
				_, err := bw.Write(ind.Bytes())
				return err
			})
			if err != nil {
				return err
			}
			writeClose(bw, k, "        ")
		}
		writeClose(bw, len(s.Locations), "    ")
	}
	writeClose(bw, len(doc.Stores), "")
	_, _ = bw.WriteString("\n")
	return bw.Flush()
}

// writeElem writes the i-th element of an array at prefix, opened (see writeOpen).
func writeElem(bw *bufio.Writer, i int, prefix string, v any) error {
	if i > 0 {
		_, _ = bw.WriteString(",")
	}
	_, _ = bw.WriteString("\n" + prefix)
	return writeOpen(bw, v, prefix)
}

// writeOpen writes v, indented at prefix, up to the opening bracket of its last field, an empty
// array.
func writeOpen(bw *bufio.Writer, v any, prefix string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent(prefix, "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding export: %w", err)
	}
	tail := "]\n" + prefix + "}\n"
	if !strings.HasSuffix(buf.String(), "["+tail) {
		return fmt.Errorf("encoding export: unexpected shape")
	}
	_, err := bw.Write(buf.Bytes()[:buf.Len()-len(tail)])
	return err
}

// writeClose closes an array of n elements and the object at prefix that holds it. A
// bufio.Writer keeps its first error and returns it from every later write and from Flush, which
// WriteJSON checks; the writes of separators here leave it to that.
func writeClose(bw *bufio.Writer, n int, prefix string) {
	if n > 0 {
		_, _ = bw.WriteString("\n" + prefix + "  ")
	}
	_, _ = bw.WriteString("]\n" + prefix + "}")
}
