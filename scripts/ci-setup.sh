#!/usr/bin/env bash
# Installs what the test suites need, so that in CI none of them passes by
# skipping (.ci/run then sets ASYNCIFY_REQUIRE_TOOLS=1, which turns every
# skip into a failure):
#   - Binaryen's wasm-opt (Debian package binaryen) for the Binaryen suites
#     (tests/tests/binaryen.rs, linker/tests/binaryen.rs, acceptance.rs);
#   - Node and npm, and the npm packages of scripts/js-interop (npm ci from
#     its package-lock.json) for the interop checks;
#   - the real-world corpus, fetched from the npm registry and checked
#     against scripts/corpus.sha256 into corpus/real/ (ignored by git), which
#     tests/tests/corpus.rs reads.
# Each step does nothing when its tool or files are already there.
#
# Usage: scripts/ci-setup.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "ci-setup: $*" >&2; exit 1; }

# apt-get as root, or through sudo when it needs no password.
apt_install() {
  local run=()
  if [ "$(id -u)" != 0 ]; then
    sudo -n true 2>/dev/null || die "$* missing, and not root (nor password-less sudo) to apt-get install it"
    run=(sudo -n)
  fi
  command -v apt-get >/dev/null || die "$* missing, and no apt-get to install it"
  if [ -z "${apt_updated:-}" ]; then
    "${run[@]}" apt-get update
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive "${run[@]}" apt-get install -y --no-install-recommends "$@"
}

if ! command -v wasm-opt >/dev/null; then
  apt_install binaryen
fi
wasm-opt --version || die "wasm-opt does not run after installing binaryen"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi
node --version

interop="$repo/scripts/js-interop"
if [ ! -x "$interop/node_modules/.bin/wat2wasm" ] || [ ! -d "$interop/node_modules/asyncify-wasm" ]; then
  (cd "$interop" && npm ci --no-audit --no-fund)
fi

"$repo/scripts/fetch-corpus.sh" "$repo/corpus/real"
