"""OpenMM side of the alanine-dipeptide benchmarks (run beside
`cargo run --release -p boltzflow-systems --example ala2_bench` on the same machine).

1. Energy + forces of a batch of configurations (the 50 reference configurations of
   data/ala2 tiled to N), OpenMM's CPU platform called in a loop: setPositions, then
   getState(getEnergy=True, getForces=True) per configuration, as a user of OpenMM
   evaluates a batch.
2. Langevin MD steps per second (LangevinMiddleIntegrator = BAOAB, 300 K, 1/ps, 1 fs) for
   one molecule, integrator.step(N) with no reporting inside the timed loop.

    OPENMM_CPU_THREADS=2 python3 bench/peers/openmm_ala2.py [N] [CPU|Reference] [ala2|ala2_obc]

The third argument picks the data set: vacuum (default) or OBC implicit solvent.

Versions used for bench/README.md: OpenMM 8.6.1 (PyPI wheel), Python 3.11, numpy 2.4.
"""
import os
import sys
import time

import numpy as np
import openmm
import openmm.unit as u

here = os.path.dirname(os.path.abspath(__file__))
dataset = sys.argv[3] if len(sys.argv) > 3 else "ala2"
data = os.path.join(here, "..", "..", "data", dataset)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
threads = os.environ.get("OPENMM_CPU_THREADS", "2")

xml = "ala2_obc_system.xml" if dataset == "ala2_obc" else "ala2_system.xml"
with open(os.path.join(data, xml)) as f:
    system = openmm.XmlSerializer.deserialize(f.read())
x50 = np.load(os.path.join(data, "positions_nm.npy")).reshape(50, -1, 3)
x = np.stack([x50[i % 50] for i in range(n)])
platform_name = sys.argv[2] if len(sys.argv) > 2 else "CPU"
platform = openmm.Platform.getPlatformByName(platform_name)
props = {"Threads": threads} if platform_name == "CPU" else {}


def best_of(reps, fn):
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


integ = openmm.VerletIntegrator(0.001)
ctx = openmm.Context(system, integ, platform, props)


def batch():
    for xi in x:
        ctx.setPositions(xi)
        st = ctx.getState(getEnergy=True, getForces=True)
        st.getPotentialEnergy()
        st.getForces(asNumpy=True)


t = best_of(5, batch)
print(f"OpenMM {openmm.__version__} {platform_name} ({threads} threads), {dataset}: energy+forces, batch {n} in a loop: "
      f"{t * 1e3:.3f} ms per batch, {t / n * 1e6:.3f} us per configuration")

# Check: OpenMM's CPU platform agrees with the Reference numbers in data/ala2.
ref = np.load(os.path.join(data, "energies_kJmol.npy"))
e = []
for xi in x50:
    ctx.setPositions(xi)
    e.append(ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(u.kilojoule_per_mole))
print(f"  {platform_name} platform vs Reference data: max |dE| = {np.max(np.abs(np.array(e) - ref)):.2e} kJ/mol")

integ2 = openmm.LangevinMiddleIntegrator(300 * u.kelvin, 1 / u.picosecond, 0.001 * u.picoseconds)
integ2.setRandomNumberSeed(1)
ctx2 = openmm.Context(system, integ2, platform, props)
ctx2.setPositions(x50[0])
ctx2.setVelocitiesToTemperature(300 * u.kelvin, 1)
integ2.step(1000)
steps = 100_000
t = best_of(3, lambda: integ2.step(steps))
print(f"  MD (LangevinMiddleIntegrator, 1 fs): {steps / t:.4g} steps/s, "
      f"{steps / t * 0.001 * 86400 / 1000:.1f} ns/day")
