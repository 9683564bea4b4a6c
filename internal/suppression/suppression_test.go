package suppression

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

func b64(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func TestKeyedHashNormalisesAndSeparatesKinds(t *testing.T) {
	h := KeyedHasher{Key: []byte("0123456789abcdef0123456789abcdef")}
	a, ok1 := h.Hash(normalize.Email, "customer-1@example.com")
	b, ok2 := h.Hash(normalize.Email, "  Customer-1@Example.COM ")
	if !ok1 || !ok2 || a != b {
		t.Fatalf("case and space variants must hash alike")
	}
	if c, _ := h.Hash(normalize.Exact, "customer-1@example.com"); c == a {
		t.Fatalf("an exact id must not hash like the same email")
	}
	if c, _ := h.Hash(normalize.Email, "customer-11@example.com"); c == a {
		t.Fatalf("a bystander must hash differently")
	}
	other := KeyedHasher{Key: []byte("another key of at least 16 bytes")}
	if c, _ := other.Hash(normalize.Email, "customer-1@example.com"); c == a {
		t.Fatalf("another key must give another hash")
	}
	if _, ok := h.Hash(normalize.Exact, "   "); ok {
		t.Fatalf("a blank value must not hash")
	}
	p := KeyedHasher{Key: h.Key, Norm: normalize.Normalizer{Region: "US"}}
	x, _ := p.Hash(normalize.Phone, "+1 (555) 010-0001")
	y, _ := p.Hash(normalize.Phone, "5550100001")
	if x != y {
		t.Fatalf("phone formats must hash alike")
	}
}

// An opaque id means something only as the identifier it is of; an email is the same person
// whatever its identifier is called.
func TestKeyedHashScopesExactValuesToTheirIdentifier(t *testing.T) {
	h := KeyedHasher{Key: []byte("0123456789abcdef0123456789abcdef")}
	order, _ := h.HashOf("orderId", normalize.Exact, "10")
	customer, _ := h.HashOf("customerId", normalize.Exact, "10")
	again, _ := h.HashOf("orderId", normalize.Exact, "10")
	if order == customer || order != again {
		t.Fatalf("exact values must hash per identifier")
	}
	a, _ := h.HashOf("email", normalize.Email, "jane@example.com")
	b, _ := h.HashOf("contactEmail", normalize.Email, "Jane@Example.com")
	if a != b {
		t.Fatalf("an email must hash alike under any identifier name")
	}
}

func TestDropHash(t *testing.T) {
	got, ok := DropHash(KindEmail, "  Jane.Doe@Example.com ")
	if !ok || base64.StdEncoding.EncodeToString(got[:]) != b64("jane.doe@example.com") {
		t.Fatalf("email hash differs from DROP's")
	}
	got, ok = DropHash(KindPhone, "+1 (555) 010-0001")
	if !ok || base64.StdEncoding.EncodeToString(got[:]) != b64("5550100001") {
		t.Fatalf("phone hash differs from DROP's")
	}
	if _, ok := DropHash(KindPhone, "12345"); ok {
		t.Fatalf("a short number is no DROP phone")
	}
}

func TestParseDownload(t *testing.T) {
	d, err := ParseDownload(map[string][]byte{
		DropEmailFile:     []byte("ID,Hash\r\nA1," + b64("a@example.com") + "\r\nA2," + b64("b@example.com") + "\r\n"),
		DropPhoneFile:     []byte("P1," + b64("5550100001")),
		DropWithdrawnFile: []byte("ID\nOLD-7\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Items) != 3 || !d.Withdrawn["OLD-7"] || !strings.HasPrefix(d.Digest, "sha256:") {
		t.Fatalf("unexpected download: %d items, withdrawn %v", len(d.Items), d.Withdrawn)
	}
	if d.Items[2].Kind != KindPhone || d.Items[0].ID != "A1" {
		t.Fatalf("items out of order or of the wrong kind")
	}
}

func TestParseDownloadRefusesHostileInput(t *testing.T) {
	good := "A1," + b64("a@example.com")
	long := strings.Repeat("x", 10<<20)
	for name, tc := range map[string]struct {
		data map[string][]byte
		want string
	}{
		"bad base64":     {map[string][]byte{DropEmailFile: []byte(good + "\nA2,not*base64\n")}, "email.csv line 2: hash is not standard base64"},
		"wrong length":   {map[string][]byte{DropEmailFile: []byte("A1," + base64.StdEncoding.EncodeToString([]byte("short")))}, "email.csv line 1: hash is 5 bytes"},
		"duplicate ID":   {map[string][]byte{DropEmailFile: []byte(good + "\n" + good + "\n")}, "email.csv line 2: ID repeats the ID of email.csv line 1"},
		"dup over files": {map[string][]byte{DropEmailFile: []byte(good + "\n"), DropPhoneFile: []byte("A1," + b64("5550100001"))}, "phone.csv line 1: ID repeats the ID of email.csv line 1"},
		"10 MB line":     {map[string][]byte{DropEmailFile: []byte(good + "\nA2," + long + "\n")}, "email.csv line 2: line is longer than 4096 bytes"},
		"CRLF then LF":   {map[string][]byte{DropEmailFile: []byte(good + "\r\nA2," + b64("b@example.com") + "\n")}, "email.csv line 2: line ends differ"},
		"lone CR":        {map[string][]byte{DropEmailFile: []byte(good + "\rA2," + b64("b@example.com") + "\n")}, "email.csv line 1: line holds a carriage return"},
		"three fields":   {map[string][]byte{DropEmailFile: []byte(good + ",x\n")}, "email.csv line 1: expected two fields"},
		"blank line":     {map[string][]byte{DropEmailFile: []byte(good + "\n\n")}, "email.csv line 2: line is blank"},
		"unknown key":    {map[string][]byte{"ssn.csv": []byte(good)}, `key "ssn.csv" is not a DROP list file`},
		"withdraw added": {map[string][]byte{DropEmailFile: []byte(good), DropWithdrawnFile: []byte("A1\n")}, "withdraws an ID that the same download adds"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseDownload(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), b64("a@example.com")) {
				t.Fatalf("the error quotes a hash")
			}
		})
	}
}

func TestChunksRoundTripAndStayUnderLimit(t *testing.T) {
	var entries []Entry
	for i := range 100_000 {
		h, _ := DropHash(KindEmail, fmt.Sprintf("person-%d@example.com", i))
		entries = append(entries, Entry{Hash: h, Kind: KindEmail, ID: fmt.Sprintf("ITEM-%07d", i), Status: StatusNotFound})
	}
	set := NewSet(entries)
	chunks, bits, err := set.split(MaxChunkBytes)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range chunks {
		data := encodeChunk(c)
		if len(data) > MaxChunkBytes {
			t.Fatalf("chunk of %d bytes exceeds %d", len(data), MaxChunkBytes)
		}
		back, err := decodeChunk(data)
		if err != nil || len(back) != len(c) || back[0] != c[0] {
			t.Fatalf("chunk does not round-trip: %v", err)
		}
		total += len(back)
	}
	if total != set.Len() || bits == 0 {
		t.Fatalf("chunks hold %d of %d entries (bits %d)", total, set.Len(), bits)
	}
	if _, err := decodeChunk(encodeChunk(chunks[0])[:100]); err == nil {
		t.Fatalf("a cut chunk must not decode")
	}
	h, _ := DropHash(KindEmail, " Person-42@Example.com")
	if idx := set.Lookup(h, KindEmail); len(idx) != 1 || set.Entries()[idx[0]].ID != "ITEM-0000042" {
		t.Fatalf("lookup failed: %v", idx)
	}
	if set.Contains(h, KindPhone) {
		t.Fatalf("lookup must respect the kind")
	}
	// Adding one entry changes one chunk only.
	nh, _ := DropHash(KindEmail, "new@example.com")
	set.Add(Entry{Hash: nh, Kind: KindEmail, ID: "NEW"})
	after, _, _ := set.split(MaxChunkBytes)
	changed := 0
	for i := range after {
		if len(after[i]) != len(chunks[i]) {
			changed++
		}
	}
	if changed != 1 {
		t.Fatalf("adding one entry changed %d chunks", changed)
	}
	if n := set.RemoveIDs(map[string]bool{"NEW": true, "ITEM-0000001": true}); n != 2 {
		t.Fatalf("removed %d", n)
	}
}

func FuzzParseList(f *testing.F) {
	f.Add([]byte("ID,Hash\nA1," + b64("a@example.com") + "\n"))
	f.Add([]byte("A1," + b64("a@example.com") + "\r\nA1,xx\r\n"))
	f.Add([]byte("\r\n\n,,,\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := ParseList("email.csv", KindEmail, strings.NewReader(string(data)), map[string]string{})
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error without a line number: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, it := range items {
			if seen[it.ID] || it.ID == "" || len(it.ID) > MaxIDLen {
				t.Fatalf("accepted a bad or repeated ID")
			}
			seen[it.ID] = true
		}
		// What was accepted encodes and decodes unchanged.
		back, err := decodeChunk(encodeChunk(items))
		if err != nil || len(back) != len(items) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}
