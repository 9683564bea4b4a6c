package suppression

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxLineBytes bounds one line of a DROP list file; a longer line is refused before it is read
// whole, so a hostile 10 MB line costs no memory.
const MaxLineBytes = 4096

// The keys of a DROP download Secret.
const (
	DropEmailFile     = "email.csv"
	DropPhoneFile     = "phone.csv"
	DropWithdrawnFile = "withdrawn.csv"
)

// dropFiles map the list files to the kind of identifier they hold.
var dropFiles = map[string]Kind{DropEmailFile: KindEmail, DropPhoneFile: KindPhone}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// LineError says what is wrong with one line of a list file. It never quotes the line.
type LineError struct {
	File string
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s line %d: %s", e.File, e.Line, e.Msg) }

// Download is a parsed DROP download: its items and the IDs it withdraws.
type Download struct {
	Items     []Entry
	Withdrawn map[string]bool
	// Digest is "sha256:<hex>" over the Secret's keys and values, to tell a new download.
	Digest string
}

// ParseDownload parses every key of a DROP download Secret. Any problem refuses the whole
// download: applying part of it would be a silent truncation.
func ParseDownload(data map[string][]byte) (*Download, error) {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d := &Download{Withdrawn: map[string]bool{}}
	digest := sha256.New()
	seen := map[string]string{}
	for _, k := range keys {
		fmt.Fprintf(digest, "%d:%s%d:", len(k), k, len(data[k]))
		digest.Write(data[k])
		if k == DropWithdrawnFile {
			ids, err := parseWithdrawn(k, bytes.NewReader(data[k]))
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				d.Withdrawn[id] = true
			}
			continue
		}
		kind, ok := dropFiles[k]
		if !ok {
			return nil, fmt.Errorf("key %q is not a DROP list file (expected %s, %s or %s)", k, DropEmailFile, DropPhoneFile, DropWithdrawnFile)
		}
		items, err := ParseList(k, kind, bytes.NewReader(data[k]), seen)
		if err != nil {
			return nil, err
		}
		d.Items = append(d.Items, items...)
	}
	for id := range d.Withdrawn {
		if _, added := seen[id]; added {
			return nil, fmt.Errorf("%s withdraws an ID that the same download adds", DropWithdrawnFile)
		}
	}
	d.Digest = "sha256:" + hex.EncodeToString(digest.Sum(nil))
	return d, nil
}

// ParseList parses one list file of rows ID,Hash (an optional first line "ID,Hash" is a header).
// seen holds the IDs met so far, in this file or others of the same download, as "file line N".
func ParseList(file string, kind Kind, r io.Reader, seen map[string]string) ([]Entry, error) {
	var out []Entry
	err := eachLine(file, r, func(n int, line string) error {
		if n == 1 && strings.EqualFold(line, "id,hash") {
			return nil
		}
		id, hash, ok := strings.Cut(line, ",")
		if !ok || strings.Contains(hash, ",") {
			return &LineError{file, n, "expected two fields, ID,Hash"}
		}
		if err := checkID(id); err != nil {
			return &LineError{file, n, err.Error()}
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(hash)
		if err != nil {
			return &LineError{file, n, "hash is not standard base64"}
		}
		if len(raw) != len(Hash{}) {
			return &LineError{file, n, fmt.Sprintf("hash is %d bytes, a SHA-256 is %d", len(raw), len(Hash{}))}
		}
		if prev, dup := seen[id]; dup {
			return &LineError{file, n, "ID repeats the ID of " + prev}
		}
		seen[id] = fmt.Sprintf("%s line %d", file, n)
		e := Entry{Kind: kind, ID: id}
		copy(e.Hash[:], raw)
		out = append(out, e)
		return nil
	})
	return out, err
}

func parseWithdrawn(file string, r io.Reader) ([]string, error) {
	var out []string
	seen := map[string]int{}
	err := eachLine(file, r, func(n int, line string) error {
		if n == 1 && strings.EqualFold(line, "id") {
			return nil
		}
		id, _, _ := strings.Cut(line, ",")
		if err := checkID(id); err != nil {
			return &LineError{file, n, err.Error()}
		}
		if prev, dup := seen[id]; dup {
			return &LineError{file, n, fmt.Sprintf("ID repeats the ID of line %d", prev)}
		}
		seen[id] = n
		out = append(out, id)
		return nil
	})
	return out, err
}

func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("ID is empty")
	case len(id) > MaxIDLen:
		return fmt.Errorf("ID is longer than %d characters", MaxIDLen)
	case !idPattern.MatchString(id):
		return errors.New("ID holds characters other than letters, digits and . _ : -")
	}
	return nil
}

// eachLine calls fn with every line of r and its number, without its terminator. Lines end all
// in LF or all in CRLF; a mix, a lone CR, a blank line, invalid UTF-8 or a line longer than
// MaxLineBytes is refused with the line's number.
func eachLine(file string, r io.Reader, fn func(n int, line string) error) error {
	br := bufio.NewReaderSize(r, MaxLineBytes+2)
	crlf := -1 // unknown until the first terminated line
	for n := 1; ; n++ {
		raw, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return &LineError{file, n, fmt.Sprintf("line is longer than %d bytes", MaxLineBytes)}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: reading: %w", file, err)
		}
		if len(raw) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		line := raw
		if terminated := bytes.HasSuffix(line, []byte("\n")); terminated {
			line = line[:len(line)-1]
			isCRLF := bytes.HasSuffix(line, []byte("\r"))
			if isCRLF {
				line = line[:len(line)-1]
			}
			switch {
			case crlf == -1 && isCRLF:
				crlf = 1
			case crlf == -1:
				crlf = 0
			case (crlf == 1) != isCRLF:
				return &LineError{file, n, "line ends differ from the file's earlier lines (CRLF and LF mixed)"}
			}
		}
		if len(line) > MaxLineBytes {
			return &LineError{file, n, fmt.Sprintf("line is longer than %d bytes", MaxLineBytes)}
		}
		if bytes.ContainsRune(line, '\r') {
			return &LineError{file, n, "line holds a carriage return (CR) inside it"}
		}
		if !utf8.Valid(line) {
			return &LineError{file, n, "line is not valid UTF-8"}
		}
		if len(bytes.TrimSpace(line)) == 0 {
			return &LineError{file, n, "line is blank"}
		}
		if err := fn(n, string(line)); err != nil {
			return err
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}
