"""Writes peer_backup.json: a prune plan and requests of the peer target (protocol/SPEC.md 5.12),
computed from the chapter's text with the system's libsodium (Ed25519) through ctypes.
Usage: python3 generate_peer_backup.py > peer_backup.json"""
import ctypes, ctypes.util, hashlib, json, struct

sodium = ctypes.CDLL(ctypes.util.find_library("sodium"))
assert sodium.sodium_init() >= 0

seed = bytes(range(1, 33))
pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(64)
sodium.crypto_sign_seed_keypair(pk, sk, seed)
pk = pk.raw
server_public = bytes((7 * i + 3) % 256 for i in range(32))
server_id = hashlib.blake2b(server_public, digest_size=32).digest()
time_ms = 1795000000000
names = ["index/" + "ab" * 32, "data/cd/" + "cd" * 32, "snapshots/" + "ef" * 32]

def name_list(ns):
    return b"".join(struct.pack(">H", len(n.encode())) + n.encode() for n in ns)

plan = b"HSPP\x01" + pk + server_id + struct.pack(">QI", time_ms, len(names)) + name_list(names)
sig = ctypes.create_string_buffer(64)
sodium.crypto_sign_detached(sig, None, plan, ctypes.c_ulonglong(len(plan)), sk)

def request(op, name, args=b""):
    n = name.encode()
    return bytes([op]) + struct.pack(">H", len(n)) + n + args

print(json.dumps({
    "signer_seed": seed.hex(), "signer_public_key": pk.hex(), "server_device_id": server_id.hex(),
    "time": time_ms, "names": names, "signed_plan": (plan + sig.raw).hex(),
    "requests": [
        {"op": "put", "name": "data/cd/" + "cd" * 32, "replacing": False, "data": "00010203",
         "encoded": request(1, "data/cd/" + "cd" * 32, b"\x00" + bytes([0, 1, 2, 3])).hex()},
        {"op": "put", "name": "locks/" + "01" * 16, "replacing": True, "data": "7b7d",
         "encoded": request(1, "locks/" + "01" * 16, b"\x01{}").hex()},
        {"op": "range", "name": "data/cd/" + "cd" * 32, "offset": 4096, "length": 512,
         "encoded": request(3, "data/cd/" + "cd" * 32, struct.pack(">QI", 4096, 512)).hex()},
        {"op": "list", "name": "snapshots", "encoded": request(4, "snapshots").hex()},
    ],
}, indent=1))
