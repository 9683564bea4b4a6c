#!/usr/bin/env bash
# Builds helm into bin/helm from the tool module hack/helm, which pins helm.sh/helm/v3 (the Go module
# proxy is the only source we can reach: no helm release can be downloaded). Idempotent: a bin/helm
# of the pinned version is kept. Bump the version with
#   (cd hack/helm && go get helm.sh/helm/v3@vX.Y.Z && go mod tidy)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(cd "$root/hack/helm" && go list -m -f '{{.Version}}' helm.sh/helm/v3)"
dest="$root/bin/helm"
if [[ -x "$dest" ]] && [[ "$("$dest" version --template '{{.Version}}' 2>/dev/null)" == "$version" ]]; then
	exit 0
fi
echo "build-helm: building helm $version from source into bin/helm (a minute or two, once)"
mkdir -p "$root/bin"
# Built next to the destination and renamed, so that a concurrent user never runs a partial binary.
tmp="$(mktemp "$dest.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
cd "$root/hack/helm"
go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" -o "$tmp" helm.sh/helm/v3/cmd/helm
chmod 0755 "$tmp"
mv -f "$tmp" "$dest"
