package teststore

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
)

// lifecycle is what the servers that run as one process in a throwaway directory share: stopped
// and started again on the same port (a store outage in a test), removed with their directory on
// Close. The embedding server sets relaunch to its own launch.
type lifecycle struct {
	mu       sync.Mutex
	baseDir  string
	proc     *process
	closed   bool
	relaunch func(context.Context) error
}

// Stop shuts the server down (SIGTERM); Start brings it back.
func (l *lifecycle) Stop() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.proc == nil {
		return nil
	}
	return l.proc.stop(syscall.SIGTERM)
}

// Start starts a stopped server again on the same port. Starting a running server is a no-op.
func (l *lifecycle) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("teststore: the server is closed")
	}
	if l.proc.running() {
		return nil
	}
	return l.relaunch(ctx)
}

// Close stops the server and removes its directory. It is idempotent.
func (l *lifecycle) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var stopErr error
	if l.proc != nil {
		stopErr = l.proc.stop(syscall.SIGKILL)
	}
	return errors.Join(stopErr, os.RemoveAll(l.baseDir))
}
