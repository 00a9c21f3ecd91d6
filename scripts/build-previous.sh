#!/usr/bin/env bash
# Builds the previous release's `hubsync` from this repository's own history, for the
# compatibility test (Tests/CLITests/CompatibilityTests.swift), and prints its path.
# The tag is resolved first, then its known commit (a clone without tags); the build is cached in
# .build/compat/COMMIT, so a second run only prints the path.
# Usage: build-previous.sh [TAG [COMMIT]]
set -euo pipefail
tag=${1:-v0.1.0}
fallback=${2:-9a69ffd471450e1ee998b039707b56283a40cd63}
root=$(cd "$(dirname "$0")/.." && pwd)
swift=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
if commit=$(git -C "$root" rev-parse --verify -q "$tag^{commit}"); then :
elif git -C "$root" cat-file -e "$fallback^{commit}" 2>/dev/null; then commit=$fallback
else
  echo "build-previous: this clone has neither the tag $tag nor its commit $fallback; fetch the history (git fetch --tags --unshallow)" >&2
  exit 1
fi
scratch="$root/.build/compat/$commit"
mkdir -p "$root/.build/compat"
# One build at a time: a second caller waits for the first and then finds its result.
exec 9>"$root/.build/compat/.lock"
flock 9
if [ -x "$scratch/hubsync" ]; then echo "$scratch/hubsync"; exit 0; fi
rm -rf "$scratch/src"
mkdir -p "$scratch/src"
git -C "$root" archive "$commit" | tar -x -C "$scratch/src"
log="$scratch/build.log"
echo "build-previous: building $tag ($commit) into $scratch (log: $log)" >&2
if ! "$swift" build --product hubsync --package-path "$scratch/src" --scratch-path "$scratch/build" >"$log" 2>&1; then
  tail -40 "$log" >&2
  echo "build-previous: building $tag failed; the log's end is above" >&2
  exit 1
fi
bin=$("$swift" build --product hubsync --package-path "$scratch/src" --scratch-path "$scratch/build" --show-bin-path)
cp "$bin/hubsync" "$scratch/hubsync.tmp"
mv "$scratch/hubsync.tmp" "$scratch/hubsync"
echo "$scratch/hubsync"
