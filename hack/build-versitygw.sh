#!/usr/bin/env bash
# Builds versitygw (the S3 API over a local folder, posix backend) into bin/versitygw-<version> for the
# S3 connector's tests (internal/teststore.StartS3). The Go module proxy is the only source we can
# reach, so it is built from source with go install (about 3 minutes, once). Idempotent: a present
# binary of the pinned version is kept; bin/versitygw points at it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${VERSITYGW_VERSION:-v1.8.0}"
dest="$root/bin/versitygw-$version"
if [[ -x "$dest" ]]; then
	ln -sfn "versitygw-$version" "$root/bin/versitygw"
	exit 0
fi
echo "build-versitygw: building versitygw $version from source into bin/ (about 3 minutes, once)"
mkdir -p "$root/bin"
# Installed into a private directory and renamed, so that a concurrent user never runs a partial binary.
tmp="$(mktemp -d "$root/bin/.versitygw.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# Outside the module, so that the project's go.mod neither resolves nor records versitygw's dependencies.
(cd "$tmp" && GOBIN="$tmp" GOFLAGS=-trimpath go install "github.com/versity/versitygw/cmd/versitygw@$version")
mv -f "$tmp/versitygw" "$dest"
ln -sfn "versitygw-$version" "$root/bin/versitygw"
