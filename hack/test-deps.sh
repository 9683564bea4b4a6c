#!/usr/bin/env bash
# Installs, with apt-get, the database servers that the tests start (internal/teststore): PostgreSQL,
# MariaDB and Redis, the tools that the documentation's tests run (curl, jq, openssl), and chromium,
# in which internal/export renders the HTML access report headless. Only the binaries are needed;
# the tests never use a system instance.
# Nothing is installed when every binary is already there, and apt-get update runs at most once.
#
# Usage: hack/test-deps.sh          install what is missing
#        hack/test-deps.sh --check  only report, exit 1 when something is missing
set -euo pipefail

check_only=false
[[ "${1:-}" == "--check" ]] && check_only=true

# Debian keeps server binaries off an ordinary PATH; internal/teststore looks in the same places.
search_path="$PATH:$(printf '%s:' /usr/lib/postgresql/*/bin)/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

have() {
	PATH="$search_path" command -v "$1" >/dev/null 2>&1
}

missing=()
# binary:package
for pair in initdb:postgresql postgres:postgresql pg_ctl:postgresql mariadbd:mariadb-server \
	mariadb-install-db:mariadb-server redis-server:redis-server curl:curl jq:jq openssl:openssl \
	chromium:chromium; do
	bin="${pair%%:*}" pkg="${pair#*:}"
	if ! have "$bin"; then
		echo "test-deps: $bin not found (package $pkg)"
		[[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
	fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
	echo "test-deps: database servers, curl, jq, openssl and chromium present"
	exit 0
fi
if $check_only; then
	exit 1
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
	sudo="sudo"
fi
echo "test-deps: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"

for pair in initdb:postgresql postgres:postgresql mariadbd:mariadb-server redis-server:redis-server chromium:chromium; do
	if ! have "${pair%%:*}"; then
		echo "test-deps: ${pair%%:*} still missing after installing ${pair#*:}" >&2
		exit 1
	fi
done
echo "test-deps: installed ${missing[*]}"
