#!/usr/bin/env python3
"""Summary table of scripts/bench.sh: reads results.tsv and workloads.tsv, prints per
workload the median over rounds of each server's figure, the range of the same-round ratios
ours / best peer, the target and whether it is met, and p50/p99 latencies where measured.
A benchmark: it prints, it never fails on a target."""
import statistics
import sys

SERVERS = ["nginx", "haproxy", "proxy"]
LABEL = {"nginx": "nginx", "haproxy": "HAProxy", "proxy": "apm-tls-proxy"}


def num(text):
    try:
        return float(text)
    except ValueError:
        return None


def fmt(v, unit):
    if v is None:
        return "-"
    if unit.startswith("KiB"):
        return f"{v:.2f}"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}"


def main(results_path, workloads_path, markdown):
    info = {}
    order = []
    for line in open(workloads_path):
        name, endpoint, unit, better, ratio, absolute, title = line.rstrip("\n").split("|")
        info[name] = (unit, better, ratio, absolute, title)
        order.append(name)
    data = {}  # (workload, server) -> {round: (value, p50, p99)}
    for line in open(results_path):
        rnd, name, server, value, p50, p99, _detail = line.rstrip("\n").split("\t", 6)
        data.setdefault((name, server), {})[rnd] = (num(value), num(p50), num(p99))

    rows = []
    for name in order:
        unit, better, ratio_target, absolute, title = info[name]
        med = {}
        lat = {}
        for s in SERVERS:
            runs = data.get((name, s), {})
            vals = [v[0] for v in runs.values() if v[0] is not None]
            med[s] = statistics.median(vals) if vals else None
            p99s = [v[2] for v in runs.values() if v[2] is not None]
            lat[s] = statistics.median(p99s) if p99s else None
        ratios = []
        rounds = sorted({r for s in SERVERS for r in data.get((name, s), {})})
        for r in rounds:
            ours = data.get((name, "proxy"), {}).get(r, (None,))[0]
            peers = [data.get((name, s), {}).get(r, (None,))[0] for s in ("nginx", "haproxy")]
            peers = [p for p in peers if p is not None and p > 0]
            if ours is None or not peers:
                continue
            best = max(peers) if better == "high" else min(peers)
            ratios.append(ours / best)
        if ratios:
            ratio_text = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}, {len(ratios)} rounds)"
        else:
            ratio_text = "-"
        if absolute:
            target = f"≤ {absolute} KiB"
            met = med["proxy"] is not None and med["proxy"] <= float(absolute)
        else:
            target = f"≥ {ratio_target}"
            met = bool(ratios) and statistics.median(ratios) >= float(ratio_target)
        verdict = "met" if met else ("no data" if not ratios and med["proxy"] is None else "not met")
        p99 = " / ".join("-" if lat[s] is None else f"{lat[s]:.2f}" for s in SERVERS)
        if all(lat[s] is None for s in SERVERS):
            p99 = ""
        rows.append([f"{title} ({unit})"] + [fmt(med[s], unit) for s in SERVERS] +
                    [ratio_text, target, verdict, p99])

    head = ["workload", "nginx", "HAProxy", "apm-tls-proxy", "ours ÷ best peer (median, range)",
            "target", "verdict", "p99 ms nginx / HAProxy / ours"]
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|---|---:|---:|---:|---|---|---|---|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i]) if i < 4
                        else str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], len(sys.argv) > 3 and sys.argv[3] == "--markdown")
