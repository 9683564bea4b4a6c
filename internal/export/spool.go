package export

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// A Spool holds the records an access request collected on disk while its export is rendered, so
// that the manager's memory does not grow with the export: each store's records are written as
// they arrive, one file per location, and read back once per format.
//
// The files are personal data on a node's disk, so each is unlinked as soon as it is created (it
// lives only as long as the open descriptor: a crashed manager leaves nothing behind) and
// encrypted with a key of its own that exists only in memory (freed blocks of the disk hold
// nothing readable either).
type Spool struct {
	dir   string
	mu    sync.Mutex
	files []*os.File
}

// spoolPattern names the spool files; CleanSpools removes the rare file a crash left between its
// creation and its unlinking.
const spoolPattern = "dsr-export-spool-*"

// spoolChunk is the plaintext sealed at a time: what one location holds in memory while spooling.
const spoolChunk = 64 << 10

// NewSpool returns an empty spool whose files go to dir (os.TempDir() when empty).
func NewSpool(dir string) *Spool {
	if dir == "" {
		dir = os.TempDir()
	}
	return &Spool{dir: dir}
}

// CleanSpools removes spool files left in dir (os.TempDir() when empty) by a manager that stopped
// between creating one and unlinking it. It is called once at start.
func CleanSpools(dir string) error {
	if dir == "" {
		dir = os.TempDir()
	}
	names, err := filepath.Glob(filepath.Join(dir, spoolPattern))
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, os.Remove(n))
	}
	return errors.Join(errs...)
}

// Close releases every file of the spool, and with them the disk they took.
func (s *Spool) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	s.files = nil
	return errors.Join(errs...)
}

// Store returns a new part of the spool for one store's records. A StoreSpool is used by one
// goroutine at a time; several may fill the same Spool at once.
func (s *Spool) Store() *StoreSpool {
	return &StoreSpool{spool: s, locs: map[string]*spoolLocation{}}
}

func (s *Spool) create() (*os.File, error) {
	f, err := os.CreateTemp(s.dir, spoolPattern)
	if err != nil {
		return nil, fmt.Errorf("creating an export spool file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("unlinking an export spool file: %w", err)
	}
	s.mu.Lock()
	s.files = append(s.files, f)
	s.mu.Unlock()
	return f, nil
}

// StoreSpool is one store's records in a Spool.
type StoreSpool struct {
	spool *Spool
	locs  map[string]*spoolLocation
	count int64
	line  bytes.Buffer
}

// spoolLocation is one location's records: their count, the union of their fields and whether any
// has a key (what the CSV and HTML tables need before the first row), and the sealed file.
type spoolLocation struct {
	count  int64
	fields map[string]bool
	hasKey bool
	w      *sealWriter
}

// Add spools one record.
func (s *StoreSpool) Add(r connector.Record) error {
	loc := s.locs[r.Location]
	if loc == nil {
		f, err := s.spool.create()
		if err != nil {
			return err
		}
		w, err := newSealWriter(f)
		if err != nil {
			return err
		}
		loc = &spoolLocation{fields: map[string]bool{}, w: w}
		s.locs[r.Location] = loc
	}
	data := r.Data
	if data == nil {
		data = map[string]any{}
	}
	// The same encoding as the JSON document's, so that its records are copied from the spool.
	s.line.Reset()
	enc := json.NewEncoder(&s.line)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Record{Key: r.Key, Data: data}); err != nil {
		return fmt.Errorf("encoding a record for the export spool: %w", err)
	}
	if _, err := loc.w.Write(s.line.Bytes()); err != nil {
		return err
	}
	for f := range data {
		loc.fields[f] = true
	}
	loc.hasKey = loc.hasKey || r.Key != ""
	loc.count++
	s.count++
	return nil
}

// AddAll spools every record of a collection.
func (s *StoreSpool) AddAll(records []connector.Record) error {
	for _, r := range records {
		if err := s.Add(r); err != nil {
			return err
		}
	}
	return nil
}

// Count is the number of records spooled.
func (s *StoreSpool) Count() int64 { return s.count }

// Finish writes what is still buffered to disk; call it once every record was added, before the
// document is built.
func (s *StoreSpool) Finish() error {
	for _, loc := range s.locs {
		if err := loc.w.flush(); err != nil {
			return err
		}
	}
	return nil
}

// locations are the spooled locations, sorted.
func (s *StoreSpool) locations() []Location {
	out := make([]Location, 0, len(s.locs))
	for name, loc := range s.locs {
		out = append(out, Location{Location: name, spooled: loc})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Location < out[j].Location })
	return out
}

// lines calls fn with each spooled record as one line of JSON (without its newline). The line is
// only valid during the call.
func (l *spoolLocation) lines(fn func([]byte) error) error {
	r, err := l.w.reader()
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(r, spoolChunk)
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...) // a record larger than the buffer
			continue
		}
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if err := fn(line[:len(line)-1]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the export spool: %w", err)
		}
	}
}

// sealWriter encrypts what is written to it in chunks of spoolChunk with AES-256-GCM under a key
// of its own, each chunk framed by its length; the nonce is the chunk's number.
type sealWriter struct {
	f     *os.File
	aead  cipher.AEAD
	buf   []byte
	out   []byte
	n     uint64
	off   int64
	nonce [12]byte
}

func newSealWriter(f *os.File) (*sealWriter, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealWriter{f: f, aead: aead, buf: make([]byte, 0, spoolChunk)}, nil
}

func (w *sealWriter) Write(p []byte) (int, error) {
	written := len(p)
	for len(p) > 0 {
		n := min(len(p), spoolChunk-len(w.buf))
		w.buf = append(w.buf, p[:n]...)
		p = p[n:]
		if len(w.buf) == spoolChunk {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return written, nil
}

// flush seals what is buffered.
func (w *sealWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	binary.BigEndian.PutUint64(w.nonce[4:], w.n)
	w.n++
	w.out = append(w.out[:0], 0, 0, 0, 0)
	w.out = w.aead.Seal(w.out, w.nonce[:], w.buf, nil)
	binary.BigEndian.PutUint32(w.out, uint32(len(w.out)-4))
	if _, err := w.f.WriteAt(w.out, w.off); err != nil {
		return fmt.Errorf("writing the export spool: %w", err)
	}
	w.off += int64(len(w.out))
	w.buf = w.buf[:0]
	return nil
}

// reader reads back what was sealed (after flush), from the start; several may read at once.
func (w *sealWriter) reader() (io.Reader, error) {
	if len(w.buf) > 0 {
		return nil, errors.New("the export spool was read before it was sealed")
	}
	return &openReader{r: bufio.NewReaderSize(io.NewSectionReader(w.f, 0, w.off), 4<<10), aead: w.aead}, nil
}

type openReader struct {
	r     *bufio.Reader
	aead  cipher.AEAD
	n     uint64
	in    []byte
	plain []byte
	pos   int
	nonce [12]byte
}

func (o *openReader) Read(p []byte) (int, error) {
	if o.pos == len(o.plain) {
		var size [4]byte
		if _, err := io.ReadFull(o.r, size[:]); err != nil {
			return 0, err // io.EOF at the end
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if n > spoolChunk+o.aead.Overhead() {
			return 0, errors.New("the export spool is corrupt")
		}
		if cap(o.in) < n {
			o.in = make([]byte, n)
		}
		o.in = o.in[:n]
		if _, err := io.ReadFull(o.r, o.in); err != nil {
			return 0, fmt.Errorf("reading the export spool: %w", err)
		}
		binary.BigEndian.PutUint64(o.nonce[4:], o.n)
		o.n++
		var err error
		if o.plain, err = o.aead.Open(o.plain[:0], o.nonce[:], o.in, nil); err != nil {
			return 0, errors.New("the export spool is corrupt")
		}
		o.pos = 0
	}
	n := copy(p, o.plain[o.pos:])
	o.pos += n
	return n, nil
}
