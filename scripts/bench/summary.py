#!/usr/bin/env python3
"""Summary tables of scripts/bench.sh: reads results.tsv and workloads.tsv, prints per
workload the median over rounds of each server's figure, the range of the same-round ratios
ours / best peer, the target and whether it is met, and p50/p99 latencies where measured.
Workloads in ms (latency at the same request rate) get a table of their own: the rate,
each server's median p50 and p99, and the same-round ratio of the p99s (lower is better).
With --variants, reads variants.tsv instead: apm-tls-proxy with 2 workers and with the
access log on, each next to 1 worker in the same round, and the spread over 2 workers.
A benchmark: it prints, it never fails on a target."""
import re
import statistics
import sys

SERVERS = ["nginx", "haproxy", "proxy"]
LABEL = {"nginx": "nginx", "haproxy": "HAProxy", "proxy": "apm-tls-proxy"}
RATE = re.compile(r"\brate (\d+)/s")


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
    data = {}  # (workload, server) -> {round: (value, p50, p99, detail)}
    for line in open(results_path):
        rnd, name, server, value, p50, p99, detail = line.rstrip("\n").split("\t", 6)
        data.setdefault((name, server), {})[rnd] = (num(value), num(p50), num(p99), detail)

    rows = []
    for name in order:
        unit, better, ratio_target, absolute, title = info[name]
        if unit == "ms":
            continue
        med = {}
        lat = {}
        for s in SERVERS:
            runs = data.get((name, s), {})
            vals = [v[0] for v in runs.values() if v[0] is not None]
            med[s] = statistics.median(vals) if vals else None
            p99s = [v[2] for v in runs.values() if v[2] is not None]
            lat[s] = statistics.median(p99s) if p99s else None
        ratios = same_round_ratios(data, name, better)
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
                    [ratio_text(ratios), target, verdict, p99])

    head = ["workload", "nginx", "HAProxy", "apm-tls-proxy", "ours ÷ best peer (median, range)",
            "target", "verdict", "p99 ms nginx / HAProxy / ours"]
    print_table(head, rows, 4, markdown)
    latency(data, info, order, markdown)


def same_round_ratios(data, name, better):
    """Ours over the best peer's figure of the same round, for every round with both."""
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
    return ratios


def latency(data, info, order, markdown):
    """The latency-at-the-same-rate workloads: per server the median p50 and p99 over the
    rounds, and ours ÷ the best peer's p99 in the same round (target: at most 1.0)."""
    rows = []
    for name in [n for n in order if info[n][0] == "ms"]:
        _unit, better, ratio_target, _absolute, title = info[name]
        rates = sorted({int(m.group(1)) for s in SERVERS
                        for _v, _p50, _p99, detail in data.get((name, s), {}).values()
                        for m in [RATE.search(detail)] if m})
        cells = []
        for s in SERVERS:
            runs = data.get((name, s), {}).values()
            p50s = [v[1] for v in runs if v[1] is not None]
            p99s = [v[2] for v in runs if v[2] is not None]
            cells.append("-" if not p99s else
                         f"{statistics.median(p50s):.2f} / {statistics.median(p99s):.2f}")
        ratios = same_round_ratios(data, name, better)
        met = bool(ratios) and statistics.median(ratios) <= float(ratio_target)
        rate = "-" if not rates else "–".join(f"{r:,}" for r in sorted({rates[0], rates[-1]}))
        lowest = sum(1 for r in ratios if r <= 1.0)
        rows.append([title, rate] + cells +
                    [ratio_text(ratios), f"{lowest} of {len(ratios)}", f"≤ {ratio_target}",
                     "met" if met else ("no data" if not ratios else "not met")])
    if not rows:
        return
    print()
    # Where noise dominates, the best of two peers is a minimum of two draws: a server
    # exactly like them would have the lowest p99 in only a third of the rounds.
    head = ["latency at the same load (open loop)", "req/s", "nginx p50 / p99 ms",
            "HAProxy p50 / p99 ms", "apm-tls-proxy p50 / p99 ms", "ours ÷ best peer, p99",
            "ours lowest p99", "target", "verdict"]
    print_table(head, rows, 2, markdown)


def print_table(head, rows, numeric_columns, markdown):
    """Aligned text, or Markdown with the first numeric_columns - 1 figures right-aligned."""
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|---|" + "---:|" * (numeric_columns - 1) + "---|" * (len(head) - numeric_columns))
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(str(c).ljust(widths[i]) if i == 0 else
                        str(c).rjust(widths[i]) if i < numeric_columns else
                        str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip())


VARIANTS = ["proxy", "proxy_w2", "proxy_log"]
VARIANT_LABEL = {"proxy": "1 worker", "proxy_w2": "2 workers", "proxy_log": "access log on"}


def ratio_text(ratios):
    if not ratios:
        return "-"
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}, {len(ratios)} rounds)"


def variants(results_path, workloads_path, markdown):
    """apm-tls-proxy against itself: each variant's median and its same-round ratio to one
    worker; then how evenly two workers shared the connections (spread-* rows)."""
    info = {}
    for line in open(workloads_path):
        name, _endpoint, unit, _better, _ratio, _absolute, title = line.rstrip("\n").split("|")
        info[name] = (unit, title)
    data = {}  # (workload, server) -> {round: (value, p99, detail)}
    names = []
    for line in open(results_path):
        rnd, name, server, value, _p50, p99, detail = line.rstrip("\n").split("\t", 6)
        data.setdefault((name, server), {})[rnd] = (num(value), num(p99), detail)
        if name not in names:
            names.append(name)
    rows = []
    for name in [n for n in names if not n.startswith("spread-")]:
        unit, title = info.get(name, ("", name))
        row = [f"{title} ({unit})"]
        for v in VARIANTS:
            vals = [x[0] for x in data.get((name, v), {}).values() if x[0] is not None]
            row.append(fmt(statistics.median(vals), unit) if vals else "-")
        for v in ("proxy_w2", "proxy_log"):
            ratios = []
            for rnd, (base, _p99, _d) in data.get((name, "proxy"), {}).items():
                other = data.get((name, v), {}).get(rnd, (None,))[0]
                if base and other is not None:
                    ratios.append(other / base)
            row.append(ratio_text(ratios))
        p99s = []
        for v in VARIANTS:
            vals = [x[1] for x in data.get((name, v), {}).values() if x[1] is not None]
            p99s.append(f"{statistics.median(vals):.2f}" if vals else "-")
        row.append(" / ".join(p99s) if any(p != "-" for p in p99s) else "")
        rows.append(row)
    for name in [n for n in names if n.startswith("spread-")]:
        runs = data.get((name, "proxy_w2"), {})
        vals = [x[0] for x in runs.values() if x[0] is not None]
        counts = "; ".join(x[2].rsplit(": ", 1)[-1] for _r, x in sorted(runs.items()))
        title = info.get(name[len("spread-"):], ("", name))[1]
        rows.append([f"spread over 2 workers, {title} (fewest ÷ most)", "", ratio_text(vals), "",
                     f"connections per worker by round: {counts}", "", ""])
    head = ["workload"] + [VARIANT_LABEL[v] for v in VARIANTS] + \
        ["2 workers ÷ 1 (median, range)", "access log ÷ no log (median, range)",
         "p99 ms 1 / 2 / log"]
    print_table(head, rows, 4, markdown)


if __name__ == "__main__":
    flags = set(sys.argv[3:])
    if "--variants" in flags:
        variants(sys.argv[1], sys.argv[2], "--markdown" in flags)
    else:
        main(sys.argv[1], sys.argv[2], "--markdown" in flags)
