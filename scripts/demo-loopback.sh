#!/usr/bin/env bash
# The loopback demo, which scripts/demo.sh runs when network namespaces cannot be made: two
# devices on this machine, each running its agent on loopback. They trust each
# other, a write on one arrives on the other at once, and edits made while one is offline merge
# with the conflict surfaced on both. Everything lives in a temporary directory, removed at the end.
set -euo pipefail
hubsync=${HUBSYNC:-.build/debug/hubsync}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ hubsync'; printf ' %q' "$@"; printf '\n'; "$hubsync" "$@"; }
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

start_agent() { # DEVICE: starts its agent on free ports, waits until agent.json appears
  "$hubsync" run --data "$work/$1" --listen 127.0.0.1:0 --api 127.0.0.1:0 --log-level warning 2>>"$work/$1.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -f "$work/$1/agent.json" ] && return; sleep 0.05; done
  echo "the $1 agent did not start; its log:" >&2; cat "$work/$1.log" >&2; exit 1
}
stop_agent() { # DEVICE
  local pid; pid=$(field "$work/$1/agent.json" pid)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}

say "Two devices, each with its own identity, store and agent"
run init --name laptop --data "$work/laptop"
run init --name desktop --data "$work/desktop"
start_agent laptop
start_agent desktop
echo "laptop agent: peers on $(field "$work/laptop/agent.json" listen), API on $(field "$work/laptop/agent.json" api)"
echo "desktop agent: peers on $(field "$work/desktop/agent.json" listen), API on $(field "$work/desktop/agent.json" api)"

say "Each trusts the other (by device ID, with its address)"
run peers add "$("$hubsync" id --data "$work/desktop")" --address "$(field "$work/desktop/agent.json" listen)" --data "$work/laptop"
run peers add "$("$hubsync" id --data "$work/laptop")" --address "$(field "$work/laptop/agent.json" listen)" --data "$work/desktop"
for _ in $(seq 200); do
  "$hubsync" status --json --data "$work/laptop" | grep -q '"connected":true' && break; sleep 0.05
done
run status --data "$work/laptop"

say "A persona written on the laptop arrives on the desktop"
# The desktop's change feed, from its first change on (so it cannot miss the persona).
python3 "$here/examples/api_client.py" --data "$work/desktop" follow --since 0 --until-id ada > "$work/feed.jsonl" &
follower=$!
start=$(python3 -c 'import time; print(time.time())')
run put personas ada --json '{"name": "Ada", "style": "warm", "traits": ["curious"]}' --data "$work/laptop"
wait "$follower"
python3 - "$start" "$work/feed.jsonl" <<'PY'
import json, sys
start = float(sys.argv[1])
change = json.loads(open(sys.argv[2]).read().splitlines()[-1])
print(f"desktop's change feed: {change['record']['collection']}/{change['record']['id']} "
      f"{json.dumps(change['record']['fields'])} ({change['origin']}), "
      f"{(change['received_at'] - start) * 1000:.0f} ms after the put started")
PY
run get personas ada --data "$work/desktop"

say "The desktop goes offline; both edit the same field"
stop_agent desktop
run put personas ada --json '{"style": "formal"}' --data "$work/laptop"
run put personas ada --json '{"style": "playful"}' --data "$work/desktop"
start_agent desktop
for _ in $(seq 200); do
  [ "$("$hubsync" conflicts --json --data "$work/laptop")" != "[]" ] && \
  [ "$("$hubsync" conflicts --json --data "$work/desktop")" != "[]" ] && break; sleep 0.05
done

say "Back online: both show the same value and the same conflict; nothing was lost"
run get personas ada --data "$work/laptop"
run conflicts --data "$work/desktop"

say "Resolve on the desktop; the laptop follows"
run resolve personas ada style --value '"formal but kind"' --data "$work/desktop"
for _ in $(seq 200); do [ "$("$hubsync" conflicts --json --data "$work/laptop")" = "[]" ] && break; sleep 0.05; done
run get personas ada --data "$work/laptop"
say "Done. (Export and import files do the same offline: hubsync export / hubsync import.)"
