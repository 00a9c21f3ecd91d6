"""The HubSync wire, written from protocol/SPEC.md alone, for the hostile-peer suite.

Python 3.9+ standard library, with libsodium through ctypes for the primitives only (X25519,
Ed25519, XChaCha20-Poly1305, secretstream); BLAKE2b from hashlib (through the handshake
vectors' generator, protocol/vectors/generate_handshake.py). Nothing here comes from the
Swift code: framing (2.1), the session handshake (2.3, version 2, and version 1 as a prober
remembers it), the encrypted streams (2.5), the device ID text form (1.11), pairing message 1
(4.4) and the backup peer protocol (5.12).
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import struct
import sys
import time


# The primitives and BLAKE2b helpers of the handshake vectors' generator, also written from the
# SPEC alone (protocol/vectors/generate_handshake.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "protocol", "vectors"))
from generate_handshake import NA, h32, h64, mac  # noqa: E402

NA.crypto_secretstream_xchacha20poly1305_statebytes.restype = ctypes.c_size_t
ULL = ctypes.c_ulonglong


class Closed(Exception):
    """The other side closed the connection (or reset it)."""


# ---- primitives -----------------------------------------------------------------------------

def x25519_keypair() -> tuple[bytes, bytes]:
    secret = os.urandom(32)
    public = ctypes.create_string_buffer(32)
    assert NA.crypto_scalarmult_base(public, secret) == 0
    return secret, public.raw


def x25519(secret: bytes, public: bytes) -> bytes:
    out = ctypes.create_string_buffer(32)
    if NA.crypto_scalarmult(out, secret, public) != 0:
        raise ValueError("low-order point")
    return out.raw


class Identity:
    """An Ed25519 identity key pair."""

    def __init__(self, seed: bytes | None = None):
        self.seed = seed or os.urandom(32)
        pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(64)
        assert NA.crypto_sign_seed_keypair(pk, sk, self.seed) == 0
        self.public, self._secret = pk.raw, sk.raw

    def sign(self, message: bytes) -> bytes:
        sig = ctypes.create_string_buffer(64)
        assert NA.crypto_sign_detached(sig, None, message, ULL(len(message)), self._secret) == 0
        return sig.raw

    @property
    def device_id(self) -> bytes:
        return h32(self.public)


def verify(public: bytes, signature: bytes, message: bytes) -> bool:
    return NA.crypto_sign_verify_detached(signature, message, ULL(len(message)), public) == 0


def aead_seal(key: bytes, ad: bytes, plaintext: bytes) -> bytes:
    out = ctypes.create_string_buffer(len(plaintext) + 16)
    n = ULL(0)
    assert NA.crypto_aead_xchacha20poly1305_ietf_encrypt(
        out, ctypes.byref(n), plaintext, ULL(len(plaintext)), ad, ULL(len(ad)), None, bytes(24), key) == 0
    return out.raw[: n.value]


def aead_open(key: bytes, ad: bytes, sealed: bytes) -> bytes | None:
    if len(sealed) < 16:
        return None
    out = ctypes.create_string_buffer(max(1, len(sealed) - 16))
    n = ULL(0)
    if NA.crypto_aead_xchacha20poly1305_ietf_decrypt(
            out, ctypes.byref(n), None, sealed, ULL(len(sealed)), ad, ULL(len(ad)), bytes(24), key) != 0:
        return None
    return out.raw[: n.value]


class StreamSender:
    """crypto_secretstream_xchacha20poly1305, the pushing side (SPEC 2.5)."""

    def __init__(self, key: bytes):
        self._state = ctypes.create_string_buffer(NA.crypto_secretstream_xchacha20poly1305_statebytes())
        header = ctypes.create_string_buffer(24)
        assert NA.crypto_secretstream_xchacha20poly1305_init_push(self._state, header, key) == 0
        self.header = header.raw

    def seal(self, message: bytes) -> bytes:
        out = ctypes.create_string_buffer(len(message) + 17)
        n = ULL(0)
        assert NA.crypto_secretstream_xchacha20poly1305_push(
            self._state, out, ctypes.byref(n), message, ULL(len(message)), None, ULL(0), ctypes.c_ubyte(0)) == 0
        return out.raw[: n.value]


class StreamReceiver:
    """crypto_secretstream_xchacha20poly1305, the pulling side."""

    def __init__(self, key: bytes, header: bytes):
        self._state = ctypes.create_string_buffer(NA.crypto_secretstream_xchacha20poly1305_statebytes())
        if len(header) != 24 or NA.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, key) != 0:
            raise ValueError("unusable stream header")

    def open(self, sealed: bytes) -> bytes:
        if len(sealed) < 17:
            raise ValueError("a sealed frame shorter than 17 bytes")
        out = ctypes.create_string_buffer(len(sealed) - 17 + 1)
        n, tag = ULL(0), ctypes.c_ubyte(0)
        if NA.crypto_secretstream_xchacha20poly1305_pull(
                self._state, out, ctypes.byref(n), ctypes.byref(tag), sealed, ULL(len(sealed)), None, ULL(0)) != 0:
            raise ValueError("a frame did not authenticate")
        return out.raw[: n.value]


# ---- device ID text form (SPEC 1.11) ----------------------------------------------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def device_id_text(device_id: bytes) -> str:
    bits = "".join(f"{b:08b}" for b in device_id) + "0000"
    data = "".join(ALPHABET[int(bits[i:i + 5], 2)] for i in range(0, 260, 5))
    out = ""
    for k in range(4):
        block = data[13 * k:13 * (k + 1)]
        total = 0
        for i, ch in enumerate(reversed(block)):
            p = ALPHABET.index(ch) * (2 if i % 2 == 0 else 1)
            total += p // 32 + p % 32
        out += block + ALPHABET[(32 - total % 32) % 32]
    return "-".join(out[i:i + 7] for i in range(0, 56, 7))


# ---- framing (SPEC 2.1) -------------------------------------------------------------------------

def connect(address: str, source: str | None = None, timeout: float = 5.0) -> socket.socket:
    host, port = address.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if source:
        s.bind((source, 0))
    s.settimeout(timeout)
    s.connect((host, int(port)))
    return s


def send_frame(s: socket.socket, payload: bytes) -> None:
    s.sendall(struct.pack(">I", len(payload)) + payload)


def recv_exact(s: socket.socket, n: int, deadline: float) -> bytes:
    data = b""
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"waited for {n} bytes, got {len(data)}")
        s.settimeout(left)
        try:
            chunk = s.recv(n - len(data))
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Closed(str(e)) from e
        if not chunk:
            raise Closed(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def recv_frame(s: socket.socket, timeout: float = 5.0, limit: int = 1 << 20) -> bytes:
    deadline = time.monotonic() + timeout
    (length,) = struct.unpack(">I", recv_exact(s, 4, deadline))
    if length > limit:
        raise ValueError(f"a frame of {length} bytes")
    return recv_exact(s, length, deadline)


def closed_within(s: socket.socket, seconds: float) -> bool:
    """Whether the peer closes (EOF or reset) within `seconds`, reading and dropping anything it sends."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([s], [], [], left)
        if not ready:
            continue
        try:
            if not s.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True


# ---- the session handshake (SPEC 2.3) -------------------------------------------------------

def key_schedule(label: bytes, q: bytes, msg1: bytes, EI: bytes, ER: bytes) -> dict:
    k = h64(q + EI + ER)
    k_r2i, k_i2r = k[:32], k[32:]
    th = h32(label + msg1 + ER)
    return {"th": th, "hs_r2i": mac(k_r2i, b"hs-r2i" + th), "hs_i2r": mac(k_i2r, b"hs-i2r" + th),
            "app_r2i": mac(k_r2i, b"app-r2i" + th), "app_i2r": mac(k_i2r, b"app-i2r" + th)}


class Session:
    """A handshake as initiator, version 2: the responder names itself only in message 4, once
    it trusts this side. `received` keeps every byte the responder sent, and every plaintext
    this side could open, for the privacy check."""

    def __init__(self, address: str, identity: Identity, backup: bool = False, source: str | None = None,
                 timeout: float = 5.0, sink: list | None = None, version: int = 2):
        self.received: list[bytes] = sink if sink is not None else []
        self.peer: bytes | None = None
        s = self.sock = connect(address, source, timeout)
        if backup:
            send_frame(s, bytes([0x42, 0x01]))
        ei, EI = x25519_keypair()
        msg1 = bytes([version]) + EI
        send_frame(s, msg1)
        msg2 = self._recv(timeout)
        ER = msg2[:32]
        if len(msg2) != (32 if version == 2 else 144):
            raise ValueError(f"message 2 has {len(msg2)} bytes")
        keys = key_schedule(b"hubsync-handshake-v%d" % version, x25519(ei, ER), msg1, EI, ER)
        th = keys["th"]
        msg3 = aead_seal(keys["hs_i2r"], th, identity.public + identity.sign(b"hubsync-sig-initiator" + th))
        if version == 1:  # the responder named itself in message 2, to anyone
            self.peer = self._open_responder(keys, msg2[32:])
            send_frame(s, msg3)
            self.sender = StreamSender(keys["app_i2r"])
            send_frame(s, self.sender.header)
            self.receiver = StreamReceiver(keys["app_r2i"], self._recv(timeout))
            return
        send_frame(s, msg3)
        msg4 = self._recv(timeout)  # Closed here: the responder does not trust this identity
        self.peer = self._open_responder(keys, msg4)
        self.receiver = StreamReceiver(keys["app_r2i"], self._recv(timeout))
        self.sender = StreamSender(keys["app_i2r"])
        send_frame(s, self.sender.header)

    def _open_responder(self, keys: dict, sealed: bytes) -> bytes:
        plain = aead_open(keys["hs_r2i"], keys["th"], sealed)
        if plain is None or len(plain) != 96 or not verify(plain[:32], plain[32:], b"hubsync-sig-responder" + keys["th"]):
            raise ValueError("the responder's identity does not authenticate")
        self.received.append(plain)
        return plain[:32]

    def _recv(self, timeout: float) -> bytes:
        frame = recv_frame(self.sock, timeout)
        self.received.append(frame)
        return frame

    def send(self, plaintext: bytes) -> None:
        send_frame(self.sock, self.sender.seal(plaintext))

    def recv(self, timeout: float = 10.0) -> bytes:
        return self.receiver.open(recv_frame(self.sock, timeout))

    def close(self) -> None:
        self.sock.close()


def version_spoken(address: str) -> int:
    """The handshake version the listener speaks: 2, or 1 when it closes on a version 2 message 1."""
    s = connect(address)
    try:
        send_frame(s, bytes([2]) + x25519_keypair()[1])
        recv_frame(s)
        return 2
    except (Closed, TimeoutError):
        return 1
    finally:
        s.close()


def probe_v1(address: str, identity: Identity, timeout: float = 5.0) -> list[bytes]:
    """Handshake version 1 as a prober plays it (the responder named itself in message 2):
    everything received, and the opened identity if the responder answered."""
    got: list[bytes] = []
    s = connect(address, None, timeout)
    try:
        ei, EI = x25519_keypair()
        msg1 = bytes([1]) + EI
        send_frame(s, msg1)
        msg2 = recv_frame(s, timeout)
        got.append(msg2)
        if len(msg2) == 144:
            keys = key_schedule(b"hubsync-handshake-v1", x25519(ei, msg2[:32]), msg1, EI, msg2[:32])
            plain = aead_open(keys["hs_r2i"], keys["th"], msg2[32:])
            if plain:
                got.append(plain)
    except (Closed, TimeoutError, ValueError, OSError):
        pass
    finally:
        s.close()
    return got


# ---- the backup peer protocol (SPEC 5.12) ----------------------------------------------------

OPS = {"put": 1, "get": 2, "range": 3, "list": 4, "delete": 5, "exists": 6, "prune": 7, "usage": 8}


def request(op: str, name: str = "", args: bytes = b"") -> bytes:
    n = name.encode()
    return bytes([OPS[op]]) + struct.pack(">H", len(n)) + n + args


class BackupClient:
    """A trusted device's backup connection: the hello, then one answer per request."""

    def __init__(self, address: str, identity: Identity):
        try:
            self.session = Session(address, identity, backup=True)
        except Closed:  # an agent that speaks only handshake version 1 closes on message 1
            self.session = Session(address, identity, backup=True, version=1)
        hello = self.message()
        if hello[:1] != b"\x00":
            raise ValueError(f"the peer refused: {hello[1:].decode(errors='replace')}")

    def message(self, timeout: float = 30.0) -> bytes:
        first = self.session.recv(timeout)
        (length,) = struct.unpack(">I", first[:4])
        body = first[4:]
        while len(body) < length:
            body += self.session.recv(timeout)
        return body

    def send_raw(self, body: bytes) -> None:
        data = struct.pack(">I", len(body)) + body
        for i in range(0, max(1, len(data)), 256 * 1024):
            self.session.send(data[i:i + 256 * 1024])

    def ask(self, body: bytes, timeout: float = 30.0) -> bytes:
        self.send_raw(body)
        return self.message(timeout)

    def close(self) -> None:
        self.session.close()


def prune_plan(signer: Identity, server_id: bytes, names: list[str], when: int = 1) -> bytes:
    body = b"HSPP\x01" + signer.public + server_id + struct.pack(">QI", when, len(names))
    for n in names:
        b = n.encode()
        body += struct.pack(">H", len(b)) + b
    return body + signer.sign(body)


# ---- pairing (SPEC 4.4) -------------------------------------------------------------------

def pairing_message1(name: str, version: int = 2) -> bytes:
    """A well-formed message 1 whose share is a random valid-looking point (the prober does not
    know the code): enough to get message 2 from an inviter."""
    n = name.encode()
    share = bytes(32)
    buf = ctypes.create_string_buffer(32)
    NA.crypto_core_ristretto255_random(buf)
    share = buf.raw
    return bytes([0x50, version, len(n)]) + n + os.urandom(16) + share
