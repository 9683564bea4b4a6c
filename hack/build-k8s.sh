#!/usr/bin/env bash
# Builds the control-plane binaries that envtest and the dev cluster run (kube-apiserver, etcd,
# and kubectl when the machine has none) into bin/k8s/<version>/.
#
# Prebuilt envtest binaries cannot be downloaded on our machines, so they are compiled from the
# pinned tool modules in hack/k8s/ (module proxy only). A binary already present is kept.
#
# Usage: hack/build-k8s.sh [version]      (default: $K8S_VERSION, else 1.37.2; the Makefile passes it)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:-${K8S_VERSION:-1.37.2}}"
dest="${KUBEBUILDER_ASSETS:-$root/bin/k8s/$version}"

# The tool modules pin one Kubernetes release; building another version from them would put
# mislabelled binaries in the versioned folder.
pinned="$(sed -n 's/^require k8s.io\/kubernetes v//p; s/^[[:space:]]*k8s.io\/kubernetes v\([^ ]*\).*/\1/p' \
	"$root/hack/k8s/apiserver/go.mod" | head -n1)"
if [[ -n "$pinned" && "$pinned" != "$version" ]]; then
	echo "build-k8s: hack/k8s/apiserver pins Kubernetes $pinned, not $version; change the pin or K8S_VERSION" >&2
	exit 1
fi

mkdir -p "$dest"

# Without these the apiserver reports v0.0.0-master, which confuses version-skew checks in clients.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=v$version -X $pkg.gitMajor=${version%%.*}"
	minor="${version#*.}"
	ldflags+=" -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
done

# build NAME MODULE_DIR PACKAGE HOW_LONG [scratch]
# With "scratch", the module is copied to a temporary directory and built with -mod=mod: the tool
# module's go.sum covers the apiserver, not kubectl's extra dependencies, and the checked-in files
# must not change.
build() {
	local name="$1" moddir="$2" pkg="$3" how_long="$4" scratch="${5:-}"
	if [[ -x "$dest/$name" ]]; then
		echo "build-k8s: $name present in ${dest#"$root"/}, skipping"
		return
	fi
	echo "build-k8s: building $name $version from source, $how_long"
	local start=$SECONDS dir="$root/$moddir" modflag=()
	if [[ -n "$scratch" ]]; then
		dir="$(mktemp -d)"
		trap 'rm -rf "$dir"; trap - RETURN' RETURN
		cp "$root/$moddir"/go.mod "$root/$moddir"/go.sum "$root/$moddir"/*.go "$dir"/
		modflag=(-mod=mod)
	fi
	# Build to a temporary name so that an interrupted build never leaves a half-written binary
	# that the next run would take for a finished one.
	(cd "$dir" && go build "${modflag[@]}" -trimpath -ldflags "$ldflags" -o "$dest/.$name.tmp" "$pkg")
	mv -f "$dest/.$name.tmp" "$dest/$name"
	echo "build-k8s: built $name in $((SECONDS - start))s"
}

build etcd hack/k8s/etcd go.etcd.io/etcd/server/v3 "about 1-2 minutes the first time"
build kube-apiserver hack/k8s/apiserver k8s.io/kubernetes/cmd/kube-apiserver "about 5-10 minutes the first time"

# envtest only needs kubectl for a few helpers; reuse the machine's when there is one.
if [[ -e "$dest/kubectl" ]]; then
	echo "build-k8s: kubectl present in ${dest#"$root"/}, skipping"
elif system_kubectl="$(command -v kubectl)"; then
	echo "build-k8s: linking $system_kubectl into ${dest#"$root"/}"
	ln -s "$system_kubectl" "$dest/kubectl"
else
	build kubectl hack/k8s/apiserver k8s.io/kubernetes/cmd/kubectl "about 2-4 minutes the first time" scratch
fi

echo "build-k8s: control plane ready in ${dest#"$root"/}"
