"""PyTorch eager peer of `cargo run --release -p boltzflow-learn --example ala2_flow_throughput`.

One maximum-likelihood training step of the alanine-dipeptide generator of
`examples/ala2_bg.toml`, built the same way on both sides (bench/README.md):

- 60 internal coordinates; 5 of them free torsions on the circle (the y indices of the free
  torsions of the vacuum example: 11, 17, 26, 44, 53), the other 55 standardised.
- 12 coupling layers in cycles of four: two over the torsions (halves of the 5, transformed with
  circular rational-quadratic splines, 8 bins on [-pi, pi], the two end derivatives shared: 3K
  raw numbers per coordinate), two over the other 55 (halves, affine with log-scale
  2*tanh(s/2)); each conditioner an MLP [features, 128, 128, outputs] with tanh, where a
  periodic conditioning coordinate enters as (sin, cos).
- Prior: N(0, 1) on the 55, uniform on the torus for the 5.
- A training step: a batch of 512 rows through the inverse flow (data -> latent, the spline
  inverse solves its quadratic), NLL = -log p(z) - log|det|, backward, Adam.

    OMP_NUM_THREADS=2 python3 bench/peers/ala2_flow_torch.py [SECONDS]
"""
import math
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
DIM = 60
PERIODIC = [11, 17, 26, 44, 53]
HIDDEN = 128
BINS = 8
BATCH = 512
MIN_BIN = 1e-3
MIN_DERIV = 1e-3


def halves(idx):
    k = len(idx) // 2
    return idx[:k], idx[k:]


def rq_spline_inverse(y, w_raw, h_raw, d_raw, bound):
    """Inverse of the circular RQ spline on [-bound, bound] (Durkan et al. 2019, eq. 6 inverted).

    y [n, m]; w_raw, h_raw [n, m, K]; d_raw [n, m, K] (K-1 interior derivatives + the shared end
    derivative). Returns x and log|dx/dy|.
    """
    k = w_raw.shape[-1]
    w = MIN_BIN + (1 - MIN_BIN * k) * torch.softmax(w_raw, -1)
    h = MIN_BIN + (1 - MIN_BIN * k) * torch.softmax(h_raw, -1)
    cw = F.pad(torch.cumsum(w, -1), (1, 0)) * 2 * bound - bound
    ch = F.pad(torch.cumsum(h, -1), (1, 0)) * 2 * bound - bound
    d = MIN_DERIV + F.softplus(d_raw + math.log(math.e - 1))
    # Knot derivatives: the shared end value at both ends, the K-1 interior ones between.
    d = torch.cat([d[..., -1:], d[..., :-1], d[..., -1:]], -1)
    idx = torch.searchsorted(ch[..., 1:-1].contiguous(), y.unsqueeze(-1)).clamp(0, k - 1)
    take = lambda t: t.gather(-1, idx).squeeze(-1)
    x_k, x_k1 = take(cw), take(cw[..., 1:])
    y_k, y_k1 = take(ch), take(ch[..., 1:])
    d_k, d_k1 = take(d), take(d[..., 1:])
    wk, hk = x_k1 - x_k, y_k1 - y_k
    s = hk / wk
    dy = y - y_k
    a = hk * (s - d_k) + dy * (d_k1 + d_k - 2 * s)
    b = hk * d_k - dy * (d_k1 + d_k - 2 * s)
    c = -s * dy
    disc = (b * b - 4 * a * c).clamp_min(0)
    xi = 2 * c / (-b - torch.sqrt(disc))
    x = xi * wk + x_k
    t = xi * (1 - xi)
    den = s + (d_k1 + d_k - 2 * s) * t
    deriv = s * s * (d_k1 * xi * xi + 2 * s * t + d_k * (1 - xi) ** 2) / (den * den)
    return x, -torch.log(deriv)


class Coupling(torch.nn.Module):
    def __init__(self, trans, periodic_set, circular):
        super().__init__()
        self.trans = torch.tensor(trans)
        cond = [i for i in range(DIM) if i not in trans]
        self.cond_flat = torch.tensor([c for c in cond if c not in periodic_set], dtype=torch.long)
        self.cond_per = torch.tensor([c for c in cond if c in periodic_set], dtype=torch.long)
        features = len(cond) + len(self.cond_per)
        self.circular = circular
        per = 3 * BINS if circular else 2
        self.per = per
        self.net = torch.nn.Sequential(
            torch.nn.Linear(features, HIDDEN), torch.nn.Tanh(),
            torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.Tanh(),
            torch.nn.Linear(HIDDEN, len(trans) * per),
        )

    def inverse(self, x):
        c = x[:, self.cond_flat]
        p = x[:, self.cond_per]
        h = self.net(torch.cat([c, torch.sin(p), torch.cos(p)], 1))
        h = h.view(x.shape[0], len(self.trans), self.per)
        y = x[:, self.trans]
        if self.circular:
            z, ld = rq_spline_inverse(y, h[..., :BINS], h[..., BINS:2 * BINS], h[..., 2 * BINS:], math.pi)
        else:
            s = 2 * torch.tanh(h[..., 1] / 2)
            z = (y - h[..., 0]) * torch.exp(-s)
            ld = -s
        out = x.clone()
        out[:, self.trans] = z
        return out, ld.sum(1)


class Flow(torch.nn.Module):
    def __init__(self):
        super().__init__()
        tors = PERIODIC
        others = [i for i in range(DIM) if i not in PERIODIC]
        layers = []
        for i in range(12):
            circular = i % 4 < 2
            first, second = halves(tors if circular else others)
            layers.append(Coupling(second if i % 2 == 0 else first, set(PERIODIC), circular))
        self.layers = torch.nn.ModuleList(layers)
        self.gauss = torch.tensor([i not in PERIODIC for i in range(DIM)])

    def nll(self, x):
        ld = torch.zeros(x.shape[0])
        for layer in reversed(self.layers):
            x, l = layer.inverse(x)
            ld = ld + l
        zg = x[:, self.gauss]
        log_p = -0.5 * (zg * zg).sum(1) - 0.5 * zg.shape[1] * math.log(2 * math.pi)
        log_p = log_p - len(PERIODIC) * math.log(2 * math.pi)
        return -(log_p + ld).mean()


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    torch.manual_seed(1)
    flow = Flow()
    with torch.no_grad():
        for p in flow.parameters():
            p.mul_(0.1)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-4)
    x = torch.randn(BATCH, DIM)
    x[:, PERIODIC] = (torch.rand(BATCH, len(PERIODIC)) * 2 - 1) * math.pi * 0.99

    def step():
        opt.zero_grad()
        loss = flow.nll(x)
        loss.backward()
        opt.step()
        return loss

    step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        loss = step()
        n += 1
    rate = n / (time.perf_counter() - t0)
    params = sum(p.numel() for p in flow.parameters())
    print(f"torch {torch.__version__}: ala2 flow ({params} parameters), ML steps/s (batch {BATCH}): {rate:.2f}  loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
