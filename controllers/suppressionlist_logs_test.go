package controllers_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dsr-operator/dsr-operator/internal/operator"
)

// logBuffer collects a manager's log lines; reconcilers write to it from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// captureLogs makes the manager log to the returned buffer, as JSON, with a logger that would
// log every level: operator.New caps it at V(7) (from V(8) on client-go dumps request and response
// bodies, identifiers Secrets included), so this is the most the operator ever logs. It is what
// the manager's logger and every reconciler's and connector's logger derived from it write.
func captureLogs(o *operator.Options) *logBuffer {
	logs := &logBuffer{}
	o.Manager.Logger = zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-127)))
	return logs
}

// hexDumpLine is a line of a hex dump (encoding/hex.Dump, as client-go logs protobuf bodies).
var hexDumpLine = regexp.MustCompile(`^[0-9a-f]{8}  ((?:[0-9a-f]{2}  ?){1,16})`)

// readableLogs is the captured log text with, after each JSON line, its string fields unquoted
// and any hex dump among them decoded, so that a value split over dump lines is still found.
func readableLogs(t *testing.T, raw string) (string, int) {
	t.Helper()
	var out strings.Builder
	lines := 0
	for _, line := range strings.Split(raw, "\n") {
		if line == "" {
			continue
		}
		lines++
		out.WriteString(line)
		out.WriteByte('\n')
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Fatalf("log line %d is not JSON: %v", lines, err)
		}
		for _, v := range fields {
			str, ok := v.(string)
			if !ok {
				continue
			}
			out.WriteString(str)
			out.WriteByte('\n')
			for _, dl := range strings.Split(str, "\n") {
				if m := hexDumpLine.FindStringSubmatch(dl); m != nil {
					b, err := hex.DecodeString(strings.ReplaceAll(m[1], " ", ""))
					if err != nil {
						t.Fatalf("hex dump line %q: %v", dl, err)
					}
					out.Write(b)
				}
			}
			out.WriteByte('\n')
		}
	}
	return out.String(), lines
}
