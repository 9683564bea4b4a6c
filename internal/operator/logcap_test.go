package operator

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
)

// However verbose the logger it is given, the operator logs nothing above V(7): at V(8) client-go
// would dump request bodies, identifiers included.
func TestLoggerIsCappedAtVerbosity7(t *testing.T) {
	var lines []string
	l := capVerbosity(funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{Verbosity: 127}))
	l.V(7).Info("seven")
	l.V(8).Info("eight")
	l.WithName("child").WithValues("k", "v").V(9).Info("nine")
	l.WithName("child").V(1).Info("one")
	if l.V(8).Enabled() || l.WithName("x").V(10).Enabled() {
		t.Error("a level above 7 is enabled")
	}
	got := strings.Join(lines, "\n")
	if !strings.Contains(got, "seven") || !strings.Contains(got, "one") || strings.Contains(got, "eight") || strings.Contains(got, "nine") {
		t.Errorf("logged:\n%s", got)
	}
	if capVerbosity(l).GetSink() != l.GetSink() {
		t.Error("a capped logger is wrapped twice")
	}
}
