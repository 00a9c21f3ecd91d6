#!/usr/bin/env python3
"""HubSync session-handshake vectors: an independent composition of protocol/SPEC.md 2.3.

Python 3.9+: BLAKE2b from hashlib; X25519, Ed25519 and XChaCha20-Poly1305 from libsodium through
ctypes (primitives only: the message layouts, the transcript hash and the key schedule are
written here from the SPEC). Tests/HubSyncCryptoTests/HandshakeVectorTests.swift checks the
Swift state machines against handshake.json.

    python3 protocol/vectors/generate_handshake.py           # (re)writes handshake.json
    python3 protocol/vectors/generate_handshake.py --check   # exit 1 if handshake.json differs
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import sys


def sodium() -> ctypes.CDLL:
    name = ctypes.util.find_library("sodium") or "libsodium.so.23"
    lib = ctypes.CDLL(name)
    if lib.sodium_init() < 0:
        raise SystemExit("libsodium did not initialise")
    return lib


NA = sodium()
VERSION = 2
LABEL = b"hubsync-handshake-v2"


def x25519_base(secret: bytes) -> bytes:
    out = ctypes.create_string_buffer(32)
    assert NA.crypto_scalarmult_base(out, secret) == 0
    return out.raw


def x25519(secret: bytes, public: bytes) -> bytes:
    out = ctypes.create_string_buffer(32)
    if NA.crypto_scalarmult(out, secret, public) != 0:
        raise ValueError("low-order point")
    return out.raw


def ed25519_keypair(seed: bytes) -> tuple[bytes, bytes]:
    pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(64)
    assert NA.crypto_sign_seed_keypair(pk, sk, seed) == 0
    return pk.raw, sk.raw


def sign(sk: bytes, message: bytes) -> bytes:
    sig = ctypes.create_string_buffer(64)
    assert NA.crypto_sign_detached(sig, None, message, ctypes.c_ulonglong(len(message)), sk) == 0
    return sig.raw


def aead(key: bytes, ad: bytes, plaintext: bytes) -> bytes:
    out = ctypes.create_string_buffer(len(plaintext) + 16)
    n = ctypes.c_ulonglong(0)
    assert NA.crypto_aead_xchacha20poly1305_ietf_encrypt(
        out, ctypes.byref(n), plaintext, ctypes.c_ulonglong(len(plaintext)), ad, ctypes.c_ulonglong(len(ad)),
        None, bytes(24), key) == 0
    return out.raw[: n.value]


def h32(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def h64(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=64).digest()


def mac(key: bytes, data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32, key=key).digest()


def build() -> dict:
    seed_i, seed_r = bytes(range(0x00, 0x20)), bytes(range(0x20, 0x40))
    ei, er = bytes(range(0x40, 0x60)), bytes(range(0x60, 0x80))
    pk_i, sk_i = ed25519_keypair(seed_i)
    pk_r, sk_r = ed25519_keypair(seed_r)
    EI, ER = x25519_base(ei), x25519_base(er)
    msg1 = bytes([VERSION]) + EI
    msg2 = ER
    q = x25519(ei, ER)
    assert q == x25519(er, EI) and q != bytes(32)
    k = h64(q + EI + ER)
    k_r2i, k_i2r = k[:32], k[32:]
    th = h32(LABEL + msg1 + ER)
    hs_r2i, hs_i2r = mac(k_r2i, b"hs-r2i" + th), mac(k_i2r, b"hs-i2r" + th)
    app_r2i, app_i2r = mac(k_r2i, b"app-r2i" + th), mac(k_i2r, b"app-i2r" + th)
    msg3 = aead(hs_i2r, th, pk_i + sign(sk_i, b"hubsync-sig-initiator" + th))
    msg4 = aead(hs_r2i, th, pk_r + sign(sk_r, b"hubsync-sig-responder" + th))
    return {
        "comment": "protocol/SPEC.md 2.6; written by protocol/vectors/generate_handshake.py (hashlib BLAKE2b, "
        "libsodium through ctypes for X25519, Ed25519 and the AEAD only); checked by "
        "Tests/HubSyncCryptoTests/HandshakeVectorTests.swift.",
        "initiator_seed": seed_i.hex(),
        "responder_seed": seed_r.hex(),
        "initiator_ephemeral_secret": ei.hex(),
        "responder_ephemeral_secret": er.hex(),
        "initiator_key": pk_i.hex(),
        "responder_key": pk_r.hex(),
        "initiator_device": h32(pk_i).hex(),
        "responder_device": h32(pk_r).hex(),
        "k_r2i": k_r2i.hex(),
        "k_i2r": k_i2r.hex(),
        "transcript_hash": th.hex(),
        "hs_r2i": hs_r2i.hex(),
        "hs_i2r": hs_i2r.hex(),
        "app_r2i": app_r2i.hex(),
        "app_i2r": app_i2r.hex(),
        "message1": msg1.hex(),
        "message2": msg2.hex(),
        "message3": msg3.hex(),
        "message4": msg4.hex(),
    }


def main() -> int:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "handshake.json")
    text = json.dumps(build(), indent=2) + "\n"
    if "--check" in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            same = f.read() == text
        print("handshake.json is up to date" if same else "handshake.json differs from the generator")
        return 0 if same else 1
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
