#!/usr/bin/env python3
"""Markdown tables of a `boltzflow sweep` metrics.csv: per latent dimension, one row per
decoder and β with the mean ± standard error over the replicates (active dimensions per
replicate). Standard library only.

    python3 scripts/vae_sweep_table.py runs/vae_mueller/metrics.csv [--title Müller]
"""

import argparse
import csv
import math
from collections import OrderedDict

COLUMNS = [
    ("loss_recon", "recon", "{:.3f}"),
    ("loss_kl", "KL", "{:.3f}"),
    ("jd_encode", "JD_encode", "{:.3g}"),
    ("jd_prior", "JD_prior", "{:.3g}"),
    ("total_correlation", "TC", "{:.3f}"),
    ("f_acc", "f_acc", "{:.3f}"),
]


def mean_se(values):
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return None
    m = sum(v) / len(v)
    if len(v) < 2:
        return m, float("nan")
    var = sum((x - m) ** 2 for x in v) / (len(v) - 1)
    return m, math.sqrt(var / len(v))


def fmt(pair, f):
    if pair is None:
        return "–"
    m, se = pair

    def one(v):
        t = f.format(v)
        # A tiny negative estimate rounds to "-0.000": print it as 0.
        return t[1:] if t.startswith("-") and float(t) == 0.0 else t

    if math.isnan(se):
        return one(m)
    return f"{one(m)} ± {one(se)}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--title", default="")
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.csv)))
    groups = OrderedDict()
    for r in rows:
        key = (int(r["latent_dim"]), r["decoder"], float(r["beta"]))
        groups.setdefault(key, []).append(r)
    for k in sorted({key[0] for key in groups}):
        print(f"\n### {args.title} latent dimension {k}\n".replace("  ", " "))
        head = ["decoder", "β"] + [c[1] for c in COLUMNS] + ["active (per replicate)"]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for (kk, dec, beta), rs in groups.items():
            if kk != k:
                continue
            rs = sorted(rs, key=lambda r: int(r["replicate"]))
            cells = [dec, f"{beta:g}"]
            for col, _, f in COLUMNS:
                cells.append(fmt(mean_se([float(r[col]) for r in rs]), f))
            cells.append("/".join(r["active_dims"] for r in rs))
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
