package suppression

import (
	"bytes"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// Parts stay under the limit however badly the IDs compress: here, IDs of the longest length
// DROP allows, drawn at random from the characters it allows.
func TestEncodeReportPartsStayUnderTheLimit(t *testing.T) {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
	rng := rand.New(rand.NewPCG(1, 2))
	lines := make([]string, 20_000)
	for i := range lines {
		id := make([]byte, MaxIDLen)
		for j := range id {
			id[j] = chars[rng.IntN(len(chars))]
		}
		lines[i] = string(id) + ",5"
	}
	sort.Strings(lines)
	const limit = 100 << 10
	enc, err := EncodeReport(lines, limit)
	if err != nil {
		t.Fatal(err)
	}
	if enc.Single != nil || len(enc.Parts) < 10 {
		t.Fatalf("%d parts for 2.6 MB of CSV", len(enc.Parts))
	}
	var got bytes.Buffer
	items := 0
	for i, p := range enc.Parts {
		if len(p) > limit {
			t.Fatalf("part %d is %d bytes, over %d", i+1, len(p), limit)
		}
		enc.Index.Parts[i].Name = "p"
		if err := DecodeReportPart(p, enc.Index.Parts[i], i == 0, &got); err != nil {
			t.Fatal(err)
		}
		items += enc.Index.Parts[i].Items
	}
	want := ReportHeader + strings.Join(lines, "\n") + "\n"
	if got.String() != want || items != len(lines) || enc.Index.Items != len(lines) || enc.Index.Bytes != int64(len(want)) {
		t.Fatalf("reassembled %d bytes, %d items; want %d bytes, %d items", got.Len(), items, len(want), len(lines))
	}
	// A part that claims another part's digest, or the wrong place, is refused.
	if err := DecodeReportPart(enc.Parts[1], enc.Index.Parts[2], false, &bytes.Buffer{}); err == nil {
		t.Error("a part was accepted under another part's index entry")
	}
	if err := DecodeReportPart(enc.Parts[0], enc.Index.Parts[0], false, &bytes.Buffer{}); err == nil {
		t.Error("the first part was accepted as a later one (its header counted as an item)")
	}
}

func TestEncodeReportSmallAndEmpty(t *testing.T) {
	for _, lines := range [][]string{nil, {"A,3", "B,5"}} {
		enc, err := EncodeReport(lines, MaxChunkBytes)
		if err != nil {
			t.Fatal(err)
		}
		want := ReportHeader
		for _, l := range lines {
			want += l + "\n"
		}
		if string(enc.Single) != want || enc.Parts != nil {
			t.Errorf("report of %d lines: %q, %d parts", len(lines), enc.Single, len(enc.Parts))
		}
	}
	if _, err := EncodeReport([]string{"A,3"}, 1000); err == nil {
		t.Error("a part limit too small to hold anything was accepted")
	}
	if _, err := ParseReportIndex([]byte(`{"version":2,"parts":[{"name":"x"}]}`)); err == nil {
		t.Error("an index of an unknown version was accepted")
	}
}
