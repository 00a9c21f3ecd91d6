#!/usr/bin/env python3
"""Checks protocol/vectors/backup.json against protocol/SPEC.md chapter 5, independently of the
Swift code: BLAKE2b from Python's standard library; XChaCha20-Poly1305, zstd and sealed boxes
through ctypes from the system's libsodium and libzstd. Usage: python3 check_backup.py"""
import ctypes, ctypes.util, hashlib, json, os, struct, sys

V = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "backup.json")))
sodium = ctypes.CDLL(ctypes.util.find_library("sodium"))
zstd = ctypes.CDLL(ctypes.util.find_library("zstd"))
assert sodium.sodium_init() >= 0
failures = []

def check(cond, what):
    if not cond:
        failures.append(what)

def H(data, key=None, size=32):
    return hashlib.blake2b(data, digest_size=size, key=key or b"").digest()

def aead_open(key, ad, box):
    nonce, ct = box[:24], box[24:]
    out = ctypes.create_string_buffer(max(1, len(ct) - 16))
    mlen = ctypes.c_ulonglong()
    rc = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, ctypes.byref(mlen), None, ct, ctypes.c_ulonglong(len(ct)),
                                                           ad, ctypes.c_ulonglong(len(ad)), nonce, key)
    return out.raw[:mlen.value] if rc == 0 else None

def aead_seal(key, ad, nonce, plain):
    out = ctypes.create_string_buffer(len(plain) + 16)
    clen = ctypes.c_ulonglong()
    sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, ctypes.byref(clen), plain, ctypes.c_ulonglong(len(plain)),
                                                      ad, ctypes.c_ulonglong(len(ad)), None, nonce, key)
    return nonce + out.raw[:clen.value]

x = bytes.fromhex
K = x(V["repository_key"])
k_data = H(b"hubsync-backup-v1 data", K)
k_id = H(b"hubsync-backup-v1 chunk-id", K)
k_cut = H(b"hubsync-backup-v1 chunker", K)
check(V["derived"] == {"data": k_data.hex(), "chunk_id": k_id.hex(), "chunker": k_cut.hex()}, "derived keys (5.3)")

def cut_value(collection, rid):
    return struct.unpack(">I", H(collection.encode() + b"\0" + rid.encode(), k_cut, 16)[:4])[0]

for c in V["cut_values"]:
    check(cut_value(c["collection"], c["id"]) == c["cut"], f"cut value of {c['collection']}/{c['id']} (5.6)")

# The chunker (5.6), from the rules in the text.
p = V["chunker"]["parameters"]
counts, size, n_in_chunk, coll = [], 0, 0, None
for n, r in enumerate(V["chunker"]["records"]):
    framed = 4 + r["length"]
    if n_in_chunk and (r["collection"] != coll or size + framed > p["max"]):
        counts.append(n_in_chunk); size = n_in_chunk = 0
    coll = r["collection"]
    size += framed; n_in_chunk += 1
    if size >= p["min"] and cut_value(r["collection"], r["id"]) < (framed << 32) // p["target"]:
        counts.append(n_in_chunk); size = n_in_chunk = 0
if n_in_chunk:
    counts.append(n_in_chunk)
check(counts == V["chunker"]["chunk_record_counts"], f"chunk boundaries (5.6): {counts}")

# FastCDC for large records (5.6): the keyed gear table and the pieces of a fixed input.
f = V["fastcdc"]
gear = [struct.unpack("<Q", H(b"hubsync-backup-v1 gear" + bytes([i]), k_cut, 16)[:8])[0] for i in range(256)]
check(["%016x" % g for g in gear] == f["gear"], "FastCDC gear table (5.6)")
data = b"".join(H(struct.pack(">I", j), size=64) for j in range((f["length"] + 63) // 64))[:f["length"]]
MIN, AVG, MAX, MASK_S, MASK_L = 16384, 65536, 262144, 0xFFFFC00000000000, 0xFFFC000000000000

def fastcdc_piece(s):
    n = len(data) - s
    if n <= MIN:
        return n
    n = min(n, MAX)
    normal, fp = min(AVG, n), 0
    for i in range(MIN, n):
        fp = ((fp << 1) + gear[data[s + i]]) & 0xFFFFFFFFFFFFFFFF
        if fp & (MASK_S if i < normal else MASK_L) == 0:
            return i + 1
    return n

pieces, s = [], 0
while s < len(data):
    pieces.append(fastcdc_piece(s)); s += pieces[-1]
check(pieces == f["piece_lengths"], f"FastCDC pieces (5.6): {pieces}")

for c in V["chunk_ids"]:
    check(H(x(c["plaintext"]), k_id).hex() == c["id"], "chunk ID (5.6)")
for s in V["sealed"]:
    check(aead_seal(x(s["key"]), x(s["ad"]), x(s["nonce"]), x(s["plaintext"])).hex() == s["sealed"], "sealed blob (5.1)")

g = V["group_wrap"]
ad = b"hubsync-backup-v1 repository-key" + g["repository_id"].encode() + x(g["group_id"]) + struct.pack(">I", g["epoch"])
check(ad.hex() == g["ad"], "group wrap associated data (5.5)")
check(aead_seal(x(g["group_key"]), ad, x(g["nonce"]), K).hex() == g["wrapped"], "group-wrapped repository key (5.5)")

# The recovery key (5.2): text form, key pair, sealed repository key.
rk = V["recovery_key"]
R = x(rk["bytes"])
alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
bits = "".join(f"{b:08b}" for b in R) + "0000"
codes = [int(bits[i:i + 5], 2) for i in range(0, 260, 5)]
def luhn(block):
    total, factor = 0, 2
    for c in reversed(block):
        a = factor * c
        total += a // 32 + a % 32
        factor = 1 if factor == 2 else 2
    return (32 - total % 32) % 32
text = ""
for b in range(4):
    block = codes[13 * b:13 * b + 13]
    text += "".join(alphabet[c] for c in block) + alphabet[luhn(block)]
check("-".join(text[i:i + 7] for i in range(0, 56, 7)) == rk["text"], "recovery key text (5.2)")
pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
sodium.crypto_box_seed_keypair(pk, sk, H(b"hubsync recovery key v1", R))
check(pk.raw.hex() == rk["public_key"], "recovery public key (5.2)")
box = x(rk["sealed_repository_key"])
out = ctypes.create_string_buffer(len(box) - 48)
check(sodium.crypto_box_seal_open(out, box, ctypes.c_ulonglong(len(box)), pk, sk) == 0 and out.raw == K,
      "sealed repository key opens with the recovery key (5.5)")

# The pack (5.7).
pack = x(V["pack"]["file"])
check(H(pack).hex() == V["pack"]["id"], "pack ID (5.4)")
check(pack[-8:] == b"HSPACK01", "pack trailer magic (5.7)")
hlen = struct.unpack(">I", pack[-12:-8])[0]
header = aead_open(k_data, b"hubsync-backup-v1 pack-header", pack[-12 - hlen:-12])
check(header is not None, "pack header opens (5.7)")
if header is not None:
    n = struct.unpack(">I", header[:4])[0]
    chunks = []
    for i in range(n):
        e = header[4 + 45 * i:4 + 45 * (i + 1)]
        typ, cid, off, length, raw = e[0], e[1:33], *struct.unpack(">III", e[33:45])
        payload = aead_open(k_data, b"\x01" + cid, pack[off:off + length])
        check(typ == 1 and payload is not None, f"blob {i} opens (5.7)")
        if payload is None:
            continue
        if payload[0] == 0:
            plain = payload[1:]
        else:
            buf = ctypes.create_string_buffer(raw)
            got = zstd.ZSTD_decompress(buf, ctypes.c_size_t(raw), payload[1:], ctypes.c_size_t(len(payload) - 1))
            plain = buf.raw[:got]
        check(len(plain) == raw and H(plain, k_id) == cid, f"blob {i} chunk ID (5.7)")
        chunks.append(plain.hex())
    check(chunks == V["pack"]["chunks"], "pack chunks (5.7)")

if failures:
    print("backup.json: FAILED: " + "; ".join(failures))
    sys.exit(1)
print("backup.json: all vectors agree with SPEC chapter 5")
