package export

import (
	"bufio"
	"bytes"
	"context"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// chromiumBinary finds Debian's chromium (hack/test-deps.sh installs it).
func chromiumBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed: run hack/test-deps.sh")
	}
	t.Skip("chromium is not installed (hack/test-deps.sh installs it)")
	return ""
}

// countingProxy accepts connections on loopback and counts them: chromium is told to send every
// request, loopback included, through it, so any network resource the page loads shows up here.
func countingProxy(t *testing.T) (addr string, count *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	count = &atomic.Int64{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if browserOwn(line) {
				continue
			}
			t.Logf("proxy request: %q", line)
			count.Add(1)
		}
	}()
	return ln.Addr().String(), count
}

// browserOwnRequests are the exact endpoints that chromium calls by itself in a fresh profile
// whatever the page (its component updater and account check, which no flag of chromium 156 turns
// off). Only these are ignored: any other host, fonts.googleapis.com and www.google.com included,
// counts as a network load of the page.
var browserOwnRequests = []string{"CONNECT accounts.google.com:443 ", "CONNECT update.googleapis.com:443 ",
	"POST http://update.googleapis.com/service/update2/json?", "GET http://clients2.google.com/time/1/current?"}

func browserOwn(requestLine string) bool {
	for _, p := range browserOwnRequests {
		if strings.HasPrefix(requestLine, p) {
			return true
		}
	}
	return false
}

// runChromium runs headless chromium on a file with a fresh profile, every request sent to proxy.
func runChromium(t *testing.T, bin, proxy, page string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--no-default-browser-check", "--disable-extensions", "--disable-background-networking", "--disable-sync",
		"--disable-component-update", "--disable-default-apps", "--disable-domain-reliability", "--metrics-recording-only",
		"--disable-client-side-phishing-detection", "--no-pings", "--disable-breakpad",
		"--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
		"--user-data-dir=" + t.TempDir(), "--proxy-server=http://" + proxy, "--proxy-bypass-list=<-loopback>",
		"--virtual-time-budget=3000", "--window-size=1200,2400"}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+page)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return out
}

func browserDoc() *Document {
	spec := &privacyv1alpha1.DataStoreSpec{Type: "postgres", Description: "Customer database",
		Purposes: []string{"Delivering your orders"}, DataCategories: []string{"Contact details", "Order history"},
		Retention: "10 years after the last order (German commercial law)", Recipients: []string{"DHL Paket GmbH"},
		Art15Context: privacyv1alpha1.Art15Context{Source: "Collected from you",
			AutomatedDecisionMaking: &privacyv1alpha1.AutomatedDecisionMaking{Used: false},
			ThirdCountries:          &privacyv1alpha1.ThirdCountryTransfers{None: true}}}
	recs := []connector.Record{
		{Location: "public.customers", Data: map[string]any{"id": 4711, "email": "jane@example.com", "name": "<script>alert('x')</script>"}},
		{Location: "public.orders", Data: map[string]any{"id": 1, "total": "=HYPERLINK(\"http://evil.example\")"}},
		{Location: "public.orders", Data: map[string]any{"id": 2, "total": "19.99"}},
	}
	return BuildWithContext(fullContext(), Request{Namespace: "shop", Name: "copy-jane", UID: "u1"}, "GDPR", "sha256:00",
		time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC), []StoreInput{{Kind: "DataStore", Name: "shop-db", Spec: spec,
			Data: &connector.Collection{Records: recs}}})
}

var cspMeta = regexp.MustCompile(`<meta http-equiv="Content-Security-Policy"[^>]*>`)

func TestHTMLReportInHeadlessChromium(t *testing.T) {
	bin := chromiumBinary(t)
	dir := t.TempDir()
	page, err := RenderHTML(browserDoc())
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report.html")
	// The same page without its Content-Security-Policy: the page itself, not only the policy,
	// must load nothing.
	bare := filepath.Join(dir, "bare.html")
	// A control page that does load a resource proves the proxy would see one.
	control := filepath.Join(dir, "control.html")
	for path, content := range map[string][]byte{report: page, bare: cspMeta.ReplaceAll(page, nil),
		control: []byte(`<!DOCTYPE html><html lang="en"><body><img src="http://203.0.113.9/x.png"></body></html>`)} {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if bytes.Equal(page, cspMeta.ReplaceAll(page, nil)) {
		t.Fatal("the page has no Content-Security-Policy")
	}

	proxy, count := countingProxy(t)
	runChromium(t, bin, proxy, control, "--dump-dom")
	if count.Load() == 0 {
		t.Fatal("the control page's image never reached the proxy: the test could not see a network load")
	}

	for _, path := range []string{report, bare} {
		proxy, count := countingProxy(t)
		dom := string(runChromium(t, bin, proxy, path, "--dump-dom"))
		if n := count.Load(); n != 0 {
			t.Errorf("%s: %d network connections, want none", filepath.Base(path), n)
		}
		for _, want := range []string{"We found 3 records about you in 1 of our systems.", "Delivering your orders",
			"Berliner Datenschutzbeauftragte", "&lt;script&gt;alert('x')&lt;/script&gt;", `lang="en"`} {
			if !strings.Contains(dom, want) {
				t.Errorf("%s: the DOM lacks %q", filepath.Base(path), want)
			}
		}
		if strings.Contains(dom, "<script") {
			t.Errorf("%s: the DOM holds a script element", filepath.Base(path))
		}
	}

	shot := filepath.Join(dir, "report.png")
	if keep := os.Getenv("REPORT_SCREENSHOT"); keep != "" {
		shot = keep // to look at it: REPORT_SCREENSHOT=/tmp/report.png go test -run Chromium
	}
	proxy, count = countingProxy(t)
	runChromium(t, bin, proxy, report, "--screenshot="+shot, "--hide-scrollbars")
	if count.Load() != 0 {
		t.Errorf("the screenshot run made %d network connections", count.Load())
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 800 {
		t.Fatalf("the screenshot is %v", b)
	}
	// A blank page is one colour: the letter's text makes many.
	colours := map[uint32]bool{}
	for y := 0; y < img.Bounds().Dy(); y += 7 {
		for x := 0; x < img.Bounds().Dx(); x += 7 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|b>>8] = true
		}
	}
	if len(colours) < 8 {
		t.Fatalf("the screenshot has %d colours: blank?", len(colours))
	}
}
