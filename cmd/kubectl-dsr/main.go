// Command kubectl-dsr is the kubectl plugin of dsr-operator: `kubectl dsr status`, `kubectl dsr
// receipt verify`, `kubectl dsr erase` and more. Put it on the PATH (make build writes
// bin/kubectl-dsr) and kubectl finds it.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/dsr-operator/dsr-operator/internal/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := plugin.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
