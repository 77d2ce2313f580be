"""JAX (jit, XLA CPU) peer of `cargo run --release -p boltzflow-learn --example bg_throughput`.

Same models, energies and work per step as bench/peers/bg_torch.py (see its docstring); the
whole training step (sampling z, flow, energy, gradient through the energy, Adam) and the whole
sampling function are each one jitted XLA computation. Energies in float64 like boltzflow's.

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2" \
        taskset -c 0,1 python3 bench/peers/bg_jax.py [SECONDS]
"""
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

F32 = jnp.float32


def mueller(x, k=0.1):
    A = (-200.0, -100.0, -170.0, 15.0)
    a = (-1.0, -1.0, -6.5, 0.7)
    b = (0.0, 0.0, 11.0, 0.6)
    c = (-10.0, -10.0, -6.5, 0.7)
    X = (1.0, 0.0, -0.5, -1.0)
    Y = (0.0, 0.5, 1.5, 1.0)
    e = 0.0
    for j in range(4):
        dx, dy = x[:, 0] - X[j], x[:, 1] - Y[j]
        e = e + A[j] * jnp.exp(a[j] * dx * dx + b[j] * dx * dy + c[j] * dy * dy)
    return k * e


N_PART = 38
_iu = np.triu_indices(N_PART, 1)
_keep = ~((_iu[0] == 0) & (_iu[1] == 1))
I_IDX, J_IDX = _iu[0][_keep], _iu[1][_keep]


def dimer_bath(x, slope=-0.5):
    p = x.reshape(-1, N_PART, 2)
    d = jnp.linalg.norm(p[:, 0] - p[:, 1], axis=-1)
    u = 2.0 * (d - 1.5)
    e = 20.0 * ((p[:, 0, 0] + p[:, 1, 0]) ** 2 + p[:, 0, 1] ** 2 + p[:, 1, 1] ** 2)
    e = e + slope * u - 25.0 * u**2 + 10.0 * u**4
    r2 = ((p[:, I_IDX] - p[:, J_IDX]) ** 2).sum(-1)
    e = e + ((1.1**2 / r2) ** 6).sum(-1)
    out = jnp.maximum(jnp.abs(x) - 3.0, 0.0)
    return e + 200.0 * (out**2).sum(-1)


def init(d, hidden):
    params = []
    half = d // 2
    for i in range(8):
        nc = half if i % 2 == 0 else d - half
        nt = d - nc
        shapes = [(nc, hidden), (hidden,), (hidden, hidden), (hidden,), (hidden, 2 * nt), (2 * nt,)]
        params.append([F32(0.01) * jnp.sin(jnp.arange(int(np.prod(s)), dtype=F32) * 0.618).reshape(s) for s in shapes])
    return params


def flow(params, z, d):
    half = d // 2
    ld = jnp.zeros(z.shape[0], F32)
    for i, (w0, b0, w1, b1, w2, b2) in enumerate(params):
        if i % 2 == 0:
            cond, tr = z[:, :half], z[:, half:]
        else:
            cond, tr = z[:, half:], z[:, :half]
        h = jnp.tanh(cond @ w0 + b0)
        h = jnp.tanh(h @ w1 + b1)
        h = h @ w2 + b2
        nt = tr.shape[1]
        s = 2.0 * jnp.tanh(h[:, :nt] / 2.0)
        tr = tr * jnp.exp(s) + h[:, nt:]
        z = jnp.concatenate([cond, tr], 1) if i % 2 == 0 else jnp.concatenate([tr, cond], 1)
        ld = ld + s.sum(-1)
    return z, ld


def linlogcut(u, high=1e3, maximum=1e6):
    u = jnp.where(u < high, u, high + jnp.log1p(jnp.maximum(u - high, 0.0)))
    return jnp.minimum(u, maximum)


def bench(name, energy, d, hidden, seconds, batch=1024):
    params = init(d, hidden)
    lr, b1, b2, eps = 1e-4, 0.9, 0.999, 1e-8
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)

    def loss(p, z):
        x, ld = flow(p, z, d)
        return (linlogcut(energy(x.astype(jnp.float64))).astype(F32) - ld).mean()

    @jax.jit
    def step(p, m, v, t, key):
        key, sub = jax.random.split(key)
        z = jax.random.normal(sub, (batch, d), F32)
        g = jax.grad(loss)(p, z)
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1**t, 1 - b2**t
        p = jax.tree_util.tree_map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), p, m, v)
        return p, m, v, key

    @jax.jit
    def sample(p, key):
        key, sub = jax.random.split(key)
        z = jax.random.normal(sub, (batch, d), F32)
        x, ld = flow(p, z, d)
        u = energy(x.astype(jnp.float64))
        return (-u + 0.5 * (z.astype(jnp.float64) ** 2).sum(-1) + ld).sum(), key

    state = [params, m, v, jax.random.PRNGKey(0)]
    t = [1.0]

    def run_step():
        p, m_, v_, k = step(state[0], state[1], state[2], t[0], state[3])
        jax.block_until_ready(p)
        state[:] = [p, m_, v_, k]
        t[0] += 1

    key = [jax.random.PRNGKey(1)]

    def run_sample():
        s, key[0] = sample(state[0], key[0])
        s.block_until_ready()

    def measure(f):
        f()
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < seconds:
            f()
            n += 1
        return n / (time.perf_counter() - t0)

    steps = measure(run_step)
    samples = measure(run_sample) * batch
    macs = 8 * ((d - d // 2) * hidden + hidden * hidden + hidden * 2 * (d // 2))
    print(f"{name:<11} d={d:<3} 2×{hidden:<4} batch {batch}: {steps:8.1f} KL steps/s "
          f"({steps * 6 * macs * batch * 1e-9:6.1f} GFLOP/s)   {samples:10.0f} samples/s with log-weights")


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    print(f"jax {jax.__version__}, devices {jax.devices()}")
    bench("dimer-bath", dimer_bath, 76, 256, seconds)
    bench("mueller", mueller, 2, 64, seconds)
