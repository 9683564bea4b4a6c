package redis

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/requests"
)

// replyError is an error reply as go-redis returns it.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

func TestFailShowsOnlyTheServerCode(t *testing.T) {
	const value = "Zoe.O'Hara+dsr@example.test"
	ids := connector.Identifiers{"email": value}
	echoes := strings.Join([]string{strings.ToUpper(value), `"` + strings.ReplaceAll(value, "'", `\'`) + `"`, url.QueryEscape(value)}, " ")
	err := fail(context.Background(), "erase", replyError("WRONGTYPE Operation against a key holding the wrong kind of value: session:"+echoes), ids)
	f := requests.Classify(err, ids)
	if !strings.Contains(f.Message, "Redis WRONGTYPE") {
		t.Errorf("message %q lacks the server's code", f.Message)
	}
	for _, text := range []string{f.Message, f.Detail} {
		low := strings.ToLower(text)
		for _, form := range []string{"o'hara", `o\'hara`, "%40example", "zoe.o"} {
			if strings.Contains(low, form) {
				t.Fatalf("%q holds the identifier form %q", text, form)
			}
		}
	}
	if strings.Contains(f.Message, "Operation against") {
		t.Errorf("message %q holds the server's text", f.Message)
	}
}
