#!/usr/bin/env bash
# Builds FerretDB (the MongoDB wire protocol over a SQLite directory) into bin/ferretdb/<version>/ferretdb
# for the MongoDB connector's tests (internal/teststore.StartMongo). No MongoDB server is packaged for
# our machines and nothing but the Go module proxy is reachable, so it is built from the module source.
# Idempotent: a binary of the pinned version is kept.
#
# FerretDB embeds build/version/version.txt, which its release process writes (git describe) and the
# module zip lacks: without it the binary panics at start. The module cache is read-only, so the source
# is copied into a scratch directory, made writable, and the file written there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${FERRETDB_VERSION:-v1.24.2}"
destdir="$root/bin/ferretdb/$version"
dest="$destdir/ferretdb"
# The output is captured first: grep -q closing the pipe early would fail the pipeline (pipefail).
if [[ -x "$dest" ]] && [[ "$("$dest" --version 2>/dev/null)" == *"version: $version"* ]]; then
	echo "build-ferretdb: $dest present"
	exit 0
fi
echo "build-ferretdb: building FerretDB $version from source into $dest (a few minutes, once)"
src="$(go mod download -json "github.com/FerretDB/FerretDB@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$src" || ! -d "$src" ]]; then
	echo "build-ferretdb: go mod download gave no source directory for FerretDB $version" >&2
	exit 1
fi
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -R "$src/." "$work/src"
chmod -R u+w "$work/src"
printf '%s\n' "$version" >"$work/src/build/version/version.txt"
mkdir -p "$destdir"
# Built next to the destination and renamed, so that a concurrent test never runs a partial binary.
tmp="$(mktemp "$dest.XXXXXX")"
trap 'rm -f "$tmp"; chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
# GOFLAGS from the caller (e.g. -race) must not leak into this build; GOTOOLCHAIN=local builds with
# the toolchain at hand instead of fetching the go directive's one.
(cd "$work/src" && GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -o "$tmp" ./cmd/ferretdb)
chmod 0755 "$tmp"
mv -f "$tmp" "$dest"
"$dest" --version
