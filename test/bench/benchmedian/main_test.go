package main

import (
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	in := `noise
bench: mode=linked rows=10000 seconds=1.5 ratio_to_floor=3.1
bench: mode=linked rows=10000 seconds=1.2 ratio_to_floor=2.5
bench: mode=linked rows=10000 seconds=2.0 ratio_to_floor=4.0
`
	got, err := summarize(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := "bench-median: rounds=3 mode=linked rows=10000 seconds=1.5(1.2-2) ratio_to_floor=3.1(2.5-4)"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if _, err := summarize(strings.NewReader("bench: mode=a x=1\nbench: mode=b x=2\n")); err == nil {
		t.Fatal("modes that differ between rounds must be refused")
	}
	if got, _ := summarize(strings.NewReader("bench: x=1\nbench: x=3\n")); got != "bench-median: rounds=2 x=2(1-3)" {
		t.Fatalf("even count: %s", got)
	}
}
