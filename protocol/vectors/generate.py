#!/usr/bin/env python3
"""HubSync test vectors: an independent reference implementation of protocol/SPEC.md, chapter 1.

Run from anywhere (Python 3.9 or later, standard library only):

    python3 protocol/vectors/generate.py           # (re)writes the three files next to this script
    python3 protocol/vectors/generate.py --check   # exit status 1 if the files on disk differ

It writes, next to this script:

    encoding.json   values -> canonical bytes; clock readings; the HLC; value order;
                    records (state JSON + collection/id) -> canonical bytes, digest, export line
    merge.json      states of one record -> their merge (state JSON) and its digest
    device_id.json  Ed25519 public keys -> device IDs (hex and text); text forms that parse;
                    text forms that do not, with the kind of error

Everything here follows the spec's text, not the Swift sources; the Swift tests
(Tests/HubSyncCoreTests/VectorTests.swift) check that the Swift implementation agrees. Inputs
are fixed, so the output is byte-for-byte the same on every run. Ed25519 public keys are derived
from fixed seeds by the small pure-Python Ed25519 below (RFC 8032, section 5.1.5), so that they
are valid curve points; RFC 8032's own test keys are among them as a check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import struct
import sys

# ---------------------------------------------------------------------------------------------
# Byte helpers (SPEC 1.6: integers are big-endian; a string is a u32 length and UTF-8 bytes)


def u32(n: int) -> bytes:
    assert 0 <= n < 1 << 32
    return n.to_bytes(4, "big")


def u64(n: int) -> bytes:
    assert 0 <= n < 1 << 64
    return n.to_bytes(8, "big")


def utf8(s: str) -> bytes:
    return s.encode("utf-8")  # raises on lone surrogates, which no HubSync string holds


def string(s: str) -> bytes:
    b = utf8(s)
    return u32(len(b)) + b


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


# ---------------------------------------------------------------------------------------------
# Values (SPEC 1.1). A value is None, bool, int (Int64), float (double), str, list or dict.
# Python's True == 1, so values are never compared with ==; always through their encodings.

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def number(d: float):
    """Number normalisation: integral and in [-2^63, 2^63) -> int, else double."""
    if not math.isfinite(d):
        raise ValueError("number out of range")
    if d == math.trunc(d) and -(2.0**63) <= d < 2.0**63:
        return int(d)
    return d


def check_value(v):
    if v is None or isinstance(v, bool):
        return
    if isinstance(v, int):
        assert INT64_MIN <= v <= INT64_MAX
    elif isinstance(v, float):
        assert isinstance(number(v), float), "a double must not be integral in Int64 range"
    elif isinstance(v, str):
        utf8(v)
    elif isinstance(v, list):
        for x in v:
            check_value(x)
    elif isinstance(v, dict):
        for k, x in v.items():
            utf8(k)
            check_value(x)
    else:
        raise TypeError(type(v))


# ---------------------------------------------------------------------------------------------
# JSON text (SPEC 1.2)


def parse_json(text: str):
    def pairs(items):
        d = {}
        for k, v in items:
            if k in d:
                raise ValueError(f"duplicate key {k!r}")
            d[k] = v
        return d

    def pint(s):
        i = int(s)
        return i if INT64_MIN <= i <= INT64_MAX else number(float(s))

    def pconst(s):
        raise ValueError(f"{s} is not JSON")

    v = json.loads(text, object_pairs_hook=pairs, parse_int=pint,
                   parse_float=lambda s: number(float(s)), parse_constant=pconst)
    check_value(v)
    return v


def utf8_key(s: str) -> bytes:
    return utf8(s)


def format_double(d: float) -> str:
    # Shortest digits that read back to d; plain notation for 1e-4 <= |d| < 1e16, otherwise
    # d[.ddd]e±XX with at least two exponent digits. Python's repr() is exactly that.
    return repr(d)


def escape_string(s: str) -> str:
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif c < 0x20:
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def write_json(v) -> str:
    """Canonical JSON text: compact, object keys sorted by UTF-8 bytes."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_double(v)
    if isinstance(v, str):
        return escape_string(v)
    if isinstance(v, list):
        return "[" + ",".join(write_json(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v, key=utf8_key)
        return "{" + ",".join(escape_string(k) + ":" + write_json(v[k]) for k in keys) + "}"
    raise TypeError(type(v))


# ---------------------------------------------------------------------------------------------
# Canonical value encoding (SPEC 1.6.1) and value order (SPEC 1.1)

TAG_NULL, TAG_FALSE, TAG_TRUE, TAG_INT, TAG_DOUBLE, TAG_STRING, TAG_ARRAY, TAG_OBJECT = range(8)


def encode_value(v) -> bytes:
    if v is None:
        return bytes([TAG_NULL])
    if v is False:
        return bytes([TAG_FALSE])
    if v is True:
        return bytes([TAG_TRUE])
    if isinstance(v, int):
        return bytes([TAG_INT]) + u64(v & 0xFFFF_FFFF_FFFF_FFFF)  # two's complement
    if isinstance(v, float):
        return bytes([TAG_DOUBLE]) + u64(int.from_bytes(_double_bits(v), "big"))
    if isinstance(v, str):
        return bytes([TAG_STRING]) + string(v)
    if isinstance(v, list):
        return bytes([TAG_ARRAY]) + u32(len(v)) + b"".join(encode_value(x) for x in v)
    if isinstance(v, dict):
        out = bytes([TAG_OBJECT]) + u32(len(v))
        for k in sorted(v, key=utf8_key):
            out += string(k) + encode_value(v[k])
        return out
    raise TypeError(type(v))


def _double_bits(d: float) -> bytes:
    return struct.pack(">d", d)


def value_order_key(v):
    """Two strings compare by UTF-8 bytes; anything else by canonical bytes."""
    if isinstance(v, str):
        return (bytes([TAG_STRING]), utf8(v))
    e = encode_value(v)
    return (e[:1], e)


def value_max(a, b):
    return a if value_order_key(b) <= value_order_key(a) else b


# ---------------------------------------------------------------------------------------------
# Clock (SPEC 1.3)

MILLIS_MAX = (1 << 48) - 1


def ts(millis: int, counter: int) -> int:
    assert 0 <= millis <= MILLIS_MAX and 0 <= counter <= 0xFFFF
    return millis << 16 | counter


def ts_text(t: int) -> str:
    return f"{t >> 16}:{t & 0xFFFF}"


def ts_parse(s: str) -> int:
    parts = s.split(":")
    if len(parts) != 2 or not all(p and p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"not a clock reading: {s!r}")
    m, c = int(parts[0]), int(parts[1])
    if m > MILLIS_MAX or c > 0xFFFF:
        raise ValueError(f"clock reading out of range: {s!r}")
    return ts(m, c)


class ClockSkew(Exception):
    pass


class HLC:
    def __init__(self, last: int = 0, max_drift: int = 60_000):
        self.last = last
        self.max_drift = max_drift

    def tick(self, wall: int) -> int:
        millis, counter = self.last >> 16, self.last & 0xFFFF
        if wall > millis:
            self.last = ts(wall, 0)
        elif counter < 0xFFFF:
            self.last = ts(millis, counter + 1)
        else:
            self.last = ts(millis + 1, 0)
        return self.last

    def observe(self, remote: int, wall: int) -> int:
        if (remote >> 16) > wall + self.max_drift:
            raise ClockSkew()
        self.last = max(self.last, remote)
        return self.last


# ---------------------------------------------------------------------------------------------
# Records (SPEC 1.4, 1.5). A stamp is (time, device); tuples order by time, then device bytes.


class Register:
    def __init__(self, versions, ctx):
        ctx = dict(ctx)
        seen = set()
        for t, d, _ in versions:
            assert (t, d) not in seen, "two versions with one stamp"
            seen.add((t, d))
            if ctx.get(d, -1) < t:
                ctx[d] = t  # a context always covers the register's own versions
        assert versions, "a register has at least one version"
        self.versions = sorted(versions, key=lambda x: (x[0], x[1]), reverse=True)
        self.ctx = ctx

    def covers(self, t, d) -> bool:
        return d in self.ctx and self.ctx[d] >= t

    def write(self, value, t, d):
        self.versions = [(t, d, value)]
        self.ctx[d] = max(self.ctx.get(d, 0), t)

    def copy(self):
        return Register(list(self.versions), dict(self.ctx))


def merge_register(a: Register, b: Register) -> Register:
    a_by = {(t, d): v for t, d, v in a.versions}
    b_by = {(t, d): v for t, d, v in b.versions}
    kept = []
    for (t, d), v in a_by.items():
        if (t, d) in b_by:
            kept.append((t, d, value_max(v, b_by[(t, d)])))
        elif not b.covers(t, d):
            kept.append((t, d, v))
    for (t, d), v in b_by.items():
        if (t, d) not in a_by and not a.covers(t, d):
            kept.append((t, d, v))
    ctx = dict(a.ctx)
    for d, t in b.ctx.items():
        ctx[d] = max(ctx.get(d, 0), t)
    if not kept:  # unreachable from valid states: keep the greater winner
        kept = [max(a.versions[0], b.versions[0], key=lambda x: (x[0], x[1]))]
    return Register(kept, ctx)


class Record:
    """A record's CRDT state. sets: name -> {canonical bytes of element: [element, length]}."""

    def __init__(self, collection: str, id: str):
        self.collection, self.id = collection, id
        self.cl = 0
        self.updated = 0
        self.fields: dict[str, Register] = {}
        self.sets: dict[str, dict[bytes, list]] = {}

    def copy(self):
        r = Record(self.collection, self.id)
        r.cl, r.updated = self.cl, self.updated
        r.fields = {k: v.copy() for k, v in self.fields.items()}
        r.sets = {k: {e: list(x) for e, x in s.items()} for k, s in self.sets.items()}
        return r

    @property
    def alive(self):
        return self.cl % 2 == 1

    def _touch(self, t):
        self.updated = max(self.updated, t)

    def _make_alive(self):
        if not self.alive:
            self.cl += 1

    # local operations (SPEC 1.5.4); each takes the stamp (t, d) of the operation

    def write(self, name, value, t, d):
        self._make_alive()
        if name in self.fields:
            self.fields[name].write(value, t, d)
        else:
            self.fields[name] = Register([(t, d, value)], {})
        self._touch(t)

    def delete(self, t, d):
        if self.alive:
            self.cl += 1
            self._touch(t)

    def undelete(self, t, d):
        if self.cl > 0 and not self.alive:
            self.cl += 1
            self._touch(t)

    def insert(self, name, elems, t, d):
        self._make_alive()
        s = self.sets.setdefault(name, {})
        for e in elems:
            k = encode_value(e)
            cur = s.get(k, [e, 0])
            if cur[1] % 2 == 0:
                s[k] = [e, cur[1] + 1]
        self._touch(t)

    def remove(self, name, elems, t, d):
        if name not in self.sets:
            return
        s, n = self.sets[name], 0
        for e in elems:
            k = encode_value(e)
            if k in s and s[k][1] % 2 == 1:
                s[k][1] += 1
                n += 1
        if n:
            self._touch(t)

    def greatest_time(self):
        t = self.updated
        for r in self.fields.values():
            t = max([t] + list(r.ctx.values()))
        return t


def merge_record(a: Record, b: Record) -> Record:
    assert (a.collection, a.id) == (b.collection, b.id)
    r = Record(a.collection, a.id)
    r.cl = max(a.cl, b.cl)
    r.updated = max(a.updated, b.updated)
    for name in sorted(set(a.fields) | set(b.fields), key=utf8_key):
        if name in a.fields and name in b.fields:
            r.fields[name] = merge_register(a.fields[name], b.fields[name])
        else:
            r.fields[name] = (a.fields.get(name) or b.fields.get(name)).copy()
    for name in sorted(set(a.sets) | set(b.sets), key=utf8_key):
        s = {k: list(x) for k, x in a.sets.get(name, {}).items()}
        for k, (e, n) in b.sets.get(name, {}).items():
            if n > s.get(k, [e, 0])[1]:
                s[k] = [e, n]
        r.sets[name] = s
    return r


# ---------------------------------------------------------------------------------------------
# Canonical record encoding and digest (SPEC 1.6.2, 1.7)

FORMAT_VERSION = 1


def encode_record(r: Record) -> bytes:
    out = bytearray([FORMAT_VERSION])
    out += string(r.collection) + string(r.id) + u64(r.cl) + u64(r.updated)
    out += u32(len(r.fields))
    for name in sorted(r.fields, key=utf8_key):
        reg = r.fields[name]
        out += string(name)
        out += u32(len(reg.ctx))
        for d in sorted(reg.ctx):  # by device bytes
            out += d + u64(reg.ctx[d])
        out += u32(len(reg.versions))
        for t, d, v in sorted(reg.versions, key=lambda x: (x[0], x[1]), reverse=True):
            out += u64(t) + d + encode_value(v)
    out += u32(len(r.sets))
    for name in sorted(r.sets, key=utf8_key):
        out += string(name)
        elems = sorted(r.sets[name].items())  # by canonical element bytes
        out += u32(len(elems))
        for k, (_, n) in elems:
            out += k + u64(n)
    return bytes(out)


def digest(r: Record) -> bytes:
    return blake2b_256(encode_record(r))


# ---------------------------------------------------------------------------------------------
# State JSON (SPEC 1.8)


def state_json(r: Record):
    fields = {}
    for name, reg in sorted(r.fields.items(), key=lambda x: utf8_key(x[0])):
        fields[name] = {
            "ctx": {d.hex(): ts_text(t) for d, t in sorted(reg.ctx.items())},
            "versions": [{"t": ts_text(t), "d": d.hex(), "v": v} for t, d, v in reg.versions],
        }
    sets = {}
    for name, s in sorted(r.sets.items(), key=lambda x: utf8_key(x[0])):
        elems = sorted(s.values(), key=lambda x: value_order_key(x[0]))
        sets[name] = [{"v": e, "cl": n} for e, n in elems]
    return {"cl": r.cl, "updated": ts_text(r.updated), "fields": fields, "sets": sets}


def parse_device_hex(s: str) -> bytes:
    if len(s) != 64 or any(c not in "0123456789abcdefABCDEF" for c in s):
        raise ValueError(f"not a device: {s!r}")
    return bytes.fromhex(s)


def record_from_state_json(collection: str, id: str, o) -> Record:
    r = Record(collection, id)
    if not isinstance(o, dict):
        raise ValueError("state must be an object")
    cl = o.get("cl")
    if isinstance(cl, bool) or not isinstance(cl, int) or cl < 0:
        raise ValueError("state.cl must be a non-negative integer")
    r.cl = cl
    r.updated = ts_parse(o.get("updated"))
    for name, f in o.get("fields", {}).items():
        versions = [(ts_parse(x["t"]), parse_device_hex(x["d"]), x["v"]) for x in f["versions"]]
        ctx = {}
        for d, t in f["ctx"].items():
            d = parse_device_hex(d)
            ctx[d] = max(ctx.get(d, 0), ts_parse(t))
        r.fields[name] = Register(versions, ctx)
    for name, elems in o.get("sets", {}).items():
        s = {}
        for x in elems:
            n = x["cl"]
            assert isinstance(n, int) and not isinstance(n, bool) and n >= 0
            k = encode_value(x["v"])
            assert k not in s, "an element listed twice"
            if n > 0:
                s[k] = [x["v"], n]
        r.sets[name] = s
    return r


# ---------------------------------------------------------------------------------------------
# Ed25519 public keys from seeds (RFC 8032, 5.1.5), only to get valid keys for the vectors

_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _recover_x(y, sign):
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if x & 1 != sign:
        x = _P - x
    return x


_BY = 4 * pow(5, _P - 2, _P) % _P
_B = (_recover_x(_BY, 0), _BY, 1, _recover_x(_BY, 0) * _BY % _P)


def _add(p, q):
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = 2 * t1 * t2 * _D % _P
    dd = 2 * z1 * z2 % _P
    e, f, g, h = b - a, dd - c, dd + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s, p):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def ed25519_public_key(seed: bytes) -> bytes:
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    x, y, z, _ = _mul(a, _B)
    zi = pow(z, _P - 2, _P)
    x, y = x * zi % _P, y * zi % _P
    return (y | (x & 1) << 255).to_bytes(32, "little")


# ---------------------------------------------------------------------------------------------
# Device IDs (SPEC 1.11)

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def device_id(public_key: bytes) -> bytes:
    return blake2b_256(public_key)


def luhn32(code_points) -> int:
    factor, total = 2, 0
    for cp in reversed(code_points):
        addend = factor * cp
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return (32 - total % 32) % 32


def device_text(d: bytes) -> str:
    data = base64.b32encode(d).decode().rstrip("=")
    assert len(data) == 52
    cps = [ALPHABET.index(c) for c in data]
    chars = []
    for k in range(4):
        block = cps[13 * k:13 * k + 13]
        chars += [ALPHABET[c] for c in block] + [ALPHABET[luhn32(block)]]
    text = "".join(chars)
    return "-".join(text[i:i + 7] for i in range(0, 56, 7))


class DeviceIDTextError(Exception):
    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind


def parse_device_text(text: str) -> bytes:
    look_alikes = {"0": "O", "1": "I", "8": "B"}
    cps = []
    for ch in text:
        if ch in "- \t\n\r":
            continue
        ch = look_alikes.get(ch, ch)
        if "a" <= ch <= "z":
            ch = ch.upper()
        if ch not in ALPHABET:
            raise DeviceIDTextError("invalidCharacter")
        cps.append(ALPHABET.index(ch))
    if len(cps) != 56:
        raise DeviceIDTextError("wrongLength")
    data = []
    for k in range(4):
        block = cps[14 * k:14 * k + 13]
        if luhn32(block) != cps[14 * k + 13]:
            raise DeviceIDTextError("checkMismatch")
        data += block
    if data[-1] & 0b1111:
        raise DeviceIDTextError("malformed")
    return base64.b32decode("".join(ALPHABET[c] for c in data) + "====")


# ---------------------------------------------------------------------------------------------
# Fixed inputs

RFC8032_SEEDS = [
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
]
RFC8032_PUBLIC_KEYS = [
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
]
SEEDS = RFC8032_SEEDS + [
    hashlib.sha256(f"hubsync test device {n}".encode()).hexdigest() for n in range(1, 6)
]

for _seed, _pk in zip(RFC8032_SEEDS, RFC8032_PUBLIC_KEYS):
    assert ed25519_public_key(bytes.fromhex(_seed)).hex() == _pk, "Ed25519 self-check failed"

KEYS = [ed25519_public_key(bytes.fromhex(s)) for s in SEEDS]
# The devices that write in the record vectors: the IDs of the last five keys, named by their
# order (A < B < C < D < E as bytes), so that tie-breaks in the vectors are easy to follow.
_ids = sorted(device_id(k) for k in KEYS[3:])
A, B, C, D, E = _ids
NAMES = {A: "A", B: "B", C: "C", D: "D", E: "E"}

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z, the wall clock the histories start at


# ---------------------------------------------------------------------------------------------
# encoding.json


def value_cases():
    cases = [
        ("null", "null"),
        ("false", "false"),
        ("true", "true"),
        ("zero", "0"),
        ("small int", "42"),
        ("negative int", "-1"),
        ("negative int, large", "-1234567890123"),
        ("Int64 max", "9223372036854775807"),
        ("Int64 min", "-9223372036854775808"),
        ("integral double is an int", "1.0"),
        ("exponent form, integral: an int", "1e3"),
        ("negative zero is int 0", "-0.0"),
        ("integral, beyond Int64: a double", "9223372036854775808"),
        ("large negative beyond Int64: a double", "-1e19"),
        ("long integer literal: a double", "123456789012345678901234567890"),
        ("underflow to zero: int 0", "-1e-400"),
        ("double", "0.5"),
        ("negative double", "-2.25"),
        ("small double", "1e-7"),
        ("pi", "3.141592653589793"),
        ("huge double", "1.7976931348623157e308"),
        ("empty string", '""'),
        ("ASCII string", '"hello"'),
        ("two-byte UTF-8", '"caf\\u00e9"'),
        ("CJK", '"日本語"'),
        ("four-byte UTF-8 (surrogate pair in JSON)", '"\\ud83d\\ude00"'),
        ("escapes and control characters", '"q\\"b\\\\n\\nt\\tc\\u0001/\\/"'),
        ("empty array", "[]"),
        ("mixed array keeps its order", '[3,"a",null,true,[],{}]'),
        ("empty object", "{}"),
        ("object keys sorted", '{"b":1,"a":2,"ab":3,"B":4}'),
        ("object keys by UTF-8, not UTF-16", '{"\\uff61":1,"\\ud83d\\ude00":2,"z":3,"\\u00e9":4,"":5}'),
        ("the worked example of SPEC 1.6.1", '{"b":[1,-2],"a":"\\u00e9","c":0.5}'),
        ("nested objects", '{"outer":{"z":[1,{"y":null,"x":false}],"a":{"é":"e","e":"é"}},"n":-7}'),
    ]
    out = []
    for name, text in cases:
        v = parse_json(text)
        out.append({"name": name, "json": text, "canonical_json": write_json(v),
                    "bytes": encode_value(v).hex()})
    return out


def value_order_case():
    texts = ["null", "false", "true", "-1", "0", "1", "9223372036854775807", "-0.5", "0.5",
             '""', '"B"', '"a"', '"aa"', '"b"', '"é"', '"\\uff61"', '"\\ud83d\\ude00"',
             "[]", "[0]", '["a"]', "{}", '{"a":1}', '{"b":0}']
    vals = [parse_json(t) for t in texts]
    ordered = sorted(vals, key=value_order_key)
    return [write_json(v) for v in ordered]


def timestamp_cases():
    valid = [(0, 0), (1, 0), (0, 1), (T0, 0), (T0, 7), (T0, 65535), (MILLIS_MAX, 65535)]
    out = {"valid": [], "invalid": []}
    for m, c in valid:
        t = ts(m, c)
        out["valid"].append({"text": ts_text(t), "raw": "%016x" % t, "written": ts_text(t)})
    out["valid"].append({"text": "0001700000000000:0007", "raw": "%016x" % ts(T0, 7),
                         "written": ts_text(ts(T0, 7)),
                         "note": "leading zeros are read; writers never write them"})
    for s in ["", "1", "1:2:3", ":1", "1:", "a:1", "1:b", "-1:0", "1:-1", "1.5:0", " 1:0",
              "281474976710656:0", "0:65536"]:
        try:
            ts_parse(s)
            raise AssertionError(s)
        except ValueError:
            pass
        out["invalid"].append(s)
    return out


def clock_cases():
    cases = []

    def run(name, start, steps, max_drift=60_000):
        c = HLC(ts_parse(start), max_drift)
        rows = []
        for st in steps:
            row = dict(st)
            if st["op"] == "tick":
                row["expect"] = ts_text(c.tick(st["wall"]))
            else:
                try:
                    row["expect"] = ts_text(c.observe(ts_parse(st["remote"]), st["wall"]))
                except ClockSkew:
                    row["expect_error"] = "clockSkew"
                    row["expect"] = ts_text(c.last)
            rows.append(row)
        cases.append({"name": name, "start": start, "max_drift_ms": max_drift, "steps": rows})

    w = T0
    run("wall clock moves: counter 0", "0:0", [
        {"op": "tick", "wall": w}, {"op": "tick", "wall": w + 5}, {"op": "tick", "wall": w + 6}])
    run("same or earlier wall time: counter counts", f"{w}:0", [
        {"op": "tick", "wall": w}, {"op": "tick", "wall": w}, {"op": "tick", "wall": w - 1000},
        {"op": "tick", "wall": w + 1}])
    run("counter full: borrow the next millisecond", f"{w}:65534", [
        {"op": "tick", "wall": w}, {"op": "tick", "wall": w}, {"op": "tick", "wall": w},
        {"op": "tick", "wall": w + 1}])
    run("observe a remote reading, then tick past it", f"{w}:3", [
        {"op": "observe", "remote": f"{w + 2000}:9", "wall": w},
        {"op": "tick", "wall": w + 1},
        {"op": "observe", "remote": f"{w}:0", "wall": w + 1},
        {"op": "tick", "wall": w + 2001}, {"op": "tick", "wall": w + 2002}])
    run("drift bound: 60 s ahead is taken, more is refused and changes nothing", f"{w}:0", [
        {"op": "observe", "remote": f"{w + 60000}:65535", "wall": w},
        {"op": "observe", "remote": f"{w + 70001}:0", "wall": w + 10000},
        {"op": "tick", "wall": w + 10000}])
    run("a smaller bound", f"{w}:0", [
        {"op": "observe", "remote": f"{w + 1001}:0", "wall": w},
        {"op": "observe", "remote": f"{w + 1000}:0", "wall": w}], max_drift=1000)
    return cases


def record_cases():
    cases = []

    def add(name, r: Record, note=None, input_state=None):
        case = {"name": name}
        if note:
            case["note"] = note
        case.update({"collection": r.collection, "id": r.id})
        if input_state is not None:
            case["input"] = input_state
        st = state_json(r)
        case["state"] = st
        enc = encode_record(r)
        case["bytes"] = enc.hex()
        case["digest"] = blake2b_256(enc).hex()
        case["export_line"] = write_json({"collection": r.collection, "id": r.id, "state": st,
                                          "digest": blake2b_256(enc).hex()})
        # the JSON form reads back to the same state
        back = record_from_state_json(r.collection, r.id, parse_json(json.dumps(st)))
        assert encode_record(back) == enc
        cases.append(case)

    # 1. one field, one write
    r = Record("personas", "p1")
    r.write("name", "Ada", ts(T0, 0), A)
    add("one field, one write", r)

    # 2. a conflict: two versions, context of two devices
    a = Record("personas", "p1")
    a.write("name", "Ada", ts(T0, 0), A)
    b = a.copy()
    a.write("name", "Ada L.", ts(T0 + 10, 0), A)
    b.write("name", "Ada Lovelace", ts(T0 + 10, 0), B)
    add("a conflict: two versions, greatest stamp first", merge_record(a, b),
        note="same clock reading on both sides; the greater device ID wins")

    # 3. three devices in a context, one of them without a live version
    r = Record("preferences", "theme")
    r.write("value", "dark", ts(T0, 0), C)
    r2 = r.copy()
    r2.write("value", "light", ts(T0 + 5, 1), A)
    r3 = r.copy()
    r3.write("value", "solarized", ts(T0 + 7, 0), E)
    m = merge_record(r2, r3)
    add("three devices in a context", m,
        note="C's write was seen and replaced by both A and E, which conflict")

    # 4. a set with removed elements; element order differs between bytes and JSON
    r = Record("memories", "m1")
    r.write("text", "likes tea", ts(T0, 0), B)
    r.insert("tags", ["tea", "b", "aa", "drinks"], ts(T0, 1), B)
    r.remove("tags", ["drinks"], ts(T0 + 1, 0), B)
    r.insert("tags", ["drinks"], ts(T0 + 2, 0), B)
    r.remove("tags", ["b", "drinks"], ts(T0 + 3, 0), B)
    add("a set with removed elements", r,
        note="bytes list elements by their canonical bytes (\"b\" before \"aa\"), "
             "JSON by value order (\"aa\" before \"b\"); even lengths are removed elements")

    # 5. a deleted record keeps its fields
    r = Record("memories", "m2")
    r.write("text", "old note", ts(T0, 0), D)
    r.insert("tags", ["x"], ts(T0, 1), D)
    r.delete(ts(T0 + 100, 0), D)
    add("a deleted record (causal length 2)", r)

    # 6. deleted, then undeleted by a write
    r = Record("personas", "p2")
    r.write("name", "Bob", ts(T0, 0), A)
    r.delete(ts(T0 + 1, 0), A)
    r.write("name", "Robert", ts(T0 + 2, 0), B)
    add("undeleted by a write (causal length 3)", r)

    # 7. every value kind, non-ASCII ID and field names
    r = Record("preferences", "größe/😀")
    r.write("value", {"n": None, "f": False, "t": True, "i": -42, "d": 0.25, "s": "ß",
                      "a": [1, [2, {"ä": "b", "z": 0}]], "o": {"\uff61": 1, "😀": 2}}, ts(T0, 0), C)
    r.write("ünïcode", "ok", ts(T0, 1), C)
    r.write("Zeta", None, ts(T0, 2), C)
    r.write("alpha", 1e-7, ts(T0, 3), C)
    r.write("big", 9223372036854775807, ts(T0, 4), C)
    r.write("neg", -9223372036854775808, ts(T0, 5), C)
    add("every value kind; non-ASCII ID and field names", r,
        note="field names sorted by UTF-8 bytes: Zeta, alpha, big, neg, value, ünïcode")

    # 8. a conversation message
    r = Record("conversations", "msg-0001")
    st = ts(T0 + 123, 0)
    for k, v in [("conversation", "c-42"), ("role", "assistant"),
                 ("content", "Hello!\nHow can I help? \"quoted\" \\ back\tslash")]:
        r.write(k, v, st, E)
    add("a conversation message", r, note="one write stamp for the whole put")

    # 9. the empty state
    add("never written (causal length 0)", Record("personas", "nobody"))

    # 10. an empty set is part of the state
    r = Record("personas", "p3")
    r.write("name", "Cy", ts(T0, 0), A)
    r.sets["traits"] = {}
    r._touch(ts(T0, 0))
    add("an empty set is kept (not the same as no set)", r)

    # 11. extremes of the clock; a context entry ahead of the versions
    r = Record("preferences", "volume")
    r.write("value", 0.75, ts(MILLIS_MAX, 65535), B)
    r.fields["value"].ctx[A] = ts(MILLIS_MAX, 65534)
    r.fields["value"].ctx[D] = ts(1, 0)
    add("clock extremes, context wider than the versions", r)

    # 12. a state as read: versions out of order, context missing a version's device
    a = Record("memories", "m3")
    a.write("text", "first", ts(T0, 0), A)
    b = a.copy()
    a.write("text", "from A", ts(T0 + 1, 0), A)
    b.write("text", "from C", ts(T0 + 2, 0), C)
    m = merge_record(a, b)
    st = state_json(m)
    raw = json.loads(json.dumps(st))
    raw["fields"]["text"]["versions"].reverse()
    del raw["fields"]["text"]["ctx"][C.hex()]
    raw["fields"]["text"]["ctx"][A.hex()] = ts_text(ts(T0, 0))
    raw["sets"] = {"tags": [{"v": "z", "cl": 1}, {"v": "gone", "cl": 0}, {"v": "a", "cl": 2}]}
    m.sets["tags"] = {encode_value("z"): ["z", 1], encode_value("a"): ["a", 2]}
    add("read normalises: versions sorted, context completed, zero lengths dropped", m,
        input_state=raw)
    # 13. the worked example of SPEC 1.6.3 (devices 11…11 and 22…22)
    add("the worked example of SPEC 1.6.3", spec_example()[2])
    return cases


def spec_example():
    """SPEC 1.6.3: two devices write one field concurrently; one also adds a trait."""
    x, y = bytes([0x11]) * 32, bytes([0x22]) * 32
    a = Record("personas", "p1")
    a.write("name", "Ada", ts(T0, 0), x)
    b = a.copy()
    a.write("name", "Ada L.", ts(T0 + 10, 0), x)
    b.write("name", "Ada King", ts(T0 + 10, 0), y)
    b.insert("traits", ["kind"], ts(T0 + 10, 1), y)
    return a, b, merge_record(a, b)


def unicode_cases():
    """Strings are compared by their bytes: NFC and NFD spellings are different strings."""
    nfc, nfd = "\u00e9", "e\u0301"  # "é" as one code point, and as e + combining acute
    values = []
    for name, text in [
        ("object keys that differ only in normalisation are two keys", '{"\\u00e9":1,"e\\u0301":2}'),
        ("array of the NFC and the NFD spelling", '["e\\u0301","\\u00e9"]'),
    ]:
        v = parse_json(text)
        values.append({"name": name, "json": text, "canonical_json": write_json(v),
                       "bytes": encode_value(v).hex()})

    records = []
    r = Record("memories", "caf" + nfc)
    r.write("text", "caf" + nfd, ts(T0, 0), A)
    r.write("note" + nfc, 1, ts(T0, 1), A)
    r.write("note" + nfd, 2, ts(T0, 2), A)
    r.insert("tags", [nfc, nfd], ts(T0, 3), A)
    r.remove("tags", [nfd], ts(T0, 4), A)
    st = state_json(r)
    records.append({"name": "field names and set elements in NFC and NFD are distinct",
                    "collection": r.collection, "id": r.id, "state_text": write_json(st),
                    "bytes": encode_record(r).hex(), "digest": digest(r).hex()})

    merges = []
    base = Record("memories", "m-unicode")
    base.write("text", "x", ts(T0, 0), A)
    a, b = base.copy(), base.copy()
    a.insert("tags", ["caf" + nfc], ts(T0 + 1, 0), A)
    b.insert("tags", ["caf" + nfd], ts(T0 + 1, 0), B)
    m = merge_record(a, b)
    assert encode_record(m) == encode_record(merge_record(b, a))
    assert len(m.sets["tags"]) == 2
    merges.append({"name": "each side adds one spelling of a tag: both are kept, in either merge order",
                   "collection": m.collection, "id": m.id,
                   "states_text": [write_json(state_json(a)), write_json(state_json(b))],
                   "merged_text": write_json(state_json(m)), "digest": digest(m).hex()})
    return {"about": "Texts, not JSON objects, so that a reader that compares strings by canonical "
                     "equivalence fails these cases and not the whole file.",
            "values": values, "records": records, "merges": merges}


def encoding_file():
    return {
        "about": "HubSync canonical encoding vectors (protocol/SPEC.md, chapter 1). Generated by "
                 "generate.py; do not edit by hand.",
        "devices": {name: d.hex() for d, name in sorted(NAMES.items())},
        "values": value_cases(),
        "value_order": value_order_case(),
        "timestamps": timestamp_cases(),
        "clock": clock_cases(),
        "records": record_cases(),
        "unicode": unicode_cases(),
    }


# ---------------------------------------------------------------------------------------------
# merge.json: histories played by simulated devices


class Device:
    def __init__(self, id: bytes, key, wall: int):
        self.id, self.clock, self.wall = id, HLC(), wall
        self.state = Record(*key)

    def stamp(self, advance=1):
        self.wall += advance
        return self.clock.tick(self.wall), self.id

    def receive(self, other: Record):
        self.clock.observe(other.greatest_time(), self.wall)
        self.state = merge_record(self.state, other)

    def snapshot(self):
        return self.state.copy()


def merge_cases():
    cases = []

    def add(name, note, states):
        m = states[0]
        for s in states[1:]:
            m = merge_record(m, s)
        # commutative, associative, idempotent on these inputs
        for order in (list(reversed(states)), states[1:] + states[:1]):
            m2 = order[0]
            for s in order[1:]:
                m2 = merge_record(m2, s)
            assert encode_record(m2) == encode_record(m), name
        assert encode_record(merge_record(m, states[0])) == encode_record(m)
        cases.append({"name": name, "note": note, "collection": m.collection, "id": m.id,
                      "states": [state_json(s) for s in states],
                      "merged": state_json(m), "digest": digest(m).hex()})

    key = ("personas", "p1")

    # 1. concurrent writes become a conflict
    a, b = Device(A, key, T0), Device(B, key, T0 + 3)
    a.state.write("name", "Ada", *a.stamp())
    b.receive(a.snapshot())
    a.state.write("name", "Ada L.", *a.stamp(10))
    b.state.write("name", "Ada Lovelace", *b.stamp(20))
    add("concurrent writes become a conflict",
        "A and B both overwrite A's first write without seeing each other; B's clock is later, "
        "so B's value is the visible winner and A's stays as a conflict", [a.snapshot(), b.snapshot()])
    conflict_a = a.snapshot()
    conflict_b = b.snapshot()

    # 2. a write that saw the conflict resolves it
    b.receive(conflict_a)
    b.state.write("name", "Augusta Ada King", *b.stamp(20))
    add("a write that saw both sides resolves the conflict",
        "B merged the conflict and wrote again: one version; A still holds only its own write",
        [conflict_a, b.snapshot()])

    # 3. a write that saw only one side replaces only that side
    c = Device(C, key, T0 + 1)
    c.receive(conflict_a)
    c.state.write("name", "Lady Lovelace", *c.stamp(30))
    add("a write that saw one side of a conflict replaces only that side",
        "C saw A's write, not B's: C's write replaces A's and conflicts with B's",
        [conflict_b, c.snapshot(), conflict_a])

    # 4. same clock reading on two devices: device order breaks the tie
    a, b = Device(A, key, T0), Device(B, key, T0)
    a.state.write("name", "x", *a.stamp())
    b.state.write("name", "y", *b.stamp())
    b.state.write("style", "terse", *b.stamp(0))
    add("same clock reading: the greater device wins",
        "both writes at the same HLC reading; different fields merge without conflict",
        [a.snapshot(), b.snapshot()])

    # 5. delete vs concurrent edit
    key = ("memories", "m1")
    a, b = Device(A, key, T0), Device(D, key, T0 + 1)
    a.state.write("text", "buy milk", *a.stamp())
    a.state.insert("tags", ["todo"], *a.stamp(0))
    b.receive(a.snapshot())
    a.state.delete(*a.stamp(50))
    b.state.write("text", "buy oat milk", *b.stamp(60))
    deleted_a, edited_b = a.snapshot(), b.snapshot()
    add("delete vs concurrent edit: the delete wins, the edit is kept inside",
        "causal length 2 beats 1; the tombstone carries D's edit, so an undelete shows it",
        [deleted_a, edited_b])

    # 6. an edit made after seeing the delete undeletes
    b.receive(deleted_a)
    b.state.write("text", "buy oat milk (again)", *b.stamp(70))
    add("a write after seeing the delete undeletes",
        "D merged the delete (causal length 2) and wrote: length 3, alive everywhere",
        [deleted_a, b.snapshot()])

    # 7. concurrent deletes and an undelete
    a, b = Device(A, key, T0), Device(B, key, T0)
    a.state.write("text", "t", *a.stamp())
    b.receive(a.snapshot())
    a.state.delete(*a.stamp(5))
    b.state.delete(*b.stamp(6))
    b.state.undelete(*b.stamp(7))
    add("two deletes and one undelete",
        "both deleted (length 2); B undeleted (length 3): alive", [a.snapshot(), b.snapshot()])

    # 8. set races
    key = ("memories", "m2")
    a, b = Device(A, key, T0), Device(E, key, T0 + 2)
    a.state.write("text", "trip notes", *a.stamp())
    a.state.insert("tags", ["travel", "tea", "b"], *a.stamp(0))
    b.receive(a.snapshot())
    a.state.remove("tags", ["tea"], *a.stamp(10))        # A removes tea: 2
    b.state.remove("tags", ["tea"], *b.stamp(10))        # E removes tea: 2 ...
    b.state.insert("tags", ["tea"], *b.stamp(1))         # ... and adds it back: 3
    a.state.remove("tags", ["travel"], *a.stamp(1))      # A removes travel: 2; E keeps it at 1
    a.state.insert("tags", ["aa", "new"], *a.stamp(1))   # both add "new" concurrently: 1 and 1
    b.state.insert("tags", ["new", "Z"], *b.stamp(1))
    add("set add/remove races",
        "per element the greater causal length wins: tea 3 (re-added), travel 2 (removed), "
        "new 1 (added on both sides), b 1 (untouched)", [a.snapshot(), b.snapshot()])

    # 9. three-way conflict, merged in any order
    key = ("preferences", "lang")
    devs = [Device(d, key, T0 + i) for i, d in enumerate([C, A, B])]
    devs[0].state.write("value", "en", *devs[0].stamp())
    for d in devs[1:]:
        d.receive(devs[0].snapshot())
    devs[0].state.write("value", {"lang": "en-GB"}, *devs[0].stamp(5))
    devs[1].state.write("value", ["fr", "en"], *devs[1].stamp(5))
    devs[2].state.write("value", 3.5, *devs[2].stamp(5))
    add("three concurrent writes: three versions", "any merge order gives the same state",
        [d.snapshot() for d in devs])

    # 10. stale state: everything in it was already seen
    key = ("personas", "p9")
    a = Device(B, key, T0)
    a.state.write("name", "Old", *a.stamp())
    a.state.insert("traits", ["calm"], *a.stamp(0))
    old = a.snapshot()
    a.state.write("name", "New", *a.stamp(5))
    a.state.remove("traits", ["calm"], *a.stamp(1))
    add("a stale copy changes nothing", "the newer state covers every write of the older",
        [old, a.snapshot()])

    # 11. the worked example of SPEC 1.6.3
    a, b, _ = spec_example()
    add("the worked example of SPEC 1.5.5 and 1.6.3",
        "devices 11…11 and 22…22 write the same field at the same clock reading", [a, b])

    # 12. one write, two values: a damaged replica
    key = ("personas", "p7")
    a = Device(A, key, T0)
    a.state.write("name", "same stamp", *a.stamp())
    x, y = a.snapshot(), a.snapshot()
    t, d, _ = y.fields["name"].versions[0]
    y.fields["name"].versions = [(t, d, "same stamp!")]
    add("one stamp with two values keeps the greater value",
        "only a damaged replica produces this; the merge is still deterministic", [x, y])
    return cases


def merge_file():
    return {
        "about": "HubSync merge vectors (protocol/SPEC.md, 1.5). Each case: states of one record; "
                 "merged = their merge in any order. Generated by generate.py.",
        "devices": {name: d.hex() for d, name in sorted(NAMES.items())},
        "cases": merge_cases(),
    }


# ---------------------------------------------------------------------------------------------
# device_id.json


def device_id_file():
    keys = []
    for seed, pk in zip(SEEDS, KEYS):
        d = device_id(pk)
        t = device_text(d)
        assert parse_device_text(t) == d
        keys.append({"seed": seed, "public_key": pk.hex(), "device_id": d.hex(), "text": t})

    ids = []
    for raw in [bytes(32), bytes([0xFF] * 32), bytes(range(32)), bytes(range(255, 223, -1))]:
        ids.append({"device_id": raw.hex(), "text": device_text(raw)})

    # other spellings that read as the same ID
    base = keys[0]
    t = base["text"]
    plain = t.replace("-", "")
    spellings = [
        ("lower case", t.lower()),
        ("no separators", plain),
        ("spaces and line breaks", " ".join(t.split("-")[:4]) + "\n" + "\t".join(t.split("-")[4:]) + "\r\n"),
        ("mixed case, groups of four", "-".join(
            "".join(c.lower() if i % 2 else c for i, c in enumerate(plain[j:j + 4]))
            for j in range(0, 56, 4))),
    ]
    # look-alikes: pick an ID whose text has O, I and B, then type 0, 1 and 8 instead
    for k in keys + ids:
        if all(ch in k["text"] for ch in "OIB"):
            spellings.append(("0, 1 and 8 read as O, I and B",
                              k["text"].replace("O", "0").replace("I", "1").replace("B", "8")))
            look = k
            break
    else:
        raise AssertionError("no ID with O, I and B")
    parses = []
    for name, s in spellings:
        target = look if name.startswith("0, 1") else base
        assert parse_device_text(s).hex() == target["device_id"], name
        parses.append({"name": name, "text": s, "device_id": target["device_id"]})

    invalid = []

    def bad(name, s, kind):
        try:
            parse_device_text(s)
            raise AssertionError(name)
        except DeviceIDTextError as e:
            assert e.kind == kind, (name, e.kind)
        invalid.append({"name": name, "text": s, "error": kind})

    def with_char(text, index, ch):  # index into the 56 characters, separators kept
        chars = list(text.replace("-", ""))
        chars[index] = ch
        s = "".join(chars)
        return "-".join(s[i:i + 7] for i in range(0, 56, 7))

    bad("empty", "", "wrongLength")
    bad("one character short", t[:-1], "wrongLength")
    bad("one character too many", t + "A", "wrongLength")
    bad("the 52 characters without checks", base64.b32encode(bytes.fromhex(base["device_id"]))
        .decode().rstrip("="), "wrongLength")
    bad("a 9", with_char(t, 3, "9"), "invalidCharacter")
    bad("punctuation", t.replace("-", "_", 1), "invalidCharacter")
    bad("non-ASCII letter", with_char(t, 0, "É"), "invalidCharacter")
    bad("hex form is not the text form", base["device_id"], "invalidCharacter")
    # one substitution in each block
    for blk in range(4):
        i = 14 * blk + 5
        c = plain[i]
        sub = ALPHABET[(ALPHABET.index(c) + 1) % 32]
        bad(f"one character changed in block {blk + 1}", with_char(t, i, sub), "checkMismatch")
    # an adjacent swap
    for i in range(55):
        if plain[i] != plain[i + 1] and {plain[i], plain[i + 1]} != {"A", "7"} and i % 14 != 13 \
                and (i + 1) % 14 != 13:
            s = list(plain)
            s[i], s[i + 1] = s[i + 1], s[i]
            s = "".join(s)
            bad("two neighbours swapped", "-".join(s[j:j + 7] for j in range(0, 56, 7)), "checkMismatch")
            break
    # well-formed and check-summed, but the last data character has non-zero unused bits
    data = list(base64.b32encode(bytes.fromhex(base["device_id"])).decode().rstrip("="))
    data[51] = "B" if data[51] == "A" else "R"
    cps = [ALPHABET.index(c) for c in data]
    chars = []
    for k in range(4):
        block = cps[13 * k:13 * k + 13]
        chars += [ALPHABET[c] for c in block] + [ALPHABET[luhn32(block)]]
    s = "".join(chars)
    bad("unused bits set (6th character of group 8 not A or Q)",
        "-".join(s[j:j + 7] for j in range(0, 56, 7)), "malformed")

    return {
        "about": "HubSync device ID vectors (protocol/SPEC.md, 1.11). device_id = BLAKE2b-256(public "
                 "key). Generated by generate.py.",
        "public_keys": keys,
        "ids": ids,
        "parse": parses,
        "invalid": invalid,
    }


# ---------------------------------------------------------------------------------------------


def render(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    files = {
        "encoding.json": render(encoding_file()),
        "merge.json": render(merge_file()),
        "device_id.json": render(device_id_file()),
    }
    # every file must read back under the spec's JSON rules (strict, no duplicate keys)
    for text in files.values():
        parse_json(text)
    check = "--check" in argv
    differ = False
    for name, text in files.items():
        path = os.path.join(here, name)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    same = f.read() == text
            except FileNotFoundError:
                same = False
            if not same:
                print(f"{name}: differs from the generator's output", file=sys.stderr)
                differ = True
        else:
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            print(f"wrote {name}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
