package operator

import "github.com/go-logr/logr"

// MaxVerbosity is the most verbose level the operator logs at, whatever logger it is given: at 8
// and above client-go dumps request and response bodies (identifiers Secrets, connection Secrets,
// exports), and client-go logs through the logger of the reconcile's context, which is the
// manager's.
const MaxVerbosity = 7

// capVerbosity is l without its levels above MaxVerbosity.
func capVerbosity(l logr.Logger) logr.Logger {
	if l.GetSink() == nil {
		return l
	}
	if _, capped := l.GetSink().(cappedSink); capped {
		return l
	}
	return logr.New(cappedSink{l.GetSink()})
}

type cappedSink struct{ logr.LogSink }

func (s cappedSink) Enabled(level int) bool {
	return level <= MaxVerbosity && s.LogSink.Enabled(level)
}

func (s cappedSink) Info(level int, msg string, keysAndValues ...any) {
	if level <= MaxVerbosity {
		s.LogSink.Info(level, msg, keysAndValues...)
	}
}

func (s cappedSink) WithValues(keysAndValues ...any) logr.LogSink {
	return cappedSink{s.LogSink.WithValues(keysAndValues...)}
}

func (s cappedSink) WithName(name string) logr.LogSink { return cappedSink{s.LogSink.WithName(name)} }

// WithCallDepth keeps the caller the underlying sink reports (the wrapper adds a frame).
func (s cappedSink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return cappedSink{cd.WithCallDepth(depth + 1)}
	}
	return s
}
