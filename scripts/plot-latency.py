#!/usr/bin/env python3
"""Plots end-to-end latency percentiles of the latency scenario from bench-compare.sh's JSON lines.

    python3 scripts/plot-latency.py bench-results/results-….jsonl docs/latency.png

Each broker's curve is the median over rounds of each percentile. Needs matplotlib (pip install matplotlib).
"""
import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PERCENTILES = [("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100)]
LABELS = {"eventbroker": "EventBroker", "nchan": "nginx + nchan"}


def main(source, target):
    runs = [json.loads(line) for line in open(source) if line.strip()]
    medians = {}
    scenario = {}
    for run in runs:
        if run["scenario"] != "latency" or not run["result"]:
            continue
        for key, _ in PERCENTILES:
            value = run["result"]["latencyMs"].get(key)
            if value is not None:
                medians.setdefault((run["broker"], key), []).append(value)
        scenario = run["result"]
    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=120)
    positions = list(range(len(PERCENTILES)))
    width = 0.38
    for offset, broker in ((-width / 2, "eventbroker"), (width / 2, "nchan")):
        values = [statistics.median(medians.get((broker, key), [0])) for key, _ in PERCENTILES]
        bars = axis.bar([p + offset for p in positions], values, width, label=LABELS[broker])
        for bar, value in zip(bars, values):
            axis.annotate(f"{value:.1f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom", fontsize=8)
    axis.set_xticks(positions, [key for key, _ in PERCENTILES])
    axis.set_ylabel("end-to-end latency (ms)")
    subscribers = scenario.get("subscribers", "?")
    axis.set_title(f"Latency, {subscribers} subscribers on one topic, 100 events/s (median of rounds)")
    axis.legend()
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "docs/latency.png")
