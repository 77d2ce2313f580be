"""deeptime side of the kinetics benchmark (issue 7). Writes the inputs, times deeptime on them,
and prints one line per task; `cargo run --release -p boltzflow-kinetics --example kinetics_bench
-- DIR` times boltzflow on the same files.

    python3 bench/peers/kinetics_deeptime.py /tmp/bench_kin

Tasks: TICA (lag 10) on 10^6 frames x 50 features; k-means k = 100 on 10^6 x 2 (k-means++ then
10 Lloyd iterations, tolerance 0, so both do the same work); reversible MLE MSM (lag 10) on 10^6
discrete frames over 1000 states, plus its counting.
"""
import os
import sys
import time

import deeptime
import numpy as np
from deeptime.clustering import KMeans
from deeptime.decomposition import TICA
from deeptime.markov import TransitionCountEstimator
from deeptime.markov.msm import MaximumLikelihoodMSM

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench_kin"
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1)


def best(f, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


# inputs (AR(1) features; a random walk on a ring of 1000 states)
if not os.path.exists(os.path.join(out, "feat.npy")):
    n, d = 1_000_000, 50
    x = np.empty((n, d))
    x[0] = rng.normal(size=d)
    a = np.linspace(0.5, 0.999, d)
    noise = rng.normal(size=(n, d))
    for t in range(1, n):
        x[t] = a * x[t - 1] + noise[t]
    np.save(os.path.join(out, "feat.npy"), x)
    np.save(os.path.join(out, "xy.npy"), np.ascontiguousarray(x[:, :2]))
    steps = rng.integers(-3, 4, size=1_000_000)
    np.save(os.path.join(out, "dtraj.npy"), (np.cumsum(steps) % 1000).astype(np.int64))

feat = np.load(os.path.join(out, "feat.npy"))
xy = np.load(os.path.join(out, "xy.npy"))
dtraj = np.load(os.path.join(out, "dtraj.npy"))
print(f"deeptime {deeptime.__version__}, numpy {np.__version__}, threads: default")

t = best(lambda: TICA(lagtime=10).fit(feat).fetch_model())
print(f"tica_1e6x50 {t:.4f} s")
t = best(lambda: KMeans(n_clusters=100, max_iter=10, tolerance=0.0, fixed_seed=1, n_jobs=2).fit(xy).fetch_model())
print(f"kmeans_1e6x2_k100_10iter {t:.4f} s")


def msm():
    counts = TransitionCountEstimator(lagtime=10, count_mode="sliding").fit(dtraj).fetch_model().submodel_largest()
    return MaximumLikelihoodMSM(reversible=True).fit(counts).fetch_model()


t = best(msm)
print(f"msm_1e6_1000states {t:.4f} s")
t = best(lambda: TransitionCountEstimator(lagtime=10, count_mode="sliding").fit(dtraj).fetch_model())
print(f"counting_1e6 {t:.4f} s")
