#!/usr/bin/env bash
# Testbed helpers for trying things by hand: devices in network namespaces joined to a bridge,
# each with its own dbus-daemon and avahi-daemon. The system tests (Tests/SystemTests) do the
# same from Swift. Root only; addresses 10.77.0.0/16 only; nothing touches the host network.
#
#   scripts/testbed.sh up NAME N     create bridge namespace NAME-br and devices NAME-1..N
#   scripts/testbed.sh exec NAME-K CMD...   run CMD inside device K (network and mount namespaces)
#   scripts/testbed.sh down NAME     kill every process in NAME's namespaces, remove them
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "testbed: needs root (network namespaces)" >&2; exit 1; }
state=${TESTBED_STATE:-/tmp/hubsync-testbed}

holder_pid() { cat "$state/$1.pid"; }

up() {
  local name=$1 n=$2
  mkdir -p "$state/$name"
  ip netns add "$name-br"
  ip -n "$name-br" link add br0 type bridge
  ip -n "$name-br" link set br0 up
  for k in $(seq 1 "$n"); do
    local dev="$name-$k" dir="$state/$name/$k"
    mkdir -p "$dir"
    setsid unshare --net --mount --propagation private sh -c \
      'mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/dbus /run/avahi-daemon && exec sleep infinity' \
      </dev/null >/dev/null 2>&1 &
    local pid=$!
    echo "$pid" >"$state/$dev.pid"
    for _ in $(seq 100); do [ -d "/proc/$pid/root/run/avahi-daemon" ] && break; sleep 0.05; done
    ip netns attach "$dev" "$pid"
    ip -n "$name-br" link add "v$k" type veth peer name eth0 netns "$dev"
    ip -n "$name-br" link set "v$k" master br0 up
    ip -n "$dev" link set lo up
    ip -n "$dev" addr add "10.77.0.$k/16" dev eth0
    ip -n "$dev" link set eth0 up
    write_configs "$dir" "$dev"
    nsenter -t "$pid" -m -n dbus-daemon --config-file="$dir/dbus.conf" --nofork --nopidfile </dev/null >"$dir/dbus.log" 2>&1 &
    echo $! >"$dir/dbus.pid"
    for _ in $(seq 100); do [ -S "/proc/$pid/root/run/dbus/system_bus_socket" ] && break; sleep 0.05; done
    nsenter -t "$pid" -m -n avahi-daemon --no-drop-root --no-chroot --no-rlimits -f "$dir/avahi.conf" </dev/null >"$dir/avahi.log" 2>&1 &
    echo $! >"$dir/avahi.pid"
    for _ in $(seq 200); do [ -S "/proc/$pid/root/run/avahi-daemon/socket" ] && break; sleep 0.05; done
  done
}

write_configs() {
  local dir=$1 dev=$2
  cat >"$dir/dbus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
XML
  cat >"$dir/avahi.conf" <<CONF
[server]
host-name=$dev
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
enable-dbus=yes
disallow-other-stacks=no
ratelimit-interval-usec=0
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-aaaa-on-ipv4=no
CONF
}

down() {
  local name=$1
  for ns in $(ip netns list | awk '{print $1}' | grep "^$name-" || true); do
    for p in $(ip netns pids "$ns"); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns"
  done
  rm -rf "${state:?}/$name" "$state/$name"-*.pid
}

case ${1:-} in
  up) up "$2" "$3" ;;
  exec) dev=$2; shift 2; exec nsenter -t "$(holder_pid "$dev")" -m -n "$@" ;;
  down) down "$2" ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
