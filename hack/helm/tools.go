//go:build tools

// Package tools pins Helm, built from source through the Go module proxy by hack/build-helm.sh.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
