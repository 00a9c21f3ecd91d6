#!/usr/bin/env python3
"""Writes discovery.json: blinded group tags for mDNS adverts (protocol/SPEC.md, Discovery),
computed here from the spec's text with Python's hashlib, independently of the Swift code.

    python3 protocol/vectors/discovery.py          # (re)writes discovery.json next to this script
    python3 protocol/vectors/discovery.py --check  # exit status 1 if the file on disk differs
"""
import hashlib, json, os, struct, sys

def tag(key: bytes, epoch: int) -> str:
    mac = hashlib.blake2b(b"hubsync-tag" + struct.pack(">Q", epoch), digest_size=32, key=key)
    return mac.digest()[:16].hex()

key = bytes(range(32))
other = bytes([0xA5] * 16)
doc = {
    "description": "tag = hex(first 16 bytes of BLAKE2b-256 keyed with the group key over "
                   "'hubsync-tag' || epoch as UInt64 big-endian); epoch = whole days since 1970-01-01T00:00:00Z",
    "epoch_seconds": 86400,
    "vectors": [{"group_key": key.hex(), "epoch": e, "tag": tag(key, e)} for e in (0, 1, 20424, 2**64 - 1)]
             + [{"group_key": other.hex(), "epoch": 20424, "tag": tag(other, 20424)}],
    "epochs_at": [{"unix_seconds": s, "epoch": s // 86400} for s in (0, 86399, 86400, 1764633600, 1764719999)],
}
text = json.dumps(doc, indent=2) + "\n"
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "discovery.json")
if "--check" in sys.argv:
    sys.exit(0 if open(path).read() == text else 1)
open(path, "w").write(text)
