"""Peer benchmark: the seed paper's Metropolis protocol on the Mueller potential (k = 0.1,
sigma = 0.1, kT = 1) in vectorised NumPy, one trial per chain per step, as boltzflow runs it.

    pip install numpy==2.*        # the version used is printed
    OMP_NUM_THREADS=2 python3 bench/peers/metropolis_numpy.py --chains 10000 --steps 2000

Prints trials per second. NumPy evaluates each array operation on one core (exp is not
threaded), so this is NumPy's best on this protocol without writing C.
"""
import argparse
import time

import numpy as np

A = np.array([-200.0, -100.0, -170.0, 15.0])
a = np.array([-1.0, -1.0, -6.5, 0.7])
b = np.array([0.0, 0.0, 11.0, 0.6])
c = np.array([-10.0, -10.0, -6.5, 0.7])
X0 = np.array([1.0, 0.0, -0.5, -1.0])
Y0 = np.array([0.0, 0.5, 1.5, 1.0])


def mueller(x, y, k=0.1):
    e = np.zeros_like(x)
    for j in range(4):
        dx = x - X0[j]
        dy = y - Y0[j]
        e += A[j] * np.exp(a[j] * dx * dx + b[j] * dx * dy + c[j] * dy * dy)
    return k * e


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--chains", type=int, default=10_000)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--sigma", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    x = rng.uniform(-2.0, 1.5, args.chains)
    y = rng.uniform(-1.0, 2.5, args.chains)
    e = mueller(x, y)
    accepted = 0
    t0 = time.perf_counter()
    for _ in range(args.steps):
        xp = x + args.sigma * rng.standard_normal(args.chains)
        yp = y + args.sigma * rng.standard_normal(args.chains)
        ep = mueller(xp, yp)
        acc = rng.random(args.chains) < np.exp(-(ep - e))
        x = np.where(acc, xp, x)
        y = np.where(acc, yp, y)
        e = np.where(acc, ep, e)
        accepted += int(acc.sum())
    dt = time.perf_counter() - t0
    trials = args.chains * args.steps
    print(f"numpy {np.__version__}: {trials / dt:.4e} trials/s ({dt:.2f} s, acceptance {accepted / trials:.3f})")


if __name__ == "__main__":
    main()
