#!/usr/bin/env python3
"""Summarises bench/run.sh's results.tsv (and sizes.tsv) as Markdown: headline ratios first,
then every measurement's median and spread (min-max over the repetitions).

results.tsv columns: dataset, workload, consumer, rep, events, seconds, cpu_s, rss_kb, note
sizes.tsv columns:   dataset, mean key bytes, mean value bytes (pgseam's records)
"""
import statistics
import sys
from collections import defaultdict


def load(results_path, sizes_path):
    runs = defaultdict(list)
    for line in open(results_path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 9:
            continue
        ds, wl, consumer, _rep, events, secs, cpu, rss, note = f[:9]
        runs[(ds, wl, consumer)].append(
            {"events": int(events), "secs": float(secs), "cpu": float(cpu or 0), "rss_kb": int(rss or 0), "note": note}
        )
    sizes = {}
    for line in open(sizes_path):
        f = line.rstrip("\n").split("\t")
        if len(f) == 3 and f[1] and f[2]:
            sizes[f[0]] = float(f[1]) + float(f[2])
    return runs, sizes


def spread(values, fmt):
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(values))}–{fmt(max(values))})"


def rate(run):
    return run["events"] / run["secs"] if run["secs"] > 0 else 0.0


def num(v):
    return f"{v:,.0f}"


def summarise_notes(notes):
    """`k=v` notes: the median of each numeric value (per key), other words as they are."""
    values = defaultdict(list)
    words = []
    for note in notes:
        for item in note.split():
            k, _, v = item.partition("=")
            try:
                number = float(v)
            except ValueError:
                if item not in words:
                    words.append(item)
                continue
            values[k].append(number)
    out = [f"{k}={statistics.median(v):g}" for k, v in values.items()]
    return " ".join(out + words)


def main():
    runs, sizes = load(sys.argv[1], sys.argv[2])

    def median_rate(ds, wl, consumer):
        rs = runs.get((ds, wl, consumer))
        return statistics.median(rate(r) for r in rs) if rs else None

    datasets = sorted({k[0] for k in runs}, key=lambda d: ["bench", "wide", "toast"].index(d) if d in ["bench", "wide", "toast"] else 9)
    print("#### Headline: ratios of medians (rows/s)\n")
    print("| dataset | figure | pgseam | reference | ratio | goal |")
    print("|---|---|---:|---:|---:|---|")
    figures = [
        ("snapshot", "pgseam-broker", "debezium", "snapshot, pgseam → broker vs Debezium (count mode)", "≥ 5×"),
        ("snapshot", "pgseam-null", "debezium", "snapshot, pgseam null sink vs Debezium (count mode)", ""),
        ("snapshot", "pgseam-null", "copy-limit", "snapshot, pgseam null sink vs COPY binary", "≥ 0.70"),
        ("snapshot", "pgseam-broker", "sinklimit:rdkafka-producer", "snapshot, pgseam → broker vs raw producer", ""),
        ("backlog", "pgseam-null", "pg_recvlogical", "backlog, pgseam null sink vs pg_recvlogical", "≥ 0.90"),
        ("backlog", "pgseam-broker", "debezium", "backlog, pgseam → broker vs Debezium (count mode)", "≥ 5×"),
        ("bigtx", "pgseam-null", "pg_recvlogical", "one big tx, pgseam null sink vs pg_recvlogical", ""),
        ("bigtx", "pgseam-broker", "debezium", "one big tx, pgseam → broker vs Debezium (count mode)", "≥ 5×"),
    ]
    for ds in datasets:
        for wl, ours, ref, label, goal in figures:
            a = median_rate(ds, wl, ours)
            if ":" in ref:
                rwl, rc = ref.split(":")
                b = median_rate(ds, rwl, rc)
            else:
                b = median_rate(ds, wl, ref)
            if a is None or b is None or b == 0:
                continue
            print(f"| {ds} | {label} | {num(a)}/s | {num(b)}/s | {a / b:.2f} | {goal} |")
        for wl in ("backlog", "bigtx"):
            for c in ("pgseam-null", "pgseam-broker"):
                rs = runs.get((ds, wl, c))
                if rs:
                    print(f"| {ds} | peak RSS, {wl}, {c} | {max(r['rss_kb'] for r in rs) / 1024:.0f} MB | | | ≤ 100 MB streaming"
                          + ("; flat for a big tx" if wl == "bigtx" else "") + " |")
    for ds in datasets:
        st = runs.get((ds, "start", "pgseam-null"))
        if st:
            print(f"| {ds} | start to streaming (no_data, idle server) | {spread([r['secs'] for r in st], lambda v: f'{v:.2f}')} s | | | ≤ 1 s |")
    lat = runs.get(("bench", "latency", "pgseam-broker"))
    if lat:
        p99 = [int(r["note"].split("p99_ms=")[1].split()[0]) for r in lat if "p99_ms=" in r["note"]]
        p50 = [int(r["note"].split("p50_ms=")[1].split()[0]) for r in lat if "p50_ms=" in r["note"]]
        if p99:
            print(f"| bench | latency commit → produce, p50 / p99 | {statistics.median(p50)} / {statistics.median(p99)} ms | | | p99 ≤ 50 ms |")

    print("\n#### All measurements: median (min–max) over the repetitions\n")
    print("| dataset | workload | consumer | reps | events | rows/s | MB/s | CPU-s per M events | peak RSS MB | notes |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    order = {"snapshot": 0, "backlog": 1, "bigtx": 2, "sinklimit": 3, "latency": 4, "start": 5}
    for (ds, wl, consumer), rs in sorted(runs.items(), key=lambda kv: (datasets.index(kv[0][0]), order.get(kv[0][1], 9), kv[0][2])):
        rates = [rate(r) for r in rs]
        size = sizes.get(ds)
        mbs = spread([x * size / 1e6 for x in rates], lambda v: f"{v:.1f}") if size else "–"
        cpu = spread([r["cpu"] / r["events"] * 1e6 if r["events"] else 0 for r in rs], lambda v: f"{v:.1f}")
        rss = spread([r["rss_kb"] / 1024 for r in rs], lambda v: f"{v:.0f}")
        notes = summarise_notes([r["note"] for r in rs])
        if wl == "start":
            cpu = "–"
        if wl in ("latency", "start"):
            rates_s = mbs = "–"
        else:
            rates_s = spread(rates, num)
        print(f"| {ds} | {wl} | {consumer} | {len(rs)} | {rs[0]['events']:,} | {rates_s} | {mbs} | {cpu} | {rss} | {notes} |")
    if sizes:
        print("\nMean record size (key + value bytes of pgseam's schemaless records): "
              + ", ".join(f"{ds} {s:,.0f} B" for ds, s in sizes.items()))


if __name__ == "__main__":
    main()
