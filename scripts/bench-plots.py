#!/usr/bin/python3
"""Draws the bench's plots from the figures `hubsync-bench --plots DIR` wrote.

    scripts/bench-plots.py DIR/results.json DIR

Needs Debian's python3-matplotlib (scripts/setup.sh bench installs it). Draws, from what the
results hold (a plot whose figures were not measured in that run is left out, and said so):
  propagation.png  histogram of the single-write propagation latencies (A's API -> B's feed)
  full-sync.png    full-sync time into an empty peer against the record count, HubSync and Syncthing
  backup.png       backup figures (full, incremental, no change, verify, restore) beside restic's
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def propagation(results, out):
    lat = results.get("propagation_ms")
    if not lat:
        return False
    lat = sorted(lat)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(lat, bins=60, color="#3b6ea8")
    p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]
    for value, name in ((p50, "p50"), (p99, "p99")):
        ax.axvline(value, color="#c0392b", linestyle="--", linewidth=1)
        ax.text(value, ax.get_ylim()[1] * 0.9, f" {name} {value:.2f} ms", color="#c0392b")
    ax.set_xlabel("propagation latency, A's API to B's change feed (ms)")
    ax.set_ylabel("writes")
    ax.set_title(f"Single-write propagation, {len(lat)} writes, two agents on loopback")
    fig.tight_layout()
    fig.savefig(out + "/propagation.png", dpi=110)
    return True


def full_sync(results, out):
    rows = sorted(results.get("full_sync", []), key=lambda r: r["records"])
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    ns = [r["records"] for r in rows]
    ax.plot(ns, [r["hubsync_s"] for r in rows], marker="o", label="HubSync")
    st = [(r["records"], r["syncthing_s"]) for r in rows if r.get("syncthing_s") is not None]
    if st:
        line, = ax.plot([n for n, _ in st], [s for _, s in st], marker="s", label="Syncthing (same records as files)")
        color = line.get_color()
    else:
        color = "tab:orange"
    # Where Syncthing gave up: a lower bound, drawn hollow with an arrow up and what it had synced.
    for r in rows:
        if r.get("syncthing_s") is None and r.get("syncthing_gave_up_s") is not None:
            n, t = r["records"], r["syncthing_gave_up_s"]
            ax.plot([n], [t], marker="^", markersize=9, markerfacecolor="none", color=color, linestyle="none",
                    label=f"Syncthing gave up after {t:.0f} s")
            synced = r.get("syncthing_synced")
            note = f"> {t:.0f} s" + (f"\n({synced:,} of {n:,} synced)" if synced is not None else "")
            ax.annotate(note, (n, t), textcoords="offset points", xytext=(-10, -28), ha="right", fontsize=8, color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("records (about 1 KB each)")
    ax.set_ylabel("full sync into an empty peer (s)")
    ax.set_title("Full sync time against the number of records")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out + "/full-sync.png", dpi=110)
    return True


def backup(results, out):
    rows = results.get("backup", [])
    if not rows:
        return False
    names = [r["name"] for r in rows]
    ours = [r.get("hubsync_s") or 0 for r in rows]
    theirs = [r.get("restic_s") or 0 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], ours, width=0.4, label="HubSync")
    if any(theirs):
        ax.bar([i + 0.2 for i in x], theirs, width=0.4, label="restic (same records as files)")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=15, ha="right")
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"Backup figures, {results.get('records', '?')} records")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out + "/backup.png", dpi=110)
    return True


def main():
    if len(sys.argv) != 3:
        print("usage: bench-plots.py RESULTS_JSON OUT_DIR", file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        results = json.load(f)
    out = sys.argv[2]
    for name, draw in (("propagation.png", propagation), ("full-sync.png", full_sync), ("backup.png", backup)):
        if draw(results, out):
            print(f"bench-plots: drew {out}/{name}")
        else:
            print(f"bench-plots: {name} not drawn: its figures were not measured in this run", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
