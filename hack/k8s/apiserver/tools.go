//go:build tools

// Package apiserver pins the kube-apiserver that envtest and the dev cluster run. The control-plane
// binaries cannot be downloaded on our machines, so hack/build-k8s.sh builds them from this module.
package apiserver

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"
