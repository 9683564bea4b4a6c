package bench

import (
	"os"
	"testing"
)

// The parsers decide what the benchmark reports as API writes; these run in make test.

func TestRequestCountsSplitsWritesByVerbAndResource(t *testing.T) {
	before := parseProm(`# HELP apiserver_request_total Counter
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="POST",version="v1"} 10
apiserver_request_total{code="200",component="apiserver",dry_run="",group="privacy.dsr.dev",resource="deletionrequests",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 4
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="",scope="",subresource="/metrics",verb="GET",version=""} 1
`)
	after := parseProm(`apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="POST",version="v1"} 13
apiserver_request_total{code="409",component="apiserver",dry_run="",group="privacy.dsr.dev",resource="deletionrequests",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="privacy.dsr.dev",resource="deletionrequests",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 9
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="GET",version="v1"} 7 1700000000000
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="",scope="",subresource="/metrics",verb="GET",version=""} 2
apiserver_request_duration_seconds_count{verb="POST",resource="secrets"} 99
`)
	d := requestCounts(after).minus(requestCounts(before))
	want := apiCounts{"POST secrets": 3, "PATCH deletionrequests/status": 7, "GET secrets": 7}
	if len(d) != len(want) {
		t.Fatalf("got %v, want %v", d, want)
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s: got %v, want %v", k, d[k], v)
		}
	}
	// A conflict (409) is a write the API server had to handle: it counts.
	if got := d.writes(); got != 10 {
		t.Errorf("writes: got %v, want 10", got)
	}
	if keys := d.sortedKeys(); keys[0] != "GET secrets" && keys[0] != "PATCH deletionrequests/status" {
		t.Errorf("sortedKeys: %v", keys)
	}
}

func TestParsePromLabelsWithCommasAndNoLabels(t *testing.T) {
	s := parseProm(`m{a="x,y",b="z"} 1.5
plain 3
broken{a="x" 4
`)
	if len(s) != 2 || s[0].labels["a"] != "x,y" || s[0].labels["b"] != "z" || s[0].value != 1.5 || s[1].name != "plain" || s[1].value != 3 {
		t.Fatalf("got %+v", s)
	}
	if got := sumOf(s, "m", map[string]string{"b": "z"}); got != 1.5 {
		t.Errorf("sumOf: %v", got)
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if percentile(v, 0.5) != 5 || percentile(v, 0.99) != 10 || percentile(v, 0.1) != 1 || percentile(nil, 0.5) != 0 {
		t.Fatalf("p50 %v p99 %v p10 %v", percentile(v, 0.5), percentile(v, 0.99), percentile(v, 0.1))
	}
}

func TestSampleCPUSeesTheHarness(t *testing.T) {
	before := sampleCPU(0)
	// Burn CPU until the harness's own time moves (/proc counts in 10 ms ticks), within a bound
	// that is seconds of work on any machine.
	x := 0
	var u cpuUse
	for round := 0; round < 100 && u.groups["harness"] <= 0; round++ {
		for i := 0; i < 10_000_000; i++ {
			x += i % 7
		}
		u = sampleCPU(0).since(before)
	}
	if u.groups["harness"] <= 0 || x == 0 {
		t.Fatalf("no harness CPU time: %+v", u)
	}
	if rss, err := peakRSSMiB(os.Getpid()); err != nil || rss <= 0 {
		t.Fatalf("peak RSS %v %v", rss, err)
	}
}

func TestFloorWritesFromRepeatsEveryWriteKind(t *testing.T) {
	counts := apiCounts{
		"PATCH deletionrequests/status": 2000, "POST configmaps": 1000, "PUT configmaps": 1000,
		"POST events": 10, "GET secrets": 1000, "PATCH datastores/status": 1000,
	}
	f := floorWritesFrom(counts, 1000)
	// A write of a kind the floor does not know (here a store's status) is repeated as a status
	// patch; reads are not writes; a rare event rounds to none.
	if f.statusPatches != 3 || f.configMaps != 1 || f.configMapUpdates != 1 || f.events != 0 || f.secretGets != 0 {
		t.Errorf("%+v", f)
	}
}
