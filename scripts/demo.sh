#!/usr/bin/env bash
# The demo: a household of three devices. Each runs in its own network namespace on a private
# bridge (10.77.0.0/16) with its own dbus-daemon and avahi-daemon (scripts/testbed.sh), so mDNS
# crosses a real wire. They find each other over mDNS; the desktop pairs through the laptop and
# the phone through the desktop, each with a short code and no address; a persona written on the
# phone appears on the laptop. Everything (namespaces, daemons, agents, files) is removed at the
# end, also on Ctrl-C or failure. Without root or network namespaces it runs the loopback demo.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
hubsync=$(realpath "${HUBSYNC:-$here/.build/debug/hubsync}")
testbed="$here/scripts/testbed.sh"

why_not=""
if [ "$(id -u)" -ne 0 ]; then why_not="not running as root"
elif ! unshare --net --mount true 2>/dev/null; then why_not="network namespaces cannot be made here (unshare --net failed)"
else
  for tool in ip nsenter avahi-daemon dbus-daemon; do
    command -v "$tool" >/dev/null || { why_not="$tool is missing (run scripts/setup.sh)"; break; }
  done
fi
if [ -n "$why_not" ]; then
  echo "The household demo needs three network namespaces, but $why_not;" \
       "showing the two-device loopback demo instead." >&2
  exec env HUBSYNC="$hubsync" bash "$here/scripts/demo-loopback.sh"
fi

work=$(mktemp -d)
export TESTBED_STATE="$work/testbed"
bed="hsdemo$$"
names=(laptop desktop phone)
started_bed=0
cleanup() {
  trap - EXIT INT TERM
  [ "$started_bed" = 1 ] && bash "$testbed" down "$bed" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "interrupted: tearing the household down" >&2; exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
on() { # K CMD...: runs a command inside device K
  local k=$1; shift
  bash "$testbed" exec "$bed-$k" "$@"
}
hs() { # K ARGS...: hubsync on device K, shown as typed there
  local k=$1; shift
  printf '%s$ hubsync' "${names[$((k-1))]}"
  for a in "$@"; do if [[ $a =~ ^[A-Za-z0-9._/:-]+$ ]]; then printf ' %s' "$a"; else printf " '%s'" "$a"; fi; done
  printf '\n'
  on "$k" "$hubsync" "$@" --data "$work/$k"
}
quiet() { local k=$1; shift; on "$k" "$hubsync" "$@" --data "$work/$k"; }
now() { date +%s%N; }
ms_since() { echo $(( ($(now) - $1) / 1000000 )); }

start_agent() { # K
  on "$1" "$hubsync" run --data "$work/$1" --listen 0.0.0.0:0 --api 127.0.0.1:0 --log-level warning \
    </dev/null >>"$work/agent-$1.log" 2>&1 &
  for _ in $(seq 200); do [ -f "$work/$1/agent.json" ] && return; sleep 0.05; done
  echo "the ${names[$(($1-1))]} agent did not start; its log:" >&2; cat "$work/agent-$1.log" >&2; exit 1
}

pair() { # MEMBER JOINER: the member shows a code, the joiner types it
  local m=$1 j=$2 out="$work/invite-$1.out"
  quiet "$m" pair invite --ttl 2m </dev/null >"$out" 2>"$work/invite-$m.err" &
  local invite=$!
  for _ in $(seq 200); do [ -s "$out" ] && break; sleep 0.02; done
  local code; code=$(head -n1 "$out")
  [ -n "$code" ] || { echo "no invite code from the ${names[$((m-1))]}:" >&2; cat "$work/invite-$m.err" >&2; exit 1; }
  printf '%s$ hubsync pair invite\n%s\n' "${names[$((m-1))]}" "$code"
  local t; t=$(now)
  hs "$j" pair join "$code"
  wait "$invite"
  sed -n '2,$p' "$out"
  echo "(${names[$((j-1))]} typed the code and no address: found over mDNS, paired and connected in $(ms_since "$t") ms)"
}

say "Three devices, each in its own network namespace with its own avahi-daemon"
started_bed=1
bash "$testbed" up "$bed" 3
for k in 1 2 3; do
  quiet "$k" init --name "${names[$((k-1))]}" >/dev/null
  start_agent "$k"
  echo "${names[$((k-1))]}: 10.77.0.$k, device $(quiet "$k" id | cut -c1-7)…, agent running"
done

say "They see each other's adverts over mDNS (random names; a version and a blinded group tag, no identity)"
for _ in $(seq 100); do
  [ "$(on 1 avahi-browse --resolve --terminate --parsable _hubsync._tcp 2>/dev/null | grep -c '^=')" -ge 2 ] && break; sleep 0.1
done
printf 'laptop$ avahi-browse --resolve --terminate _hubsync._tcp\n'
on 1 avahi-browse --resolve --terminate --parsable _hubsync._tcp 2>/dev/null | awk -F';' '$1 == "=" { printf "  %s at %s:%s  %s %s\n", $4, $8, $9, $10, $11 }'
echo "(each is its own household so far: different tags, and no device trusts another)"

say "The desktop joins through the laptop with a code"
pair 1 2

say "The phone joins through the desktop with a code"
pair 2 3

say "A persona written on the phone appears on the laptop"
t=$(now)
hs 3 put personas ada --json '{"name": "Ada", "style": "warm", "traits": ["curious"]}'
for _ in $(seq 200); do quiet 1 get personas ada >/dev/null 2>&1 && break; sleep 0.05; done
hs 1 get personas ada
echo "(on the laptop $(ms_since "$t") ms after the put; the laptop never saw the phone pair: it trusts it through the signed membership)"

say "One household of three on every device"
hs 1 pair household
tags() { on 1 avahi-browse --resolve --terminate --parsable _hubsync._tcp 2>/dev/null | awk -F';' '$1 == "=" { print $10 }' | grep -o 'g=[0-9a-f]*' | sort -u; }
for _ in $(seq 50); do [ "$(tags | wc -l)" -eq 1 ] && break; sleep 0.1; done
echo "Their adverts now carry one and the same blinded tag, $(tags | head -n1) (it changes every day;"
echo "i= names an invite, for two minutes after it closed):"
on 1 avahi-browse --resolve --terminate --parsable _hubsync._tcp 2>/dev/null | awk -F';' '$1 == "=" { printf "  %s at %s:%s ", $4, $8, $9; for (i = 10; i <= NF; i++) printf " %s", $i; printf "\n" }'
say "Done: tearing the namespaces, daemons and agents down."
