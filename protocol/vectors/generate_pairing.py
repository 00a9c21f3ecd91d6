#!/usr/bin/env python3
"""HubSync pairing vectors: an independent reference of protocol/SPEC.md chapter 4.

Python 3.9+, standard library only; no libsodium. ristretto255 (RFC 9496: decoding, encoding,
the one-way map and hash-to-group), Ed25519 key derivation and signing (RFC 8032) and the
pairing key schedule are written here from the specifications, so the Swift implementation
(libsodium 1.0.18) is checked against a separate code path by
Tests/HubSyncCryptoTests/PairingVectorTests.swift.

    python3 protocol/vectors/generate_pairing.py           # (re)writes pairing.json
    python3 protocol/vectors/generate_pairing.py --check   # exit 1 if pairing.json differs

Not covered here (no XChaCha20-Poly1305 in the standard library): the sealed tails of
messages 3 and 4. The Swift test checks those by round trip only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
SQRT_AD_MINUS_ONE = 25063068953384623474111414158702152701244531502492656460079210482610430750235
INVSQRT_A_MINUS_D = 54469307008909316920995813868745141605393597292927456921205312896311721017578
ONE_MINUS_D_SQ = 1159843021668779879193775521855586647937357759715417654439879720876111806838
D_MINUS_ONE_SQ = 40440834346308536858101042469323190826248399146238708352240133220865137265952


def neg(x: int) -> bool:
    return x % P % 2 == 1


def ct_abs(x: int) -> int:
    return (-x) % P if neg(x) else x % P


def sqrt_ratio_m1(u: int, v: int) -> tuple[bool, int]:
    u %= P
    v %= P
    r = (u * pow(v, 3, P)) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    check = v * r * r % P
    correct = check == u
    flipped = check == (-u) % P
    flipped_i = check == (-u * SQRT_M1) % P
    if flipped or flipped_i:
        r = r * SQRT_M1 % P
    return correct or flipped, ct_abs(r)


IDENTITY = (0, 1, 1, 0)


def add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * 2 * D * t2 % P
    d = z1 * 2 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def mul(k: int, point):
    result = IDENTITY
    while k:
        if k & 1:
            result = add(result, point)
        point = add(point, point)
        k >>= 1
    return result


def ristretto_decode(data: bytes):
    s = int.from_bytes(data, "little")
    if s >= P or neg(s):
        return None
    ss = s * s % P
    u1 = (1 - ss) % P
    u2 = (1 + ss) % P
    u2_sqr = u2 * u2 % P
    v = (-(D * u1 * u1) - u2_sqr) % P
    was_square, invsqrt = sqrt_ratio_m1(1, v * u2_sqr)
    den_x = invsqrt * u2 % P
    den_y = invsqrt * den_x * v % P
    x = ct_abs(2 * s * den_x)
    y = u1 * den_y % P
    t = x * y % P
    if not was_square or neg(t) or y == 0:
        return None
    return (x, y, 1, t)


def ristretto_encode(point) -> bytes:
    x0, y0, z0, t0 = point
    u1 = (z0 + y0) * (z0 - y0) % P
    u2 = x0 * y0 % P
    _, invsqrt = sqrt_ratio_m1(1, u1 * u2 * u2)
    den1 = invsqrt * u1 % P
    den2 = invsqrt * u2 % P
    z_inv = den1 * den2 * t0 % P
    rotate = neg(t0 * z_inv)
    if rotate:
        x, y = y0 * SQRT_M1 % P, x0 * SQRT_M1 % P
        den_inv = den1 * INVSQRT_A_MINUS_D % P
    else:
        x, y, den_inv = x0, y0, den2
    if neg(x * z_inv):
        y = (-y) % P
    s = ct_abs(den_inv * (z0 - y))
    return s.to_bytes(32, "little")


def ristretto_map(t: int):
    r = SQRT_M1 * t * t % P
    u = (r + 1) * ONE_MINUS_D_SQ % P
    v = (-1 - r * D) * (r + D) % P
    was_square, s = sqrt_ratio_m1(u, v)
    s_prime = (-ct_abs(s * t)) % P
    if not was_square:
        s = s_prime
    c = (P - 1) if was_square else r
    n = (c * (r - 1) * D_MINUS_ONE_SQ - v) % P
    w0 = 2 * s * v % P
    w1 = n * SQRT_AD_MINUS_ONE % P
    w2 = (1 - s * s) % P
    w3 = (1 + s * s) % P
    return (w0 * w3 % P, w2 * w1 % P, w1 * w3 % P, w0 * w2 % P)


def ristretto_from_hash(h: bytes):
    assert len(h) == 64
    t1 = int.from_bytes(h[:32], "little") & ((1 << 255) - 1)
    t2 = int.from_bytes(h[32:], "little") & ((1 << 255) - 1)
    return add(ristretto_map(t1 % P), ristretto_map(t2 % P))


# Ed25519 (RFC 8032) ------------------------------------------------------------------------------
BASE_Y = 4 * pow(5, P - 2, P) % P


def recover_x(y: int, sign: int) -> int:
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if x % 2 != sign:
        x = P - x
    return x


BASE = (recover_x(BASE_Y, 0), BASE_Y, 1, recover_x(BASE_Y, 0) * BASE_Y % P)


def ed_encode(point) -> bytes:
    x, y, z, _ = point
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def ed_secret(seed: bytes) -> tuple[int, bytes]:
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def ed_public(seed: bytes) -> bytes:
    return ed_encode(mul(ed_secret(seed)[0], BASE))


def ed_sign(seed: bytes, message: bytes) -> bytes:
    a, prefix = ed_secret(seed)
    public = ed_encode(mul(a, BASE))
    r = int.from_bytes(hashlib.sha512(prefix + message).digest(), "little") % L
    big_r = ed_encode(mul(r, BASE))
    k = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % L
    return big_r + ((r + k * a) % L).to_bytes(32, "little")


# Pairing (SPEC 4.3-4.6) ----------------------------------------------------------------------------
DSI = b"hubsync-cpace-ristretto255-v1"


def lv(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def h64(b: bytes) -> bytes:
    return hashlib.blake2b(b, digest_size=64).digest()


def mac(key: bytes, label: bytes) -> bytes:
    return hashlib.blake2b(label, digest_size=32, key=key).digest()


def scalar(hex_text: str) -> int:
    value = int.from_bytes(bytes.fromhex(hex_text), "little")
    assert 0 < value < L
    return value


def statement(kind, group, subject, issuer_seed, parent, time, nonce):
    body = bytes([kind]) + group + subject + ed_public(issuer_seed) + parent + time.to_bytes(8, "big") + nonce
    full = body + ed_sign(issuer_seed, b"hubsync-membership-v1" + body)
    return full, hashlib.blake2b(full, digest_size=32).digest()


def build() -> dict:
    assert ristretto_encode(BASE).hex() == "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"
    joiner_seed = bytes(range(0x00, 0x20))
    inviter_seed = bytes(range(0x20, 0x40))
    name, secret = b"KXPT", b"12345678"
    sid = bytes(range(0x80, 0x90))
    y_j_hex = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00"
    y_i_hex = "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f00"
    pk_j, pk_i = ed_public(joiner_seed), ed_public(inviter_seed)

    gen_hash = h64(lv(DSI) + lv(secret) + lv(name) + lv(sid))
    generator = ristretto_from_hash(gen_hash)
    share_j = ristretto_encode(mul(scalar(y_j_hex), generator))
    share_i = ristretto_encode(mul(scalar(y_i_hex), generator))
    k_j = ristretto_encode(mul(scalar(y_j_hex), ristretto_decode(share_i)))
    k_i = ristretto_encode(mul(scalar(y_i_hex), ristretto_decode(share_j)))
    assert k_j == k_i
    # Version 2: no identity key in the clear, so AD_J and AD_I are empty (SPEC 4.3).
    isk = h64(lv(DSI + b"-isk") + lv(sid) + lv(k_j) + lv(share_j) + lv(b"") + lv(share_i) + lv(b""))
    confirm_i = mac(isk, b"hubsync-pair-confirm-inviter")
    confirm_j = mac(isk, b"hubsync-pair-confirm-joiner")
    attempts_left = 2
    msg1 = bytes([0x50, 2, len(name)]) + name + sid + share_j
    msg2 = bytes([0, attempts_left]) + share_i + confirm_i

    # A wrong code: the same scalars and session, secret 12345679.
    wrong_gen = ristretto_from_hash(h64(lv(DSI) + lv(b"12345679") + lv(name) + lv(sid)))
    wrong_share_j = ristretto_encode(mul(scalar(y_j_hex), wrong_gen))

    nonce_g, nonce_a = bytes(range(0xA0, 0xB0)), bytes(range(0xB0, 0xC0))
    group = hashlib.blake2b(b"hubsync-group-v1" + pk_i + nonce_g, digest_size=32).digest()
    genesis, genesis_hash = statement(1, group, pk_i, inviter_seed, bytes(32), 1_700_000_000_000, nonce_g)
    added, added_hash = statement(2, group, pk_j, inviter_seed, genesis_hash, 1_700_000_060_000, nonce_a)

    return {
        "comment": "protocol/SPEC.md chapter 4; written by protocol/vectors/generate_pairing.py (pure Python, "
        "no libsodium); checked by Tests/HubSyncCryptoTests/PairingVectorTests.swift. Scalars are "
        "32-byte little-endian ristretto255 scalars; seeds are Ed25519 seeds.",
        "ristretto255_base": ristretto_encode(BASE).hex(),
        "cpace": {
            "joiner_seed": joiner_seed.hex(),
            "inviter_seed": inviter_seed.hex(),
            "joiner_key": pk_j.hex(),
            "inviter_key": pk_i.hex(),
            "invite_name": name.decode(),
            "secret": secret.decode(),
            "code": "KXPT-1234-5678",
            "session_id": sid.hex(),
            "joiner_scalar": y_j_hex,
            "inviter_scalar": y_i_hex,
            "generator_hash": gen_hash.hex(),
            "generator": ristretto_encode(generator).hex(),
            "joiner_share": share_j.hex(),
            "inviter_share": share_i.hex(),
            "shared_point": k_j.hex(),
            "isk": isk.hex(),
            "inviter_confirmation": confirm_i.hex(),
            "joiner_confirmation": confirm_j.hex(),
            "key_i2j": mac(isk, b"hubsync-pair-key-i2j").hex(),
            "key_j2i": mac(isk, b"hubsync-pair-key-j2i").hex(),
            "attempts_left": attempts_left,
            "message1": msg1.hex(),
            "message2": msg2.hex(),
            "wrong_secret": "12345679",
            "wrong_joiner_share": wrong_share_j.hex(),
        },
        "membership": {
            "founder_seed": inviter_seed.hex(),
            "group_id": group.hex(),
            "genesis": genesis.hex(),
            "genesis_hash": genesis_hash.hex(),
            "add": added.hex(),
            "add_hash": added_hash.hex(),
        },
        "invalid_points": [
            {"hex": "00" * 32, "why": "the identity"},
            {"hex": "ff" * 32, "why": "not canonical (>= p)"},
            {"hex": "0100000000000000000000000000000000000000000000000000000000000000", "why": "negative s"},
            {"hex": "0200000000000000000000000000000000000000000000000000000000000000", "why": "not a valid encoding"},
        ],
    }


def main() -> int:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pairing.json")
    for case in build()["invalid_points"][1:]:
        assert ristretto_decode(bytes.fromhex(case["hex"])) is None, case
    text = json.dumps(build(), indent=2) + "\n"
    if "--check" in sys.argv:
        with open(path) as f:
            same = f.read() == text
        print("pairing.json is up to date" if same else "pairing.json differs from the generator")
        return 0 if same else 1
    with open(path, "w") as f:
        f.write(text)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
