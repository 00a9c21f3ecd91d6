#!/usr/bin/env python3
"""An adversary against a HubSync agent's pairing invites, written from protocol/SPEC.md 4.1-4.4
alone (libsodium through ctypes, BLAKE2b from hashlib), independent of the Swift code.

  burn --host H --port P --name NAME --count N
      Sends N framed pairing messages 1 that name the invite but carry no valid share (the name is
      public: it is in the advert). A correct inviter spends no attempt on them. Prints one JSON
      line: {"sent": N, "answers": [status byte or null per run]}.

  race --host H --port P --code CODE [--runs N]
      Runs the pairing protocol N times (default 2) at once with the right code, as two devices, and sends both
      confirmations (message 3) at the same moment. Prints {"joined": K, "runs": [...]}: how many
      runs received the household's group (message 4). One code must admit at most one device.

Every connection goes only to the host given (tests pass 127.0.0.1); every wait has a timeout.
"""
import argparse
import ctypes
import ctypes.util
import hashlib
import json
import os
import socket
import struct
import sys
import threading

sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
if sodium.sodium_init() < 0:
    sys.exit("libsodium failed to initialise")

DSI = b"hubsync-cpace-ristretto255-v1"
TIMEOUT = 10.0


def lv(x: bytes) -> bytes:
    return struct.pack(">H", len(x)) + x


def h64(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=64).digest()


def mac(key: bytes, label: bytes) -> bytes:
    return hashlib.blake2b(label, digest_size=32, key=key).digest()


def from_hash(h: bytes) -> bytes:
    out = ctypes.create_string_buffer(32)
    sodium.crypto_core_ristretto255_from_hash(out, h)
    return out.raw


def scalar_random() -> bytes:
    out = ctypes.create_string_buffer(32)
    sodium.crypto_core_ristretto255_scalar_random(out)
    return out.raw


def scalarmult(scalar: bytes, point: bytes) -> bytes:
    out = ctypes.create_string_buffer(32)
    if sodium.crypto_scalarmult_ristretto255(out, scalar, point) != 0:
        raise ValueError("invalid point")
    return out.raw


def sign_keypair() -> bytes:
    pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(64)
    sodium.crypto_sign_keypair(pk, sk)
    return pk.raw


def seal(key: bytes, ad: bytes, plain: bytes) -> bytes:
    out = ctypes.create_string_buffer(len(plain) + 16)
    clen = ctypes.c_ulonglong(0)
    sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, ctypes.byref(clen), plain, ctypes.c_ulonglong(len(plain)),
                                                      ad, ctypes.c_ulonglong(len(ad)), None, bytes(24), key)
    return out.raw[:clen.value]


def opens(key: bytes, ad: bytes, box: bytes) -> bool:
    if len(box) < 16:
        return False
    out = ctypes.create_string_buffer(len(box))
    mlen = ctypes.c_ulonglong(0)
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, ctypes.byref(mlen), None, box, ctypes.c_ulonglong(len(box)),
                                                             ad, ctypes.c_ulonglong(len(ad)), bytes(24), key) == 0


def send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">I", len(payload)) + payload)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        part = sock.recv(n - len(data))
        if not part:
            raise ConnectionError("closed")
        data += part
    return data


def recv_frame(sock: socket.socket) -> bytes:
    (n,) = struct.unpack(">I", recv_exact(sock, 4))
    return recv_exact(sock, n)


def parse_code(code: str) -> tuple:
    text = code.replace("-", "").replace(" ", "").upper()
    name = "".join(c for c in text if c.isalpha())
    digits = "".join(c for c in text if c.isdigit())
    return name.encode(), digits.encode()


SOURCE = None


def connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=TIMEOUT, source_address=(SOURCE, 0) if SOURCE else None)
    sock.settimeout(TIMEOUT)
    return sock


def burn(args) -> dict:
    answers = []
    name = args.name.encode()
    for _ in range(args.count):
        # Right name, right length, but the share is not a canonical ristretto255 encoding.
        message1 = bytes([0x50, 2, len(name)]) + name + os.urandom(16) + b"\xff" * 32
        with connect(args.host, args.port) as sock:
            send_frame(sock, message1)
            try:
                answers.append(recv_frame(sock)[0])
            except (ConnectionError, OSError):
                answers.append(None)
    return {"sent": args.count, "answers": answers}


class Run:
    """One joiner's pairing run, up to the confirmation it is about to send."""

    def __init__(self, host: str, port: int, code: str):
        self.name, self.secret = parse_code(code)
        self.sock = connect(host, port)
        self.sid = os.urandom(16)
        self.key = sign_keypair()
        self.generator = from_hash(h64(lv(DSI) + lv(self.secret) + lv(self.name) + lv(self.sid)))
        self.scalar = scalar_random()
        self.share = scalarmult(self.scalar, self.generator)
        self.result = {"status": None, "joined": False}

    def open_run(self) -> bool:
        send_frame(self.sock, bytes([0x50, 2, len(self.name)]) + self.name + self.sid + self.share)
        message2 = recv_frame(self.sock)
        self.result["status"] = message2[0]
        if message2[0] != 0 or len(message2) != 2 + 64:
            return False
        peer_share, tag_i = message2[2:34], message2[34:66]
        k = scalarmult(self.scalar, peer_share)
        # Pairing version 2 (SPEC 4.3): the identity keys are not in the ISK's input (empty AD).
        isk = h64(lv(DSI + b"-isk") + lv(self.sid) + lv(k) + lv(self.share) + lv(b"") + lv(peer_share) + lv(b""))
        if mac(isk, b"hubsync-pair-confirm-inviter") != tag_i:
            self.result["status"] = "inviter tag mismatch"
            return False
        self.k_i2j = mac(isk, b"hubsync-pair-key-i2j")
        details = seal(mac(isk, b"hubsync-pair-key-j2i"), b"hubsync-pair-joiner-details", self.key + struct.pack(">H", 0))
        self.message3 = mac(isk, b"hubsync-pair-confirm-joiner") + details
        return True

    def confirm(self, barrier: threading.Barrier) -> None:
        try:
            barrier.wait(timeout=TIMEOUT)
            send_frame(self.sock, self.message3)
            message4 = recv_frame(self.sock)
            self.result["joined"] = opens(self.k_i2j, b"hubsync-pair-group", message4)
        except (ConnectionError, OSError, threading.BrokenBarrierError) as e:
            self.result["error"] = str(e) or type(e).__name__
        finally:
            self.sock.close()


def race(args) -> dict:
    runs = [Run(args.host, args.port, args.code) for _ in range(args.runs)]
    ready = [r for r in runs if r.open_run()]
    barrier = threading.Barrier(len(ready)) if ready else None
    threads = [threading.Thread(target=r.confirm, args=(barrier,)) for r in ready]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=3 * TIMEOUT)
    return {"joined": sum(1 for r in runs if r.result["joined"]), "confirmed": len(ready),
            "runs": [r.result for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("burn")
    b.add_argument("--host", required=True)
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--name", required=True)
    b.add_argument("--count", type=int, default=10)
    r = sub.add_parser("race")
    r.add_argument("--host", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--code", required=True)
    r.add_argument("--runs", type=int, default=2, choices=range(1, 9))
    for p in (b, r):
        p.add_argument("--source", help="the loopback address to connect from (127.0.0.0/8)")
    args = parser.parse_args()
    global SOURCE
    if args.source:
        if not args.source.startswith("127."):
            sys.exit("--source must be a loopback address")
        SOURCE = args.source
    if args.host not in ("127.0.0.1", "::1", "localhost") and not args.host.startswith("10.77."):
        sys.exit("this adversary only talks to loopback or the test namespaces (10.77.0.0/16)")
    if args.command == "burn" and not 1 <= args.count <= 1000:
        sys.exit("--count is 1 to 1000")
    print(json.dumps(burn(args) if args.command == "burn" else race(args)))


if __name__ == "__main__":
    main()
