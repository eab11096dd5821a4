#!/usr/bin/env python3
"""Medians of bench-compare.sh's results per broker and scenario, with EventBroker/nchan ratios (markdown)."""
import json
import statistics
import sys


def per_unit(result, key, rate):
    """The bench's CPU time per unit; results written before it reported one estimate it from CPU % and the rate."""
    if result.get(key) is not None:
        return result[key]
    return result["brokerCPUPercent"] / 100 / result[rate] * 1e6


# scenario -> [(label, extractor, better)]
METRICS = {
    "latency": [
        ("p50 latency (ms)", lambda r: r["latencyMs"]["p50"], "lower"),
        ("p99 latency (ms)", lambda r: r["latencyMs"]["p99"], "lower"),
        ("p99.9 latency (ms)", lambda r: r["latencyMs"]["p999"], "lower"),
        ("deliveries/s", lambda r: r["deliveriesPerSecond"], "higher"),
    ],
    "throughput": [
        ("deliveries/s", lambda r: r["deliveriesPerSecond"], "higher"),
        ("p99 latency (ms)", lambda r: r["latencyMs"]["p99"], "lower"),
        ("broker CPU %", lambda r: r["brokerCPUPercent"], "lower"),
        # Efficiency, however busy the machine was: the broker's CPU time per delivery.
        ("broker CPU µs per delivery", lambda r: per_unit(r, "brokerCPUMicrosPerDelivery", "deliveriesPerSecond"), "lower"),
    ],
    "idle": [
        ("bytes per idle connection", lambda r: r["bytesPerSubscriber"], "lower"),
        ("broker RSS (MiB)", lambda r: r["brokerRSSBytes"] / 1048576, "lower"),
    ],
    "publish": [
        ("publishes/s", lambda r: r["publishesPerSecond"], "higher"),
        ("broker CPU %", lambda r: r["brokerCPUPercent"], "lower"),
        ("broker CPU µs per publish", lambda r: per_unit(r, "brokerCPUMicrosPerPublish", "publishesPerSecond"), "lower"),
    ],
}


def main(path):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    values = {}
    by_round = {}
    lost = {}
    for run in runs:
        result = run["result"]
        if not result:
            continue
        key = (run["broker"], run["scenario"])
        lost[key] = lost.get(key, 0) + result.get("lost", 0) + result.get("duplicates", 0) + \
            max(0, result.get("subscribers", 0) - result.get("connected", 0))
        for label, extract, _ in METRICS.get(run["scenario"], []):
            try:
                value = extract(result)
            except (KeyError, TypeError, ZeroDivisionError):
                continue
            if value is not None:
                values.setdefault(key + (label,), []).append(value)
                by_round[key + (label, run["round"])] = value
    rounds = max((run["round"] for run in runs), default=0)
    print(f"Medians of {rounds} round(s). Ratio = EventBroker / nchan: of the medians, and the median of each round's")
    print("ratio (paired: the two runs of a round are seconds apart, so a drift in the machine's speed cancels).\n")
    print("| scenario | metric | EventBroker | nchan | ratio | paired ratio | better |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for scenario, metrics in METRICS.items():
        for label, _, better in metrics:
            ours = values.get(("eventbroker", scenario, label))
            theirs = values.get(("nchan", scenario, label))
            if not ours and not theirs:
                continue
            a = statistics.median(ours) if ours else None
            b = statistics.median(theirs) if theirs else None
            ratio = f"{a / b:.2f}" if a is not None and b else "n/a"
            pairs = [by_round[("eventbroker", scenario, label, r)] / by_round[("nchan", scenario, label, r)]
                     for r in range(1, rounds + 1)
                     if ("eventbroker", scenario, label, r) in by_round and by_round.get(("nchan", scenario, label, r))]
            paired = f"{statistics.median(pairs):.2f}" if pairs else "n/a"
            fmt = lambda v: "n/a" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.2f}")
            print(f"| {scenario} | {label} | {fmt(a)} | {fmt(b)} | {ratio} | {paired} | {better} |")
    print("\nLost, duplicated or unconnected over all rounds:")
    for (broker, scenario), count in sorted(lost.items()):
        print(f"- {broker} {scenario}: {count}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench-results/latest.jsonl")
