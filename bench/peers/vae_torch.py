"""PyTorch eager peer of `cargo run --release -p boltzflow-learn --example vae_throughput`.

The same model and the same work (bench/README.md, VAE section): the Mueller model of Monroe &
Shen 2022 on d = 2 with a 1D latent. Encoder 2 -> 50 -> 50 -> 2 (ReLU, mean and log-variance),
decoder 1 -> 50 -> 50 -> d or 2d (tanh), flow prior N(0, 1) through 4 rational-quadratic spline
blocks (32 bins on [-10, 10], linear tails; for a 1D latent each block's 95 spline parameters come
from a constant input through one hidden layer of 20 tanh units). The autoregressive decoders add
a conditional MADE over [x, z] (2 masked layers: one hidden layer of 50, tanh): shifts of the means and
log-variances (`autoregressive`) or the spline parameters of a masked autoregressive flow on x
(`flow`). Loss = -ln p(x|z) + beta (ln q(z|x) - ln P(z)), one reparameterised sample, Adam 1e-4,
batch 200, one epoch = 10^5 points (500 steps). VAE-MC: 1000 walkers, the Monroe & Shen (JCTC
2022) move (encode, prior draw, decode, encode the proposal), energies of N((-3, -3), I).

    OMP_NUM_THREADS=2 python3 bench/peers/vae_torch.py [EPOCHS] [cpu|cuda]
"""
import math
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
DEVICE = torch.device(sys.argv[2] if len(sys.argv) > 2 else "cpu")
BINS, BOUND, MIN_BIN, MIN_D = 32, 10.0, 1e-3, 1e-3
SHIFT = math.log(math.expm1(1.0 - MIN_D))
LN2PI = math.log(2 * math.pi)


def knots(raw, bound):
    """Knot positions, heights and derivatives of RQ splines from raw [..., 3K-1]."""
    k = BINS
    w = MIN_BIN + (1 - MIN_BIN * k) * torch.softmax(raw[..., :k], -1)
    h = MIN_BIN + (1 - MIN_BIN * k) * torch.softmax(raw[..., k:2 * k], -1)
    cw = F.pad(torch.cumsum(w, -1), (1, 0)) * 2 * bound - bound
    ch = F.pad(torch.cumsum(h, -1), (1, 0)) * 2 * bound - bound
    d = MIN_D + F.softplus(raw[..., 2 * k:] + SHIFT)
    d = F.pad(d, (1, 1), value=1.0)
    return cw, ch, d


def rq_spline(v, raw, inverse, bound=BOUND):
    """Forward (x -> y) or inverse (y -> x) spline of v [N] with raw [N, 3K-1]; identity outside
    [-B, B]. Returns the output and the log-derivative of the map that ran."""
    inside = (v > -bound) & (v < bound)
    vc = v.clamp(-bound + 1e-6, bound - 1e-6)
    cw, ch, d = knots(raw, bound)
    grid = ch if inverse else cw
    b = torch.searchsorted(grid[..., 1:-1].contiguous(), vc.unsqueeze(-1)).squeeze(-1)
    g = lambda t: t.gather(-1, b.unsqueeze(-1)).squeeze(-1)
    g1 = lambda t: t.gather(-1, (b + 1).unsqueeze(-1)).squeeze(-1)
    xk, wk, yk, hk = g(cw), g1(cw) - g(cw), g(ch), g1(ch) - g(ch)
    dk, dk1 = g(d), g1(d)
    s = hk / wk
    if inverse:
        dy = vc - yk
        a = hk * (s - dk) + dy * (dk1 + dk - 2 * s)
        bq = hk * dk - dy * (dk1 + dk - 2 * s)
        c = -s * dy
        disc = (bq * bq - 4 * a * c).clamp(min=0)
        xi = (2 * c) / (-bq - disc.sqrt())
        out = xk + xi * wk
    else:
        xi = (vc - xk) / wk
    om = xi * (1 - xi)
    den = s + (dk1 + dk - 2 * s) * om
    logd = 2 * torch.log(s) + torch.log(dk1 * xi ** 2 + 2 * s * om + dk * (1 - xi) ** 2) - 2 * torch.log(den)
    if not inverse:
        out = yk + hk * (s * xi ** 2 + dk * om) / den
    else:
        logd = -logd
    return torch.where(inside, out, v), torch.where(inside, logd, torch.zeros_like(v))


def mlp(sizes, act):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(act())
    return torch.nn.Sequential(*layers)


class MaskedLinear(torch.nn.Linear):
    def __init__(self, fan_in, fan_out, mask):
        super().__init__(fan_in, fan_out)
        self.register_buffer("mask", mask.float())

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


def cond_made(n, context, per_site, width):
    """Conditional MADE over n ordered variables with `context` inputs seen by every unit."""
    deg_in = torch.cat([torch.arange(n), torch.full((context,), -1)])
    deg_h = torch.arange(width) % n - 1
    deg_out = torch.arange(per_site * n) % n
    m1 = deg_h[:, None] >= deg_in[None, :]
    m2 = deg_out[:, None] > deg_h[None, :]
    return torch.nn.Sequential(
        MaskedLinear(n + context, width, m1), torch.nn.Tanh(),
        MaskedLinear(width, per_site * n, m2))


class Vae(torch.nn.Module):
    def __init__(self, decoder, d=2, k=1):
        super().__init__()
        self.decoder, self.d, self.k = decoder, d, k
        self.enc = mlp([d, 50, 50, 2 * k], torch.nn.ReLU)
        self.dec = mlp([k, 50, 50, d if decoder == "mse" else 2 * d], torch.nn.Tanh)
        self.prior = torch.nn.ModuleList([mlp([1, 20, 3 * BINS - 1], torch.nn.Tanh) for _ in range(4)])
        if decoder == "autoregressive":
            self.made = cond_made(d, k, 2, 50)
        elif decoder == "flow":
            self.made = cond_made(d, k, 3 * BINS - 1, 50)

    def log_prior(self, z):
        u, ld = z[:, 0], torch.zeros(z.shape[0], device=z.device)
        one = torch.ones(1, 1, device=z.device)
        for block in reversed(self.prior):
            raw = block(one).expand(z.shape[0], -1)
            u, l = rq_spline(u, raw, inverse=True)
            ld = ld + l
        return -0.5 * u ** 2 - 0.5 * LN2PI + ld

    def prior_sample(self, n):
        u = torch.randn(n, device=DEVICE)
        one = torch.ones(1, 1, device=DEVICE)
        for block in self.prior:
            u, _ = rq_spline(u, block(one).expand(n, -1), inverse=False)
        return u.unsqueeze(-1)

    def log_lik(self, x, z):
        d = self.d
        out = self.dec(z)
        m = out[:, :d]
        lv = torch.zeros_like(m) if self.decoder == "mse" else out[:, d:]
        if self.decoder == "autoregressive":
            sh = self.made(torch.cat([x, z], -1))
            m, lv = m + sh[:, :d], lv + sh[:, d:]
        if self.decoder == "flow":
            raw = self.made(torch.cat([x, z], -1)).view(-1, 3 * BINS - 1, d).transpose(1, 2)
            u, ld = rq_spline(x.reshape(-1), raw.reshape(-1, 3 * BINS - 1), inverse=True)
            u, ld = u.view(-1, d), ld.view(-1, d)
            return (-0.5 * (u - m) ** 2 * torch.exp(-lv) - 0.5 * lv - 0.5 * LN2PI + ld).sum(-1)
        return (-0.5 * (x - m) ** 2 * torch.exp(-lv) - 0.5 * lv - 0.5 * LN2PI).sum(-1)

    def encode(self, x):
        out = self.enc(x)
        return out[:, :self.k], out[:, self.k:]

    def loss(self, x, beta):
        mu, lv = self.encode(x)
        eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * lv) * eps
        log_q = (-0.5 * eps ** 2 - 0.5 * lv - 0.5 * LN2PI).sum(-1)
        kl = log_q - self.log_prior(z)
        recon = -self.log_lik(x, z)
        return (recon + beta * kl).mean()

    @torch.no_grad()
    def sample_x(self, z):
        d = self.d
        out = self.dec(z)
        m = out[:, :d]
        lv = torch.zeros_like(m) if self.decoder == "mse" else out[:, d:].clone()
        if self.decoder == "mse" or self.decoder == "cond-indep":
            x = m + torch.exp(0.5 * lv) * torch.randn_like(m)
            return x
        x = torch.zeros_like(m)
        for i in range(d):
            if self.decoder == "autoregressive":
                sh = self.made(torch.cat([x, z], -1))
                x[:, i] = m[:, i] + sh[:, i] + torch.exp(0.5 * (lv[:, i] + sh[:, d + i])) * torch.randn_like(m[:, i])
            else:
                raw = self.made(torch.cat([x, z], -1)).view(-1, 3 * BINS - 1, d)[:, :, i]
                u = m[:, i] + torch.exp(0.5 * lv[:, i]) * torch.randn_like(m[:, i])
                x[:, i], _ = rq_spline(u, raw, inverse=False)
        return x


def energy(x):
    return 0.5 * ((x + 3) ** 2).sum(-1) + LN2PI


@torch.no_grad()
def mc_step(vae, x, u1):
    n = x.shape[0]
    mu1, lv1 = vae.encode(x)
    z1 = mu1 + torch.exp(0.5 * lv1) * torch.randn_like(mu1)
    z2 = vae.prior_sample(n)
    x2 = vae.sample_x(z2)
    mu2, lv2 = vae.encode(x2)
    lq = lambda z, m, lv: (-0.5 * (z - m) ** 2 * torch.exp(-lv) - 0.5 * lv - 0.5 * LN2PI).sum(-1)
    u2 = energy(x2)
    log_a = (-(u2 - u1) + lq(z2, mu2, lv2) - lq(z1, mu1, lv1) + vae.log_prior(z1) - vae.log_prior(z2)
             + vae.log_lik(x, z1) - vae.log_lik(x2, z2))
    acc = torch.log(torch.rand(n, device=x.device)) < log_a
    x = torch.where(acc[:, None], x2, x)
    u1 = torch.where(acc, u2, u1)
    return x, u1, acc.float().mean().item()


def main():
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.manual_seed(0)
    data = (torch.randn(100_000, 2) - 3).to(DEVICE)
    print(f"torch {torch.__version__} on {DEVICE}, threads {torch.get_num_threads()}")
    for decoder in ["mse", "cond-indep", "autoregressive", "flow"]:
        vae = Vae(decoder).to(DEVICE)
        opt = torch.optim.Adam(vae.parameters(), lr=1e-4)
        nparams = sum(p.numel() for p in vae.parameters())

        def epoch():
            perm = torch.randperm(data.shape[0], device=DEVICE)
            for b in range(500):
                xb = data[perm[b * 200:(b + 1) * 200]]
                opt.zero_grad(set_to_none=True)
                vae.loss(xb, 1.0).backward()
                opt.step()

        epoch()  # warm-up
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(epochs):
            epoch()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        epoch_s = (time.perf_counter() - t0) / epochs
        x = data[:1000].clone()
        u1 = energy(x)
        t1 = time.perf_counter()
        acc = 0.0
        steps = 50
        for _ in range(steps):
            x, u1, a = mc_step(vae, x, u1)
            acc += a
        mc_s = time.perf_counter() - t1
        print(f"{decoder:<15} {nparams:>7} params  epoch {epoch_s:7.3f} s  ({epoch_s / 500 * 1e6:6.1f} us/step)  "
              f"VAE-MC {1000 * steps / mc_s:9.0f} moves/s (f_acc {acc / steps:.2f})")


if __name__ == "__main__":
    main()
