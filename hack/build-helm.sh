#!/usr/bin/env bash
# Builds helm into bin/helm from the pinned tool module hack/helm (Go module proxy only: no helm
# release can be downloaded on our machines). A binary of the pinned version is kept.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(sed -n 's/^[[:space:]]*helm.sh\/helm\/v3 \(v[^ ]*\).*/\1/p; s/^require helm.sh\/helm\/v3 \(v[^ ]*\).*/\1/p' "$root/hack/helm/go.mod" | head -n1)"
dest="$root/bin/helm"
if [[ -x "$dest" ]] && "$dest" version --template '{{.Version}}' 2>/dev/null | grep -qx "$version"; then
	exit 0
fi
echo "build-helm: building helm $version from source into bin/helm (a minute or two, once)"
mkdir -p "$root/bin"
cd "$root/hack/helm"
go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" -o "$dest" helm.sh/helm/v3/cmd/helm
