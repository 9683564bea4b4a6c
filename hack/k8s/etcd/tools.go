//go:build tools

// Package etcd pins the etcd that envtest and the dev cluster run; hack/build-k8s.sh builds
// go.etcd.io/etcd/server/v3 (a main package) from this module.
package etcd

import _ "go.etcd.io/etcd/server/v3/etcdmain"
