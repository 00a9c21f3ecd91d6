#!/usr/bin/env bash
# Runs every test in groups, one after the other: the unit suites, then the CLI suites (real
# agents on loopback, the hostile suite, S3 on SeaweedFS, the previous release) in three parts by
# suite name, then the dashboard in a real browser (headless chromium beside two agents), then the
# system suites (namespaces with their own avahi-daemons, the ten-device soak). Swift Testing runs
# the tests of one run all at once; on a 2-core machine the 200 CLI tests together, or beside
# another group, starved each other's time limits and waits (an agent never quiet for 10 s in
# three minutes, a peer that closed a connection during its handshake), so no two groups
# overlap, and the CLI suites run about 70 at a time. (Swift Testing 6.3's
# SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=2 still started the 11 tests of three suites
# at once.) Every group runs even when an earlier one
# failed; the exit status is 1 when any failed. The CLI suites' time limits (10 minutes) guard
# against a hang only: a test started first may take its whole part's length.
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
run "CLI suites A-C" --filter 'CLITests\.[A-C]' "$@"
run "CLI suites D-O" --filter 'CLITests\.[D-O]' --skip 'DashboardBrowserTests' "$@"
run "CLI suites P-Z" --filter 'CLITests\.' --skip 'CLITests\.[A-O]' "$@"
run "browser suite" --filter 'DashboardBrowserTests' "$@"
run "system suites" --filter 'SystemTests\.' "$@"
if [ ${#failed[@]} -gt 0 ]; then
  echo "tests failed in: ${failed[*]}" >&2
  exit 1
fi
echo "all test groups passed" >&2
