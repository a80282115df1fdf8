"""Paired differences between two rows of a `keras-imbalance compare` output folder.

`compare` reads every row against erm, its reference baseline and its
method's default row; two variant rows (e.g. "gamo[loss=cross_entropy]" and
"gamo[generator_columns=all,loss=cross_entropy]") are read against each other
here, with the same statistics (`statistics.paired_difference`, 95 % t
interval, paired t-test) over the seeds both rows have.

    python benchmarks/paired_rows.py /tmp/readings-digits "gamo[loss=cross_entropy]" \\
        "gamo[generator_columns=all,loss=cross_entropy]"
"""

import argparse
import glob
import json
import os

import numpy as np

from keras_imbalance import statistics
from keras_imbalance.compare import METRIC_KEYS, METRIC_NAMES


def seed_reports(out, row):
    """{seed: report} of one row's runs in a compare folder."""
    files = glob.glob(os.path.join(glob.escape(os.path.join(out, "runs", row)), "seed_*.json"))
    if not files:
        raise SystemExit(f"no runs of {row!r} in {out}/runs")
    reports = {}
    for path in files:
        with open(path) as f:
            run = json.load(f)
        reports[int(run["seed"])] = run["report"]
    return reports


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="a compare --out folder")
    p.add_argument("row", help="the row whose gain is measured")
    p.add_argument("reference", help="the row it is read against")
    args = p.parse_args(argv)
    a, b = seed_reports(args.out, args.row), seed_reports(args.out, args.reference)
    seeds = sorted(set(a) & set(b))
    print(f"seeds {seeds}; mean +- std (population) over them")
    print("| row | " + " | ".join(METRIC_NAMES[k] for k in METRIC_KEYS) + " |")
    print("|" + " --- |" * (len(METRIC_KEYS) + 1))
    for name, reports in ((args.reference, b), (args.row, a)):
        cells = [f"{np.mean([reports[s][k] for s in seeds]):.4f} +- {np.std([reports[s][k] for s in seeds]):.4f}"
                 for k in METRIC_KEYS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n{args.row} - {args.reference}")
    print("| metric | mean difference [95 % interval], p | verdict |")
    print("| --- | --- | --- |")
    for key in METRIC_KEYS:
        d = statistics.paired_difference([a[s][key] for s in seeds], [b[s][key] for s in seeds])
        cell = f"{d['mean']:+.4f}" if d["ci_low"] is None else (
            f"{d['mean']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], p={d['p_value']:.3f}")
        print(f"| {METRIC_NAMES[key]} | {cell} | {statistics.verdict(d)} |")


if __name__ == "__main__":
    main()
