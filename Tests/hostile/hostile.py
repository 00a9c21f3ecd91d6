#!/usr/bin/env python3
"""HubSync hostile-peer suite: attacks on a running agent, written from protocol/SPEC.md.

Each command runs one attack of issue 10 (findings 5 to 9) against the agent whose data
directory is given (it reads agent.json for the PID and addresses, api.token for the local API,
identity.key only to know what a prober must not learn), prints what it measured, and exits 0
when the agent held, 1 when the attack succeeded, 2 on bad usage. Tests/CLITests/HostileSuiteTests
runs them against real agents; hubsync-bench --only hostile runs the full-size ones.

    hostile.py id SEED_HEX                        the device ID text of an identity seed
    hostile.py preauth   --data DIR [--connections N] [--max-rss-mb M] [--max-api-ms MS] [--peer-data DIR]
    hostile.py limits    --data DIR
    hostile.py strangers --data DIR [--identities N]
    hostile.py prober    --data DIR [--invite NAME]
    hostile.py range     --data DIR --seed HEX [--fuzz N]
    hostile.py quota     --data DIR --seed HEX
    hostile.py syncfuzz  --data DIR --seed HEX [--peer-data DIR] [--messages N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402


class Agent:
    """The agent under attack, as its data directory describes it."""

    def __init__(self, data: str):
        self.data = data
        with open(os.path.join(data, "agent.json"), encoding="utf-8") as f:
            state = json.load(f)
        self.pid, self.listen, self.api = state["pid"], state["listen"], state["api"]
        with open(os.path.join(data, "api.token"), encoding="utf-8") as f:
            self.token = f.read().strip()

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def status(self, timeout: float = 10.0) -> tuple[dict, float]:
        """GET /v1/status and how long it took (ms)."""
        req = urllib.request.Request(f"http://{self.api}/v1/status", headers={"Authorization": f"Bearer {self.token}"})
        start = time.monotonic()
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body), (time.monotonic() - start) * 1000

    def call(self, method: str, path: str, body: dict | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://{self.api}{path}", data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def own_key(self) -> bytes:
        """The agent's identity public key: what a prober must never receive."""
        with open(os.path.join(self.data, "identity.key"), encoding="ascii") as f:
            lines = f.read().split()
        return wire.Identity(bytes.fromhex(lines[1])).public


results: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    results.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)


def finish() -> int:
    failed = [r for r in results if not r[1]]
    print(f"{len(results) - len(failed)} of {len(results)} checks held", flush=True)
    return 1 if failed else 0


class Sampler:
    """Samples the agent's RSS and the local API's answer time in the background."""

    def __init__(self, agent: Agent, every: float = 0.05):
        self.agent, self.every = agent, every
        self.rss: list[float] = []
        self.api_ms: list[float] = []
        self.api_failures = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._rss, daemon=True), threading.Thread(target=self._api, daemon=True)]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def _rss(self):
        while not self._stop.is_set():
            try:
                self.rss.append(self.agent.rss_mb())
            except OSError:
                return
            self._stop.wait(self.every)

    def _api(self):
        while not self._stop.is_set():
            try:
                self.api_ms.append(self.agent.status()[1])
            except OSError:
                self.api_failures += 1
            self._stop.wait(self.every * 2)


def median(values: list[float]) -> float:
    v = sorted(values)
    return v[len(v) // 2] if v else 0.0


# ---- finding 5: memory and connections before the handshake -----------------------------------

def raise_open_files(wanted: int) -> None:
    """Raises this process's soft limit on open files towards `wanted` (its hard limit at most)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def flood(args) -> int:
    """The flood itself, in a process of its own (so the sampler's timings in the parent do not
    wait for this loop): every connection is started at once, non-blocking, each announcing a
    frame of `--size` bytes and sending it, until the agent closes it. Prints one JSON line."""
    import errno
    import selectors
    raise_open_files(args.connections + 256)
    host, port = args.address.rsplit(":", 1)
    size = args.size
    sources = [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(args.connections // 32 + 1)]
    header, chunk = struct.pack(">I", size), bytes(64 * 1024)
    sel = selectors.DefaultSelector()
    counts = {"opened": 0, "refused": 0, "closed": 0, "open": 0, "open_at_once_max": 0, "bytes_sent": 0}
    open_now = [0]
    start = time.monotonic()

    class Conn:
        __slots__ = ("sock", "sent", "connected")

        def __init__(self, sock):
            self.sock, self.sent, self.connected = sock, 0, False

    def finish(c: Conn, outcome: str) -> None:
        counts[outcome] += 1
        if c.connected:
            open_now[0] -= 1
        sel.unregister(c.sock)
        c.sock.close()

    for i in range(args.connections):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((sources[i // 32], 0))
            err = s.connect_ex((host, int(port)))
        except OSError as e:
            err = e.errno
        if err not in (0, errno.EINPROGRESS):
            counts["refused"] += 1
            s.close()
            continue
        sel.register(s, selectors.EVENT_WRITE, Conn(s))
    deadline = time.monotonic() + args.seconds
    while sel.get_map() and time.monotonic() < deadline:
        for key, events in sel.select(timeout=0.5):
            c: Conn = key.data
            if not c.connected:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    finish(c, "refused")
                    continue
                c.connected = True
                counts["opened"] += 1
                open_now[0] += 1
                counts["open_at_once_max"] = max(counts["open_at_once_max"], open_now[0])
                sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
                continue
            if events & selectors.EVENT_READ:
                try:
                    data = c.sock.recv(65536)
                except BlockingIOError:
                    data = None
                except OSError:
                    data = b""
                if data == b"":
                    finish(c, "closed")
                    continue
            if events & selectors.EVENT_WRITE and c.sent < size + 4:
                buf = header[c.sent:] if c.sent < 4 else b""
                buf += chunk[: min(len(chunk), size + 4 - c.sent - len(buf))]
                try:
                    n = c.sock.send(buf)
                except BlockingIOError:
                    n = 0
                except OSError:
                    finish(c, "closed")
                    continue
                c.sent += n
                counts["bytes_sent"] += n
                if c.sent >= size + 4:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
    for key in list(sel.get_map().values()):
        finish(key.data, "open")
    counts["seconds"] = round(time.monotonic() - start, 1)
    print(json.dumps(counts), flush=True)
    return 0


def preauth(args) -> int:
    import subprocess
    agent = Agent(args.data)
    before = agent.rss_mb()
    size = (1 << 20) - 1
    start = time.monotonic()
    peer = Agent(args.peer_data) if args.peer_data else None
    arrivals: list[float] = []
    stop = threading.Event()

    def trusted_writes():
        """A trusted peer writes a record every 0.5 s; how long until the attacked agent has it."""
        n = 0
        while not stop.is_set():
            n += 1
            rid = f"hostile-{os.getpid()}-{n}"
            began = time.monotonic()
            peer.call("PATCH", f"/v1/records/memories/{rid}", {"text": f"written during the flood {n}"})
            while time.monotonic() - began < 10:
                if agent.call("GET", f"/v1/records/memories/{rid}")[0] == 200:
                    arrivals.append((time.monotonic() - began) * 1000)
                    break
                time.sleep(0.01)
            stop.wait(0.5)

    writer = threading.Thread(target=trusted_writes, daemon=True) if peer else None
    if writer:
        writer.start()
    with Sampler(agent) as sampler:
        worker = subprocess.run([sys.executable, os.path.abspath(__file__), "flood", "--address", agent.listen,
                                 "--connections", str(args.connections), "--size", str(size), "--seconds", "150"],
                                capture_output=True, text=True, timeout=240)
    seconds = time.monotonic() - start
    stop.set()
    if writer:
        writer.join(15)
    try:
        counts = json.loads(worker.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        counts = {}
        print(f"the flood process failed: {worker.stdout}{worker.stderr}", flush=True)
    peak = max(sampler.rss or [before])
    print(f"figures: connections={args.connections} frame_bytes={size} seconds={seconds:.1f} "
          f"opened={counts.get('opened', 0)} open_at_once_max={counts.get('open_at_once_max', 0)} "
          f"refused_at_connect={counts.get('refused', 0)} rss_before_mb={before:.1f} "
          f"rss_peak_mb={peak:.1f} rss_after_mb={agent.rss_mb():.1f} api_requests={len(sampler.api_ms)} "
          f"api_median_ms={median(sampler.api_ms):.1f} "
          f"api_max_ms={max(sampler.api_ms or [0]):.1f} api_failures={sampler.api_failures}" +
          (f" peer_writes={len(arrivals)} peer_write_median_ms={median(arrivals):.1f} "
           f"peer_write_max_ms={max(arrivals or [0]):.1f}" if peer else ""), flush=True)
    check("the agent survives", agent.alive())
    check("every connection was opened", counts.get("opened") == args.connections,
          f"{counts.get('opened')} of {args.connections} ({counts.get('refused')} refused at connect)")
    check("every connection was closed by the agent", counts.get("open") == 0 and counts.get("closed") == counts.get("opened"),
          f"{counts.get('open')} stayed open, {counts.get('closed')} closed")
    check(f"RSS stayed under {args.max_rss_mb} MB", peak <= args.max_rss_mb, f"peak {peak:.1f} MB")
    check("the local API answered throughout", sampler.api_failures == 0 and bool(sampler.api_ms))
    if args.max_api_ms is not None:
        check(f"the local API answered within {args.max_api_ms} ms", max(sampler.api_ms or [0]) <= args.max_api_ms,
              f"worst {max(sampler.api_ms or [0]):.1f} ms")
    if peer:
        check("a trusted peer's writes arrived throughout", len(arrivals) > 0, f"{len(arrivals)} arrived")
    return finish()


def closed_together(socks: list, seconds: float) -> set:
    """Which of `socks` the peer closes within `seconds` (all watched at once)."""
    import select
    closed: set = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        open_ = [c for c in socks if c not in closed]
        ready, _, _ = select.select(open_, [], [], max(0.0, deadline - time.monotonic()))
        for c in ready:
            try:
                if not c.recv(65536):
                    closed.add(c)
            except OSError:
                closed.add(c)
    return closed


def limits(args) -> int:
    agent = Agent(args.data)
    addr = agent.listen

    # A first frame longer than any first message (SPEC 2.1): closed on its length prefix.
    s = wire.connect(addr, "127.0.0.11")
    s.sendall(struct.pack(">I", 200))
    check("a 200-byte first frame is refused on its length alone", wire.closed_within(s, 3))
    s.close()

    # After message 1, a frame longer than message 3 (112 bytes).
    version = wire.version_spoken(addr)
    s = wire.connect(addr, "127.0.0.12")
    _, EI = wire.x25519_keypair()
    wire.send_frame(s, bytes([version]) + EI)
    msg2 = wire.recv_frame(s)
    s.sendall(struct.pack(">I", 113))
    check("message 2 is 32 bytes (an ephemeral key, nothing more)", len(msg2) == 32, f"{len(msg2)} bytes")
    check("a 113-byte message 3 is refused on its length alone", wire.closed_within(s, 3))
    s.close()

    # Per-address cap: of 40 idle connections from one address, 32 stay, the rest close at once.
    held = [wire.connect(addr, "127.0.0.13") for _ in range(40)]
    closed_set = closed_together(held, 1.0)
    closed = len(closed_set)
    check("one address holds at most 32 unauthenticated connections", closed == 8, f"{closed} of 40 closed at once")
    # Another address is still served meanwhile.
    other = wire.connect(addr, "127.0.0.14")
    wire.send_frame(other, bytes([version]) + EI)
    try:
        check("another address is still answered", len(wire.recv_frame(other)) > 0)
    except (wire.Closed, TimeoutError) as e:
        check("another address is still answered", False, str(e))
    other.close()

    # The time limit: an idle connection is closed (SPEC: 10 s).
    start = time.monotonic()
    survivors = [c for c in held if c not in closed_set]
    idle_closed = bool(survivors) and wire.closed_within(survivors[0], 14)
    check("an idle connection is closed within the handshake's time limit", idle_closed,
          f"after {time.monotonic() - start:.1f} s more")
    for c in held:
        c.close()
    check("the agent survives", agent.alive())
    return finish()


# ---- finding 8: strangers ---------------------------------------------------------------

def strangers(args) -> int:
    agent = Agent(args.data)
    before = agent.rss_mb()
    log_before = os.path.getsize(args.log) if args.log and os.path.exists(args.log) else 0
    done, lock = [0], threading.Lock()
    version = wire.version_spoken(agent.listen)
    start = time.monotonic()

    def worker(indices):
        for i in indices:
            try:
                wire.Session(agent.listen, wire.Identity(), source=f"127.0.{20 + i % 200}.{1 + (i // 200) % 250}",
                             version=version)
            except (wire.Closed, TimeoutError, ValueError, OSError):
                with lock:
                    done[0] += 1

    workers = [threading.Thread(target=worker, args=(range(k, args.identities, 16),), daemon=True) for k in range(16)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(600)
    seconds = time.monotonic() - start
    status, _ = agent.status()
    refused = status.get("refused", [])
    after = agent.rss_mb()
    log_growth = (os.path.getsize(args.log) - log_before) if args.log and os.path.exists(args.log) else -1
    status_bytes = len(json.dumps(status))
    print(f"figures: identities={args.identities} refused_connections={done[0]} seconds={seconds:.1f} "
          f"rss_before_mb={before:.1f} rss_after_mb={after:.1f} rss_growth_mb={after - before:.1f} "
          f"status_refused={len(refused)} status_bytes={status_bytes} log_growth_bytes={log_growth}", flush=True)
    check("every stranger was refused", done[0] == args.identities, f"{done[0]} of {args.identities}")
    check("status lists at most 64 refused devices", len(refused) <= 64, f"{len(refused)}")
    if args.log:
        check("the log grew by at most 64 KB", 0 <= log_growth <= 64 * 1024, f"{log_growth} bytes")
    if args.max_growth_mb is not None:
        check(f"RSS grew at most {args.max_growth_mb} MB", after - before <= args.max_growth_mb, f"{after - before:.1f} MB")
    check("the agent survives", agent.alive())
    return finish()


# ---- finding 9: a prober learns no stable identifier -------------------------------------------

def prober(args) -> int:
    agent = Agent(args.data)
    key = agent.own_key()
    device = wire.h32(key)
    secrets = {"public key": key, "device ID": device, "device ID (hex)": device.hex().encode(),
               "device ID (text)": wire.device_id_text(device).encode(),
               "device ID (text, no dashes)": wire.device_id_text(device).replace("-", "").encode()}
    seen: list[bytes] = []
    # The whole handshake as a stranger, for sync and for backups: every byte that arrives, and
    # every plaintext the prober can open, is kept.
    for backup in (False, True):
        try:
            wire.Session(agent.listen, wire.Identity(), backup=backup, sink=seen)
            check(f"a stranger's {'backup' if backup else 'sync'} handshake is refused", False, "the agent completed it")
        except (wire.Closed, TimeoutError, ValueError, OSError):
            check(f"a stranger's {'backup' if backup else 'sync'} handshake is refused", True)
    # Message 2 alone, a few times (it must differ every time), and version 1 as a prober knows it.
    for _ in range(3):
        s = wire.connect(agent.listen)
        _, EI = wire.x25519_keypair()
        wire.send_frame(s, bytes([2]) + EI)
        try:
            seen.append(wire.recv_frame(s))
        except (wire.Closed, TimeoutError):
            pass
        s.close()
    seen += wire.probe_v1(agent.listen, wire.Identity())
    if args.invite:
        for version in (2, 1):
            try:
                s = wire.connect(agent.listen)
                wire.send_frame(s, wire.pairing_message1(args.invite, version))
                seen.append(wire.recv_frame(s))
            except (wire.Closed, TimeoutError):
                pass
            finally:
                s.close()
    blob = b"\x00".join(seen)
    print(f"figures: messages_received={len(seen)} bytes_received={sum(len(m) for m in seen)}", flush=True)
    for name, value in secrets.items():
        check(f"no {name} in what a prober receives", value not in blob)
    check("the agent survives", agent.alive())
    return finish()


# ---- findings 6 and 7: a trusted peer's requests ------------------------------------------

def trusted(args) -> tuple[Agent, wire.Identity, wire.BackupClient]:
    agent = Agent(args.data)
    me = wire.Identity(bytes.fromhex(args.seed))
    return agent, me, wire.BackupClient(agent.listen, me)


def range_attack(args) -> int:
    agent, me, client = trusted(args)
    ok = client.ask(wire.request("put", "data/aa/hostile", b"\x00" + bytes(range(10))))
    check("a put is stored", ok[:1] == b"\x00", ok[1:].decode(errors="replace"))
    for offset, length, what in [((1 << 64) - 1, 1, "offset 2^64-1"), (0, 0xFFFFFFFF, "length 2^32-1"),
                                 (5, 10, "past the end"), (1 << 63, 1 << 31, "offset 2^63")]:
        try:
            answer = client.ask(wire.request("range", "data/aa/hostile", struct.pack(">QI", offset, length)))
            check(f"a range with {what} is refused", answer[:1] == b"\x05" and len(answer) < 4096,
                  f"status {answer[:1].hex()}, {len(answer)} bytes: {answer[1:120].decode(errors='replace')}")
        except (wire.Closed, TimeoutError, ValueError, OSError) as e:
            check(f"a range with {what} is refused", False, f"the connection ended: {e}")
            client = reconnect(agent, me)
            if client is None:
                break
    check("the agent survives ranges", agent.alive())
    if client is None:
        return finish()
    # A bounded fuzz run over the backup requests: mutated valid requests and random bytes.
    rng = random.Random(0x10B)
    seeds = [wire.request("get", "data/aa/hostile"), wire.request("range", "data/aa/hostile", struct.pack(">QI", 2, 3)),
             wire.request("list", "data"), wire.request("exists", "config"), wire.request("usage"),
             wire.request("put", "data/bb/f", b"\x00abc"), wire.request("delete", "locks/x"),
             wire.request("prune", "", wire.prune_plan(me, b"\x00" * 32, ["data/aa/none"]))]
    answered = ended = 0
    for i in range(args.fuzz):
        body = mutate(rng, bytearray(rng.choice(seeds)))
        if i % 50 == 49:
            body = bytearray(os.urandom(rng.randrange(0, 64)))
        try:
            answer = client.ask(bytes(body), timeout=10)
            answered += 1 if answer else 0
        except (wire.Closed, TimeoutError, ValueError, OSError):
            ended += 1
            client = reconnect(agent, me)
            if client is None:
                break
    print(f"figures: fuzzed_requests={args.fuzz} answered={answered} connections_ended={ended}", flush=True)
    check("no fuzzed request stops the agent", agent.alive())
    try:
        agent.status()
        check("the local API still answers", True)
    except OSError as e:
        check("the local API still answers", False, str(e))
    return finish()


def reconnect(agent: Agent, me: wire.Identity) -> wire.BackupClient | None:
    """A new connection after the agent closed one; None when the agent is gone."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and agent.alive():
        try:
            return wire.BackupClient(agent.listen, me)
        except (wire.Closed, TimeoutError, ValueError, OSError):
            time.sleep(0.1)
    return None


def area_bytes(path: str) -> tuple[int, int, int]:
    """Bytes on disk (st_blocks), files and folders under `path`."""
    total = files = folders = 0
    for root, dirs, names in os.walk(path):
        folders += len(dirs)
        for n in names:
            st = os.lstat(os.path.join(root, n))
            total += st.st_blocks * 512
            files += 1
        total += len(dirs) * 4096
    return total, files, folders


def quota(args) -> int:
    agent, me, client = trusted(args)
    server_id = wire.h32(agent.own_key())
    area = os.path.join(agent.data, "backups", me.device_id.hex())
    stored = 0
    for i in range(200):
        answer = client.ask(wire.request("put", f"data/d{i:03d}/e{i:03d}", b"\x00"))
        stored += answer[:1] == b"\x00"
    plans = 0
    names = [f"data/zz/{i:011d}" for i in range(3000)]  # about 61 KB signed
    for i in range(20):
        answer = client.ask(wire.request("prune", "", wire.prune_plan(me, server_id, names, when=i + 1)))
        plans += answer[:1] == b"\x00"
    usage = client.ask(wire.request("usage"))
    used, limit, _ = struct.unpack(">QQQ", usage[1:25]) if usage[:1] == b"\x00" else (0, 0, 0)
    disk, files, folders = area_bytes(area)
    print(f"figures: empty_puts_stored={stored} of 200, plans_kept={plans} of 20, reported_used={used} quota={limit} "
          f"disk_bytes={disk} files={files} folders={folders}", flush=True)
    check("empty files under new folders are charged", stored < 200, f"{stored} of 200 stored")
    check("prune plans are charged", plans < 20, f"{plans} of 20 kept")
    check("what is on disk stays within the quota (and an eighth for plans)", disk <= limit + limit // 8 + 64 * 1024,
          f"{disk} bytes for a quota of {limit}")
    deep = client.ask(wire.request("put", "data/a/b/c/d/e", b"\x00"))
    check("a name deeper than 4 parts is refused", deep[:1] == b"\x05", deep[1:].decode(errors="replace"))
    long_part = client.ask(wire.request("get", "data/" + "a" * 300))
    check("a name part longer than 255 bytes is malformed (5), not an I/O failure",
          long_part[:1] == b"\x05", long_part[1:].decode(errors="replace"))
    truncated = client.ask(bytes([2]) + struct.pack(">H", 500) + b"data")
    check("a truncated request is malformed (5)", truncated[:1] == b"\x05", truncated[1:].decode(errors="replace"))
    missing = client.ask(wire.request("get", "data/zz/" + "b" * 60))
    check("answers never name where the peer keeps files", agent.data.encode() not in missing and b"/backups/" not in missing,
          missing[1:].decode(errors="replace"))

    # A request announced as far larger than the quota: answered over quota, its body never held.
    rss_before = agent.rss_mb()
    big = 8 << 20
    body = wire.request("put", "data/cc/big", b"\x00" + bytes(big))
    client.send_raw(body)
    answer = client.message()
    check("a put longer than the quota is answered over quota (2)", answer[:1] == b"\x02", answer[1:120].decode(errors="replace"))
    check("its body was not held", agent.rss_mb() - rss_before < 6, f"RSS {rss_before:.1f} -> {agent.rss_mb():.1f} MB")
    check("the connection goes on", client.ask(wire.request("usage"))[:1] == b"\x00")

    # At most 4 backup connections from one device at once; the others are refused in the hello.
    held, refusals = [], []
    for _ in range(8):
        try:
            held.append(wire.BackupClient(agent.listen, me))
        except (ValueError, wire.Closed, OSError) as e:
            refusals.append(str(e))
    check("one device holds at most 4 backup connections (this one already has 1)", len(held) == 3 and len(refusals) == 5,
          f"{len(held)} opened, {len(refusals)} refused: {refusals[:1]}")
    for c in held:
        c.close()
    check("the agent survives", agent.alive())
    return finish()


def buffers(args) -> int:
    """Review 2, G3: one trusted device opens its 4 backup connections and sends all but the
    last bytes of a 63 MiB put on each, then holds them. The storing peer holds at most its
    receive budget (160 MiB) of such requests, whoever sends them."""
    agent, me, first = trusted(args)
    clients = [first]
    for _ in range(3):
        try:
            clients.append(wire.BackupClient(agent.listen, me))
        except (ValueError, wire.Closed, OSError):
            break
    size = 63 << 20
    rss_before = agent.rss_mb()
    peak = rss_before
    for c in clients:
        body = wire.request("put", "data/ee/" + os.urandom(8).hex(), b"\x00" * size)
        data = struct.pack(">I", len(body)) + body
        for i in range(0, len(data) - 1000, 256 * 1024):
            c.session.send(data[i:min(i + 256 * 1024, len(data) - 1000)])
        peak = max(peak, agent.rss_mb())
    deadline = time.time() + 5
    while time.time() < deadline:
        peak = max(peak, agent.rss_mb())
        time.sleep(0.2)
    growth = peak - rss_before
    print(f"figures: connections={len(clients)} partial_puts_mib={len(clients) * 63} rss_growth_mb={growth:.1f}", flush=True)
    check("four connections were open", len(clients) == 4, f"{len(clients)}")
    check("the storing peer holds at most its receive budget of partial requests (160 MiB, and 60 MB besides)",
          growth <= 160 * 1.048576 + 60, f"RSS grew {growth:.1f} MB for {len(clients) * 63} MiB of partial puts")
    for c in clients:
        c.close()
    check("the agent survives", agent.alive())
    fresh = wire.BackupClient(agent.listen, me)
    check("a new connection is served afterwards", fresh.ask(wire.request("usage"))[:1] == b"\x00")
    fresh.close()
    return finish()


def revoked(args) -> int:
    """Finding F12 of the attack review: a device no longer trusted keeps no open backup connection."""
    agent, me, client = trusted(args)
    first = client.ask(wire.request("put", "data/aa/before", b"\x00before"))
    check("a put before the removal is stored", first[:1] == b"\x00", first[1:].decode(errors="replace"))
    status, body = agent.call("DELETE", "/v1/peers/" + wire.device_id_text(me.device_id))
    check("the peer is removed", status == 200, f"HTTP {status}: {body[:200]!r}")
    try:
        answer = client.ask(wire.request("put", "data/aa/after", b"\x00after"), timeout=10)
        check("a put on the open connection after the removal is not served", False, f"answered {answer[:1].hex()}")
    except (wire.Closed, TimeoutError, ValueError, OSError):
        check("a put on the open connection after the removal is not served", True)
    stored = os.path.join(agent.data, "backups", me.device_id.hex(), "repo", "data", "aa", "after")
    check("nothing sent after the removal was written", not os.path.exists(stored))
    try:
        wire.BackupClient(agent.listen, me)
        check("a new connection is refused", False)
    except (wire.Closed, TimeoutError, ValueError, OSError):
        check("a new connection is refused", True)
    check("the agent survives", agent.alive())
    return finish()


# ---- a trusted peer's sync frames (SPEC 3.1) ----------------------------------------------------

def string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def sync_hello(epoch: bytes = b"hostile-epoch", caps=(b"fastpath", b"live", b"reconcile", b"parts")) -> bytes:
    clock = int(time.time() * 1000) << 16
    return (bytes([1]) + struct.pack(">HHI", 1, 1, len(caps)) + b"".join(string(c) for c in caps)
            + string(epoch) + struct.pack(">Q", clock))


class SyncPeer:
    """A trusted device's sync session: the handshake, both hellos, then one message at a time."""

    def __init__(self, address: str, me: wire.Identity, send_hello: bool = True):
        self.session = wire.Session(address, me)
        self.epoch = b""
        if send_hello:
            self.session.send(sync_hello())
            theirs = self.session.recv(10)
            if theirs[:1] != b"\x01":
                raise ValueError(f"the agent's first message has tag {theirs[:1].hex()}, not hello")
            # tag, version, schema, n capabilities, the capabilities, then the log epoch.
            at = 9
            (n,) = struct.unpack(">I", theirs[5:9])
            for _ in range(n):
                (length,) = struct.unpack(">I", theirs[at:at + 4])
                at += 4 + length
            (length,) = struct.unpack(">I", theirs[at:at + 4])
            self.epoch = theirs[at + 4:at + 4 + length]

    def round_trip(self, message: bytes, nonce: int, timeout: float = 10.0) -> tuple[str, list[bytes]]:
        """Sends `message`, then a ping; reads until the pong: ("answered", messages seen),
        ("closed", …) when the agent ended the session (with or without goodbye), ("silent", …)
        when it did neither within `timeout`."""
        seen: list[bytes] = []
        try:
            self.session.send(message)
            self.session.send(bytes([8]) + struct.pack(">Q", nonce))
        except OSError:
            return "closed", seen
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "silent", seen
            try:
                got = self.session.recv(left)
            except (wire.Closed, ConnectionResetError, BrokenPipeError):
                return "closed", seen
            except TimeoutError:
                return "silent", seen
            except ValueError:  # a frame that does not open: the stream is over
                return "closed", seen
            seen.append(got)
            if got == bytes([9]) + struct.pack(">Q", nonce):
                return "answered", seen

    def close(self) -> None:
        self.session.close()


def sync_seeds(agent: Agent, me: wire.Identity) -> tuple[list[bytes], list[bytes]]:
    """Valid sync messages of every kind, and the record states the agent sends in its fast path."""
    peer = SyncPeer(agent.listen, me)
    states: list[bytes] = []
    try:
        _, seen = peer.round_trip(bytes([2]) + struct.pack(">Q", 0) + string(peer.epoch), 1)
        # The pong comes first; the fast path's batches follow, up to the one marked final.
        deadline = time.monotonic() + 20
        while not any(m[:1] == b"\x03" and len(m) > 9 and m[9] == 1 for m in seen) and time.monotonic() < deadline:
            try:
                seen.append(peer.session.recv(max(0.1, deadline - time.monotonic())))
            except (wire.Closed, TimeoutError, ValueError, OSError):
                break
        for m in seen:
            if m[:1] == b"\x03" and len(m) >= 14:
                (n,) = struct.unpack(">I", m[10:14])
                at = 14
                for _ in range(n):
                    (length,) = struct.unpack(">I", m[at:at + 4])
                    states.append(m[at + 4:at + 4 + length])
                    at += 4 + length
    finally:
        peer.close()
    state = states[0] if states else b"\x01" * 40
    seeds = [
        sync_hello(),
        bytes([2]) + struct.pack(">Q", 0) + string(b"some-epoch"),
        bytes([3]) + struct.pack(">QBI", 7, 0, len(states)) + b"".join(string(x) for x in states),
        bytes([3]) + struct.pack(">QBI", 0, 1, 0),
        bytes([4]) + struct.pack(">Q", 3),
        bytes([5]) + b"\x00\xff\x01" + os.urandom(16),                       # the whole set's fingerprint
        bytes([5]) + b"\x00\xff\x02\x01" + os.urandom(32),                   # an ID list of one
        bytes([6]) + struct.pack(">I", 2) + os.urandom(64),
        bytes([7]),
        bytes([9]) + struct.pack(">Q", 12345),
        bytes([11]) + struct.pack(">QII", 0, len(state), 0) + string(state),
        bytes([11]) + struct.pack(">QII", 0, len(state) + 10, 0) + string(state),  # a first piece of more
        bytes([64]) + b"an optional kind",
    ]
    return seeds, states


def mutate(rng: random.Random, body: bytearray) -> bytearray:
    """One to four random edits: a byte changed, bytes inserted or deleted, a count set to
    2^32-1, the message cut short, its tag replaced."""
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(body) + 1)
        kind = rng.randrange(7)
        if kind == 0 and at < len(body):
            body[at] = rng.randrange(256)
        elif kind == 1:
            body[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif kind == 2 and at < len(body):
            del body[at:at + rng.randrange(1, 9)]
        elif kind == 3 and len(body) >= 5:
            at = rng.randrange(1, len(body) - 3)
            body[at:at + 4] = b"\xff\xff\xff\xff"
        elif kind == 4:
            del body[rng.randrange(len(body) + 1):]
        elif kind == 5 and body:
            body[0] = rng.choice([0, 12, 13, 63, 127, 128, 200, 255])
        elif body:
            body[at % len(body)] ^= 1 << rng.randrange(8)
    return body


def sync_fuzz(args) -> int:
    agent = Agent(args.data)
    me = wire.Identity(bytes.fromhex(args.seed))
    peer = Agent(args.peer_data) if args.peer_data else None
    rng = random.Random(0x5C)
    seeds, states = sync_seeds(agent, me)
    check("the agent sends its record states to a trusted peer", bool(states), f"{len(states)} states")
    outcomes = {"answered": 0, "closed": 0, "silent": 0, "refused": 0}
    kinds: dict[int, int] = {}
    silent: list[str] = []
    start = time.monotonic()
    connection: SyncPeer | None = None
    sent = 0
    while sent < args.messages and time.monotonic() - start < args.seconds and agent.alive():
        if connection is None:
            try:
                connection = SyncPeer(agent.listen, me, send_hello=rng.random() < 0.9)
            except (wire.Closed, TimeoutError, ValueError, OSError):
                # The agent may not have let go of the last session yet ("duplicate connection"):
                # try again, a bounded number of times.
                outcomes["refused"] += 1
                connection = None
                if outcomes["refused"] > 200:
                    break
                time.sleep(0.05)
                continue
        choice = rng.random()
        if choice < 0.08:
            body = bytearray(rng.choice(seeds))                      # valid as it is
        elif choice < 0.16:
            base = rng.choice(seeds)
            body = bytearray(base[: rng.randrange(len(base))])       # truncated
        elif choice < 0.2:
            body = bytearray(bytes([rng.choice([3, 5, 6, 11])]) + os.urandom((1 << 20) - 64))  # oversized junk
        elif choice < 0.24:
            body = bytearray(os.urandom(rng.randrange(1, 80)))       # random bytes
        else:
            body = mutate(rng, bytearray(rng.choice(seeds)))
        if body:
            kinds[body[0]] = kinds.get(body[0], 0) + 1
        sent += 1
        outcome, _ = connection.round_trip(bytes(body), sent)
        outcomes[outcome] += 1
        if outcome == "silent":
            silent.append(bytes(body[:24]).hex())
        if outcome != "answered":
            connection.close()
            connection = None
    if connection:
        connection.close()
    seconds = time.monotonic() - start
    print(f"figures: messages={sent} seconds={seconds:.1f} answered={outcomes['answered']} closed={outcomes['closed']} "
          f"silent={outcomes['silent']} reconnects_refused={outcomes['refused']} tags={len(kinds)}", flush=True)
    check("the agent survives every fuzzed sync message", agent.alive())
    check("every message was answered or the session closed", not silent, f"no answer and no close after: {silent[:3]}")
    check("every message kind was sent, valid and mutated", all(k in kinds for k in (1, 2, 3, 4, 5, 6, 7, 9, 11, 64)),
          f"tags {sorted(kinds)}")
    check("a trusted device is still served afterwards", reconnects(agent, me))
    try:
        agent.status()
        check("the local API still answers", True)
    except OSError as e:
        check("the local API still answers", False, str(e))
    if peer:
        rid = f"after-fuzz-{os.getpid()}"
        peer.call("PATCH", f"/v1/records/memories/{rid}", {"text": "written after the fuzz"})
        arrived = wait_for(lambda: agent.call("GET", f"/v1/records/memories/{rid}")[0] == 200, 20)
        check("another peer's write still arrives", arrived)
        rid2 = f"from-attacked-{os.getpid()}"
        agent.call("PATCH", f"/v1/records/memories/{rid2}", {"text": "written by the attacked agent"})
        check("the attacked agent's write still reaches the other peer",
              wait_for(lambda: peer.call("GET", f"/v1/records/memories/{rid2}")[0] == 200, 20))
    return finish()


def reconnects(agent: Agent, me: wire.Identity) -> bool:
    try:
        p = SyncPeer(agent.listen, me)
        outcome, _ = p.round_trip(bytes([4]) + struct.pack(">Q", 0), 99)
        p.close()
        return outcome == "answered"
    except (wire.Closed, TimeoutError, ValueError, OSError):
        return False


def wait_for(condition, seconds: float) -> bool:
    """Polls `condition` every 20 ms until it holds or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("id", help="print the device ID text of an identity seed")
    p.add_argument("seed")
    p = sub.add_parser("flood", help="(used by preauth) the flood, in a process of its own")
    p.add_argument("--address", required=True)
    p.add_argument("--connections", type=int, required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--seconds", type=float, default=150)
    for name, fn in [("preauth", preauth), ("limits", limits), ("strangers", strangers), ("prober", prober),
                     ("range", range_attack), ("quota", quota), ("buffers", buffers), ("revoked", revoked),
                     ("syncfuzz", sync_fuzz)]:
        p = sub.add_parser(name)
        p.set_defaults(fn=fn)
        p.add_argument("--data", required=True, help="the attacked agent's data directory")
    for p in sub.choices.values():
        if p.prog.endswith("preauth"):
            p.add_argument("--connections", type=int, default=200)
            p.add_argument("--max-rss-mb", type=float, default=150)
            p.add_argument("--peer-data", help="a trusted peer's data directory: its writes are timed to the agent")
            p.add_argument("--max-api-ms", type=float, help="fail when a local API answer took longer")
        if p.prog.endswith("strangers"):
            p.add_argument("--identities", type=int, default=200)
            p.add_argument("--log", help="the agent's log file, to measure its growth")
            p.add_argument("--max-growth-mb", type=float)
        if p.prog.endswith("prober"):
            p.add_argument("--invite", help="the name of an invite open on the agent")
        if p.prog.endswith("syncfuzz"):
            p.add_argument("--peer-data", help="a peer of the agent's: its writes must still arrive afterwards")
            p.add_argument("--messages", type=int, default=600)
            p.add_argument("--seconds", type=float, default=120)
        if (p.prog.endswith(" range") or p.prog.endswith(" quota") or p.prog.endswith(" revoked")
                or p.prog.endswith("syncfuzz") or p.prog.endswith(" buffers")):
            p.add_argument("--seed", required=True, help="the identity seed (hex) of a device the agent trusts")
        if p.prog.endswith(" range"):
            p.add_argument("--fuzz", type=int, default=500)
    args = parser.parse_args()
    if args.command == "id":
        print(wire.device_id_text(wire.Identity(bytes.fromhex(args.seed)).device_id))
        return 0
    if args.command == "flood":
        return flood(args)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
