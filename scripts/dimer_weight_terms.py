"""Where a dimer-bath generator's log-weight spread comes from (docs/bg/README.md).

Reads RUN/samples.npy and RUN/log_weights.npy (written by `boltzflow evaluate RUN`) and
RUN/data.npy, recomputes the dimer-bath energy terms of DESIGN §6 per sample (dimer, solvent
repulsion, walls) and prints their distributions next to the equilibrium data's, with the
log-weight spread of the clash-free half. Needs numpy only.

    python3 scripts/dimer_weight_terms.py runs/dimer
"""
import sys

import numpy as np


def terms(x):
    """Dimer, repulsion and wall energies (kT) of rows x [n, 76]."""
    n = x.shape[0]
    p = x.reshape(n, -1, 2)
    d = np.linalg.norm(p[:, 1] - p[:, 0], axis=1)
    u = 2 * (d - 1.5)
    dimer = 20 * ((p[:, 0, 0] + p[:, 1, 0]) ** 2 + p[:, 0, 1] ** 2 + p[:, 1, 1] ** 2)
    dimer += -0.5 * u - 25 * u**2 + 10 * u**4
    rep = np.zeros(n)
    for i in range(p.shape[1]):
        for j in range(i + 1, p.shape[1]):
            if (i, j) != (0, 1):
                rep += (1.1 / np.linalg.norm(p[:, i] - p[:, j], axis=1)) ** 12
    walls = 200 * (np.clip(np.abs(p) - 3, 0, None) ** 2).sum(axis=(1, 2))
    return d, dimer, rep, walls


def main(run):
    x = np.load(f"{run}/samples.npy")
    lw = np.load(f"{run}/log_weights.npy")[: x.shape[0]]
    d, dimer, rep, walls = terms(x)
    w = np.exp(lw - lw.max())
    w /= w.sum()
    print(f"{x.shape[0]} generated samples: ESS fraction {1 / np.sum(w**2) / x.shape[0]:.2e}, s.d. log w {lw.std():.3g}")
    q = lambda v: np.round(np.quantile(v, [0.5, 0.99, 0.999]), 1)
    print(f"  E_rep median/99%/99.9% {q(rep)}, E_walls mean {walls.mean():.2f}, E_dimer mean {dimer.mean():.2f}")
    calm = rep < np.median(rep)
    print(f"  s.d. log w: E_rep below its median {lw[calm].std():.2f}, above {lw[~calm].std():.3g}")
    top = np.argsort(lw)[::-1][:10]
    print(f"  ten largest weights: shares {np.round(w[top], 3)}, d {np.round(d[top], 2)}")
    data = np.load(f"{run}/data.npy")
    rows = np.random.default_rng(0).choice(data.shape[0], min(data.shape[0], 20000), replace=False)
    _, dimer_d, rep_d, walls_d = terms(data[rows])
    print(f"data ({rows.size} frames): E_rep median/99%/99.9% {q(rep_d)}, E_walls mean {walls_d.mean():.2f}, E_dimer mean {dimer_d.mean():.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
