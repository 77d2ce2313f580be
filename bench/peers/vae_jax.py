"""JAX (jit, XLA CPU) peer of `cargo run --release -p boltzflow-learn --example vae_throughput`.

The same model and work as bench/peers/vae_torch.py (see its docstring): the Mueller VAE of
Monroe & Shen 2022 with the four decoders and the flow prior; one training step (batch gather,
noise, loss, gradient, Adam) is one jitted computation, and so is one VAE-MC move of 1000
walkers. The spline is the same rational-quadratic spline with linear tails.

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2" \
        taskset -c 0,1 python3 bench/peers/vae_jax.py [EPOCHS]
"""
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

BINS, BOUND, MIN_BIN, MIN_D = 32, 10.0, 1e-3, 1e-3
NRAW = 3 * BINS - 1
SHIFT = math.log(math.expm1(1.0 - MIN_D))
LN2PI = math.log(2 * math.pi)


def rq_spline(v, raw, inverse):
    """Spline of v [N] with raw [N, 3K-1]; identity outside [-B, B]."""
    inside = (v > -BOUND) & (v < BOUND)
    vc = jnp.clip(v, -BOUND + 1e-6, BOUND - 1e-6)
    k = BINS
    w = MIN_BIN + (1 - MIN_BIN * k) * jax.nn.softmax(raw[:, :k], -1)
    h = MIN_BIN + (1 - MIN_BIN * k) * jax.nn.softmax(raw[:, k:2 * k], -1)
    cw = jnp.pad(jnp.cumsum(w, -1), ((0, 0), (1, 0))) * 2 * BOUND - BOUND
    ch = jnp.pad(jnp.cumsum(h, -1), ((0, 0), (1, 0))) * 2 * BOUND - BOUND
    d = jnp.pad(MIN_D + jax.nn.softplus(raw[:, 2 * k:] + SHIFT), ((0, 0), (1, 1)), constant_values=1.0)
    grid = ch if inverse else cw
    b = jnp.sum(grid[:, 1:-1] <= vc[:, None], -1)
    g = lambda t, o: jnp.take_along_axis(t, (b + o)[:, None], -1)[:, 0]
    xk, wk, yk, hk = g(cw, 0), g(cw, 1) - g(cw, 0), g(ch, 0), g(ch, 1) - g(ch, 0)
    dk, dk1 = g(d, 0), g(d, 1)
    s = hk / wk
    if inverse:
        dy = vc - yk
        t = dk1 + dk - 2 * s
        a, bq, c = hk * (s - dk) + dy * t, hk * dk - dy * t, -s * dy
        xi = (2 * c) / (-bq - jnp.sqrt(jnp.maximum(bq * bq - 4 * a * c, 0.0)))
        out = xk + xi * wk
    else:
        xi = (vc - xk) / wk
    om = xi * (1 - xi)
    den = s + (dk1 + dk - 2 * s) * om
    logd = 2 * jnp.log(s) + jnp.log(dk1 * xi ** 2 + 2 * s * om + dk * (1 - xi) ** 2) - 2 * jnp.log(den)
    if inverse:
        logd = -logd
    else:
        out = yk + hk * (s * xi ** 2 + dk * om) / den
    return jnp.where(inside, out, v), jnp.where(inside, logd, 0.0)


def dense(key, fan_in, fan_out):
    k1, k2 = jax.random.split(key)
    bound = 1 / math.sqrt(fan_in)
    return {"w": jax.random.uniform(k1, (fan_in, fan_out), jnp.float32, -bound, bound),
            "b": jax.random.uniform(k2, (fan_out,), jnp.float32, -bound, bound)}


def mlp_init(key, sizes):
    keys = jax.random.split(key, len(sizes) - 1)
    return [dense(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def mlp(layers, x, act, masks=None):
    for i, l in enumerate(layers):
        w = l["w"] if masks is None else l["w"] * masks[i]
        x = x @ w + l["b"]
        if i + 1 < len(layers):
            x = act(x)
    return x


def made_masks(n, context, per_site, width):
    deg_in = np.concatenate([np.arange(n), -np.ones(context, int)])
    deg_h = np.arange(width) % n - 1
    deg_out = np.arange(per_site * n) % n
    return [jnp.asarray(deg_h[None, :] >= deg_in[:, None], jnp.float32),
            jnp.asarray(deg_out[None, :] > deg_h[:, None], jnp.float32)]


def build(decoder, key, d=2, k=1):
    ks = jax.random.split(key, 8)
    p = {"enc": mlp_init(ks[0], [d, 50, 50, 2 * k]),
         "dec": mlp_init(ks[1], [k, 50, 50, d if decoder == "mse" else 2 * d]),
         "prior": [mlp_init(ks[2 + i], [1, 20, NRAW]) for i in range(4)]}
    per_site = {"autoregressive": 2, "flow": NRAW}.get(decoder)
    masks = None
    if per_site:
        p["made"] = mlp_init(ks[6], [d + k, 50, per_site * d])
        masks = made_masks(d, k, per_site, 50)
    return p, masks


def make(decoder, masks, d=2, k=1):
    def log_prior(p, z):
        u, ld = z[:, 0], 0.0
        one = jnp.ones((1, 1))
        for block in reversed(p["prior"]):
            raw = jnp.broadcast_to(mlp(block, one, jnp.tanh), (z.shape[0], NRAW))
            u, l = rq_spline(u, raw, True)
            ld = ld + l
        return -0.5 * u ** 2 - 0.5 * LN2PI + ld

    def prior_sample(p, key, n):
        u = jax.random.normal(key, (n,))
        one = jnp.ones((1, 1))
        for block in p["prior"]:
            u, _ = rq_spline(u, jnp.broadcast_to(mlp(block, one, jnp.tanh), (n, NRAW)), False)
        return u[:, None]

    def log_lik(p, x, z):
        out = mlp(p["dec"], z, jnp.tanh)
        m = out[:, :d]
        lv = jnp.zeros_like(m) if decoder == "mse" else out[:, d:]
        if decoder == "autoregressive":
            sh = mlp(p["made"], jnp.concatenate([x, z], -1), jnp.tanh, masks)
            m, lv = m + sh[:, :d], lv + sh[:, d:]
        ld = 0.0
        u = x
        if decoder == "flow":
            raw = mlp(p["made"], jnp.concatenate([x, z], -1), jnp.tanh, masks)
            raw = raw.reshape(-1, NRAW, d).transpose(0, 2, 1).reshape(-1, NRAW)
            u, ld = rq_spline(x.reshape(-1), raw, True)
            u, ld = u.reshape(-1, d), ld.reshape(-1, d)
        return (-0.5 * (u - m) ** 2 * jnp.exp(-lv) - 0.5 * lv - 0.5 * LN2PI + ld).sum(-1)

    def encode(p, x):
        out = mlp(p["enc"], x, jax.nn.relu)
        return out[:, :k], out[:, k:]

    def loss(p, x, eps, beta):
        mu, lv = encode(p, x)
        z = mu + jnp.exp(0.5 * lv) * eps
        log_q = (-0.5 * eps ** 2 - 0.5 * lv - 0.5 * LN2PI).sum(-1)
        return (-log_lik(p, x, z) + beta * (log_q - log_prior(p, z))).mean()

    def sample_x(p, z, key):
        out = mlp(p["dec"], z, jnp.tanh)
        m = out[:, :d]
        lv = jnp.zeros_like(m) if decoder == "mse" else out[:, d:]
        keys = jax.random.split(key, d)
        if decoder in ("mse", "cond-indep"):
            return m + jnp.exp(0.5 * lv) * jax.random.normal(keys[0], m.shape)
        x = jnp.zeros_like(m)
        for i in range(d):
            e = jax.random.normal(keys[i], (m.shape[0],))
            if decoder == "autoregressive":
                sh = mlp(p["made"], jnp.concatenate([x, z], -1), jnp.tanh, masks)
                xi = m[:, i] + sh[:, i] + jnp.exp(0.5 * (lv[:, i] + sh[:, d + i])) * e
            else:
                raw = mlp(p["made"], jnp.concatenate([x, z], -1), jnp.tanh, masks).reshape(-1, NRAW, d)[:, :, i]
                xi, _ = rq_spline(m[:, i] + jnp.exp(0.5 * lv[:, i]) * e, raw, False)
            x = x.at[:, i].set(xi)
        return x

    return log_prior, prior_sample, log_lik, encode, loss, sample_x


def energy(x):
    return 0.5 * ((x + 3) ** 2).sum(-1) + LN2PI


def bench(decoder, data, epochs):
    params, masks = build(decoder, jax.random.PRNGKey(0))
    log_prior, prior_sample, log_lik, encode, loss, sample_x = make(decoder, masks)
    b1, b2, eps_adam, lr = 0.9, 0.999, 1e-8, 1e-4
    tm = jax.tree_util.tree_map

    @jax.jit
    def step(p, m, v, t, key, idx):
        key, sub = jax.random.split(key)
        x = data[idx]
        eps = jax.random.normal(sub, (x.shape[0], 1))
        g = jax.grad(loss)(p, x, eps, 1.0)
        m = tm(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = tm(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        p = tm(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps_adam), p, m, v)
        return p, m, v, key

    @jax.jit
    def mc(p, x, u1, key):
        ks = jax.random.split(key, 5)
        n = x.shape[0]
        mu1, lv1 = encode(p, x)
        z1 = mu1 + jnp.exp(0.5 * lv1) * jax.random.normal(ks[0], mu1.shape)
        z2 = prior_sample(p, ks[1], n)
        x2 = sample_x(p, z2, ks[2])
        mu2, lv2 = encode(p, x2)
        lq = lambda z, m, lv: (-0.5 * (z - m) ** 2 * jnp.exp(-lv) - 0.5 * lv - 0.5 * LN2PI).sum(-1)
        u2 = energy(x2)
        log_a = (-(u2 - u1) + lq(z2, mu2, lv2) - lq(z1, mu1, lv1) + log_prior(p, z1) - log_prior(p, z2)
                 + log_lik(p, x, z1) - log_lik(p, x2, z2))
        acc = jnp.log(jax.random.uniform(ks[3], (n,))) < log_a
        return jnp.where(acc[:, None], x2, x), jnp.where(acc, u2, u1), acc.mean(), ks[4]

    m = tm(jnp.zeros_like, params)
    v = tm(jnp.zeros_like, params)
    key = jax.random.PRNGKey(1)
    rng = np.random.default_rng(0)
    t = 1.0

    def epoch(p, m, v, key, t):
        perm = rng.permutation(data.shape[0])
        for b in range(500):
            p, m, v, key = step(p, m, v, t, key, perm[b * 200:(b + 1) * 200])
            t += 1
        jax.block_until_ready(p)
        return p, m, v, key, t

    params, m, v, key, t = epoch(params, m, v, key, t)  # warm-up and compilation
    t0 = time.perf_counter()
    for _ in range(epochs):
        params, m, v, key, t = epoch(params, m, v, key, t)
    epoch_s = (time.perf_counter() - t0) / epochs
    x = data[:1000]
    u1 = energy(x)
    x, u1, a, key = mc(params, x, u1, key)  # compile
    jax.block_until_ready(x)
    steps, acc = 50, 0.0
    t1 = time.perf_counter()
    for _ in range(steps):
        x, u1, a, key = mc(params, x, u1, key)
        acc += float(a)
    mc_s = time.perf_counter() - t1
    nparams = sum(x.size for x in jax.tree_util.tree_leaves(params))
    print(f"{decoder:<15} {nparams:>7} params  epoch {epoch_s:7.3f} s  ({epoch_s / 500 * 1e6:6.1f} us/step)  "
          f"VAE-MC {1000 * steps / mc_s:9.0f} moves/s (f_acc {acc / steps:.2f})")


if __name__ == "__main__":
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    print(f"jax {jax.__version__}, devices {jax.devices()}")
    data = jax.random.normal(jax.random.PRNGKey(2), (100_000, 2)) - 3.0
    for dec in ["mse", "cond-indep", "autoregressive", "flow"]:
        bench(dec, data, epochs)
