#!/usr/bin/env bash
# The Syncthing anchor for `hubsync-bench`: two Syncthing instances on loopback share one folder;
# times a full sync of FILES_DIR (already scanned on the first) into the empty second one.
#
#   scripts/bench-syncthing.sh FILES_DIR WORK_DIR
#
# Prints one JSON line: {"seconds": S, "files": N, "rss_a_mb": A, "rss_b_mb": B, "change_1pct_s": C,
# "single_change_s": [L, ...]}; when the second
# instance has not finished within LIMIT seconds (env SYNCTHING_LIMIT, default 1200), it prints
# {"timed_out": true, "seconds": LIMIT, "synced": K, "files": N, ...} instead.
# After the full sync, with both running: a 1 % change (every 100th file of A rewritten with one
# more field) and then SINGLE (env SYNCTHING_SINGLE, default 20) changes of one file each, each
# timed from the write until A reports B complete again (/rest/db/completion: B has announced the
# new versions). The watcher is off and each change asks A for a scan at once
# (POST /rest/db/scan, which returns when the scan is done): Syncthing at its fastest.
# Every announce, relay, NAT, upgrade, usage and crash report is off: traffic stays on
# 127.0.0.1. Ports: the kernel picks free ones (bound to port 0, read back, released), so a
# rare race with another program is possible; the script then fails and says so.
set -euo pipefail
files_dir=$(realpath "$1")
work=$(realpath -m "$2")
command -v syncthing >/dev/null || { echo "bench-syncthing: syncthing is not installed (apt-get install syncthing)" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work/b-folder"
count=$(find "$files_dir" -maxdepth 1 -type f | wc -l)
export STNOUPGRADE=1 STNODEFAULTFOLDER=1

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

read -r gui_a gui_b sync_a sync_b < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)

for side in a b; do
  syncthing generate --home="$work/home-$side" --no-default-folder --skip-port-probing >/dev/null 2>&1
done
id_a=$(syncthing --home="$work/home-a" --device-id)
id_b=$(syncthing --home="$work/home-b" --device-id)

# Rewrites a generated config: loopback only, the other device, the shared folder.
configure() { # side self_id other_id gui_port sync_port other_sync_port folder
  python3 - "$@" <<'EOF'
import sys, xml.etree.ElementTree as ET
side, self_id, other_id, gui, port, other_port, folder, home = sys.argv[1:9]
path = home + "/config.xml"
tree = ET.parse(path); root = tree.getroot()
opts = root.find("options")
settings = {"listenAddress": f"tcp://127.0.0.1:{port}", "globalAnnounceEnabled": "false",
            "localAnnounceEnabled": "false", "relaysEnabled": "false", "natEnabled": "false",
            "startBrowser": "false", "urAccepted": "-1", "autoUpgradeIntervalH": "0",
            "crashReportingEnabled": "false", "setLowPriority": "false", "stunKeepaliveStartS": "0",
            "stunKeepaliveMinS": "0", "announceLANAddresses": "false"}
for k, v in settings.items():
    e = opts.find(k)
    if e is None: e = ET.SubElement(opts, k)
    e.text = v
for e in opts.findall("globalAnnounceServer") + opts.findall("stunServer"):
    opts.remove(e)
gui_el = root.find("gui"); gui_el.find("address").text = f"127.0.0.1:{gui}"
gui_el.find("apikey").text = "hubsync-bench"
dev = ET.SubElement(root, "device", id=other_id, name="other", compression="metadata", introducer="false")
ET.SubElement(dev, "address").text = f"tcp://127.0.0.1:{other_port}"
f = ET.SubElement(root, "folder", id="memories", label="memories", path=folder, type="sendreceive",
                  rescanIntervalS="3600", fsWatcherEnabled="false", autoNormalize="true")
ET.SubElement(f, "device", id=self_id)
ET.SubElement(f, "device", id=other_id)
tree.write(path)
EOF
}
configure a "$id_a" "$id_b" "$gui_a" "$sync_a" "$sync_b" "$files_dir" "$work/home-a"
configure b "$id_b" "$id_a" "$gui_b" "$sync_b" "$sync_a" "$work/b-folder" "$work/home-b"

# Folder status of one side: "state localFiles needFiles".
folder_status() {
  curl -sf -H "X-API-Key: hubsync-bench" "http://127.0.0.1:$1/rest/db/status?folder=memories" 2>/dev/null \
    | python3 -c 'import sys, json; d = json.load(sys.stdin); print(d["state"], d["localFiles"], d["needFiles"])' 2>/dev/null || true
}
wait_for() { # gui_port wanted_files timeout_s
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    read -r state files need <<<"$(folder_status "$1")" || true
    if [ "${state:-}" = idle ] && [ "${files:-0}" = "$2" ] && [ "${need:-1}" = 0 ]; then return 0; fi
    sleep 0.2
  done
  echo "bench-syncthing: timed out after $3 s waiting for $2 files on 127.0.0.1:$1 (state ${state:-none}, ${files:-0} files)" >&2
  return 1
}
# Peak RSS of an instance: its worker, a child of the monitor process we started.
rss_mb() {
  local peak=0 p kb
  for p in "$1" $(pgrep -P "$1" || true); do
    kb=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    ((kb > peak)) && peak=$kb
  done
  echo $((peak / 1024))
}

syncthing serve --home="$work/home-a" --no-browser --no-restart --no-upgrade >"$work/a.log" 2>&1 &
pid_a=$!; pids+=("$pid_a")
wait_for "$gui_a" "$count" 900   # A's own scan first: not part of the figure
start=$(date +%s.%N)
syncthing serve --home="$work/home-b" --no-browser --no-restart --no-upgrade >"$work/b.log" 2>&1 &
pid_b=$!; pids+=("$pid_b")
limit=${SYNCTHING_LIMIT:-1200}
if ! wait_for "$gui_b" "$count" "$limit" 2>/dev/null; then
  read -r _ synced _ <<<"$(folder_status "$gui_b")" || true
  printf '{"timed_out": true, "seconds": %d, "synced": %d, "files": %d, "rss_a_mb": %s, "rss_b_mb": %s}\n' \
    "$limit" "${synced:-0}" "$count" "$(rss_mb "$pid_a")" "$(rss_mb "$pid_b")"
  exit 0
fi
end=$(date +%s.%N)
full=$(echo "$end - $start" | bc)

# B as A sees it: "completion needItems" (100 0 once B has everything A has).
completion() {
  curl -sf -H "X-API-Key: hubsync-bench" "http://127.0.0.1:$gui_a/rest/db/completion?folder=memories&device=$id_b" 2>/dev/null \
    | python3 -c 'import sys, json; d = json.load(sys.stdin); print(int(d["completion"]), d["needItems"])' 2>/dev/null || true
}
# Rewrites the named files of A (one more field), asks A to scan, waits until B is complete again;
# prints the seconds.
change() {
  local t0 deadline c need
  t0=$(date +%s.%N)
  python3 - "$@" <<'EOF2'
import sys
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f: text = f.read().rstrip("\n")
    with open(path, "w", encoding="utf-8") as f: f.write(text[:-1] + ',"mood":"changed"}\n')
EOF2
  curl -sf -X POST -H "X-API-Key: hubsync-bench" "http://127.0.0.1:$gui_a/rest/db/scan?folder=memories" >/dev/null
  deadline=$((SECONDS + 600))
  while ((SECONDS < deadline)); do
    read -r c need <<<"$(completion)" || true
    if [ "${c:-0}" = 100 ] && [ "${need:-1}" = 0 ]; then break; fi
    sleep 0.05
  done
  printf '%.3f\n' "$(echo "$(date +%s.%N) - $t0" | bc)"
}
mapfile -t all < <(find "$files_dir" -maxdepth 1 -type f | sort)
one_pct=()
for ((i = 0; i < ${#all[@]}; i += 100)); do one_pct+=("${all[$i]}"); done
change_1pct=$(change "${one_pct[@]}")
singles=()
for ((i = 0; i < ${SYNCTHING_SINGLE:-20}; i++)); do singles+=("$(change "${all[$(( (i * 37 + 1) % ${#all[@]} ))]}")"); done
printf '{"seconds": %.2f, "files": %d, "rss_a_mb": %s, "rss_b_mb": %s, "change_1pct_s": %.3f, "single_change_s": [%s]}\n' \
  "$full" "$count" "$(rss_mb "$pid_a")" "$(rss_mb "$pid_b")" "$change_1pct" "$(IFS=,; echo "${singles[*]}")"
