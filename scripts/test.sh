#!/usr/bin/env bash
# Runs every test in four groups, one after the other: the unit suites, then the CLI suites
# (real agents on loopback, the hostile suite, S3 on SeaweedFS, the previous release), then the
# dashboard in a real browser (headless chromium beside two agents; a group of its own, so its
# load does not add to the CLI suites', whose time limits failed beside it on a loaded machine),
# then the system suites (namespaces with
# their own avahi-daemons, the ten-device soak). Swift Testing runs
# the tests of one run in parallel; on a 2-core machine the live suites of all three at once
# starve each other's time limits, so the groups do not overlap. Every group runs even when an
# earlier one failed; the exit status is 1 when any failed. The CLI suites' time limits (10
# minutes) guard against a hang only: on a 2-core CI machine that group runs about 300 s with
# its tests in parallel, so a test started first may take the group's whole length.
# Usage: test.sh [extra swift test arguments]
set -uo pipefail
swift=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
"$swift" build --build-tests "$@" || exit 1
failed=()
run() {
  local name=$1; shift
  echo "== tests: $name" >&2
  "$swift" test --skip-build "$@" || failed+=("$name")
}
run "unit suites" --skip 'CLITests\.|SystemTests\.' "$@"
run "CLI suites" --filter 'CLITests\.' --skip 'DashboardBrowserTests' "$@"
run "browser suite" --filter 'DashboardBrowserTests' "$@"
run "system suites" --filter 'SystemTests\.' "$@"
if [ ${#failed[@]} -gt 0 ]; then
  echo "tests failed in: ${failed[*]}" >&2
  exit 1
fi
echo "all four test groups passed" >&2
