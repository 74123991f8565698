#!/usr/bin/env bash
# Builds the npm package into js/pkg/: the transform compiled to
# wasm32-unknown-unknown (asyncify.wasm) and the JavaScript glue in three
# forms (browser ES module, Node ES module, Node CommonJS) with its TypeScript
# declarations. Nothing is downloaded but the Rust target (rustup, once).
#
# Usage: js/build.sh        (then: node js/test.mjs, or npm pack js/pkg)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"

# Idempotent: nothing to do when the target is already installed.
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 ||
  rustup target add wasm32-unknown-unknown

# A profile of its own, given on the command line so the workspace's release
# profile (debug info for the native benchmarks) stays as it is: no debug
# info, one codegen unit and LTO for a smaller, faster .wasm. Its artefacts go
# to target/wasm32-unknown-unknown/js-release and never churn the native ones.
profile=js-release
cargo build -p asyncify-js --lib --target wasm32-unknown-unknown --profile "$profile" \
  --config "profile.$profile.inherits=\"release\"" \
  --config "profile.$profile.debug=false" \
  --config "profile.$profile.strip=true" \
  --config "profile.$profile.lto=true" \
  --config "profile.$profile.codegen-units=1" \
  --config "profile.$profile.panic=\"abort\""

target_dir="$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
wasm="$target_dir/wasm32-unknown-unknown/$profile/asyncify_js.wasm"
[ -f "$wasm" ] || { echo "build.sh: no $wasm" >&2; exit 1; }

pkg="$here/pkg"
rm -rf "$pkg"
mkdir -p "$pkg"
cp "$wasm" "$pkg/asyncify.wasm"
node "$here/lib/assemble.mjs" "$here" "$pkg"
echo "build.sh: $pkg ($(wc -c <"$pkg/asyncify.wasm") bytes of wasm)"
