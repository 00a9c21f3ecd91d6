#!/usr/bin/env bash
# Installs the Debian packages HubSync needs, only those missing; prints nothing when all are there.
# Usage: setup.sh [bench]   (python3 runs examples/api_client.py in the tests)
set -euo pipefail
packages=(libsodium-dev libavahi-client-dev libzstd-dev libsqlite3-dev pkg-config avahi-daemon avahi-utils dbus iproute2 python3)
# `setup.sh bench`: also what `make bench` runs beside HubSync: the anchors, and sqlite3 and curl
# for its set-up steps.
if [ "${1:-}" = bench ]; then packages+=(syncthing sqlite3 restic curl bc); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
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
