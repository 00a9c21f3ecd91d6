#!/usr/bin/env python3
"""The raw SQLite anchor for `hubsync-bench`: the same rows HubSync imports, inserted by SQLite alone.

    scripts/bench-sqlite.py PLAIN_JSONL DB_PATH

Reads the plain-record file (one {"collection", "id", "fields"} object a line) before the clock
starts, keeps each record's ID and its fields as JSON text, then times inserting every row into a
new table in one transaction (WAL, synchronous=NORMAL) through executemany, commit included.
Prints one JSON line: {"rows": N, "seconds": S, "rows_per_second": R, "bytes": B} (B: the rows'
bytes). DB_PATH and its -wal/-shm files are removed before and after.
"""
import json
import os
import sqlite3
import sys
import time


def remove(path):
    for p in (path, path + "-wal", path + "-shm"):
        try:
            os.remove(p)
        except FileNotFoundError:
            pass


def main():
    if len(sys.argv) != 3:
        print("usage: bench-sqlite.py PLAIN_JSONL DB_PATH", file=sys.stderr)
        return 2
    source, db = sys.argv[1], sys.argv[2]
    rows = []
    with open(source, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                rows.append((o["id"], json.dumps(o["fields"], separators=(",", ":"), ensure_ascii=False)))
    remove(db)
    try:
        con = sqlite3.connect(db, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("CREATE TABLE records (id TEXT PRIMARY KEY NOT NULL, fields TEXT NOT NULL)")
        start = time.perf_counter()
        con.execute("BEGIN")
        con.executemany("INSERT INTO records (id, fields) VALUES (?, ?)", rows)
        con.execute("COMMIT")
        seconds = time.perf_counter() - start
        con.close()
    finally:
        remove(db)
    print(json.dumps({"rows": len(rows), "seconds": seconds, "rows_per_second": len(rows) / seconds,
                      "bytes": sum(len(i.encode()) + len(t.encode()) for i, t in rows)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
