"""PyTorch eager peer of `cargo run --release -p boltzflow-learn --example bg_throughput`.

The same models, the same energies and the same work per step (bench/README.md):
RealNVP with 8 affine couplings (alternately transforming the second and the first half of the
coordinates), conditioners MLP [d/2, h, h, d] with tanh, log-scales bounded as 2·tanh(ŝ/2),
prior N(0, I), batch 1024. A training step is the reverse-KL loss mean(u_cut(F(z)) − log|det J|)
with linlogcut (high 1e3, max 1e6), backward, Adam. Sampling draws 1024 configurations and their
log-weights. Energies: dimer-bath (d = 76, forces by autograd) and Müller–Brown (d = 2, k = 0.1).

    OMP_NUM_THREADS=2 python3 bench/peers/bg_torch.py [SECONDS]
"""
import math
import sys
import time

import torch

torch.set_num_threads(2)
DTYPE = torch.float32


def mueller(x, k=0.1):
    A = (-200.0, -100.0, -170.0, 15.0)
    a = (-1.0, -1.0, -6.5, 0.7)
    b = (0.0, 0.0, 11.0, 0.6)
    c = (-10.0, -10.0, -6.5, 0.7)
    X = (1.0, 0.0, -0.5, -1.0)
    Y = (0.0, 0.5, 1.5, 1.0)
    x1, x2 = x[:, 0], x[:, 1]
    e = 0.0
    for j in range(4):
        dx, dy = x1 - X[j], x2 - Y[j]
        e = e + A[j] * torch.exp(a[j] * dx * dx + b[j] * dx * dy + c[j] * dy * dy)
    return k * e


N_PART = 38
IU = torch.triu_indices(N_PART, N_PART, offset=1)
NOT_DIMER = ~((IU[0] == 0) & (IU[1] == 1))
I_IDX, J_IDX = IU[0][NOT_DIMER], IU[1][NOT_DIMER]


def dimer_bath(x, slope=-0.5):
    p = x.view(-1, N_PART, 2)
    d = torch.linalg.norm(p[:, 0] - p[:, 1], dim=-1)
    u = 2.0 * (d - 1.5)
    e = 20.0 * ((p[:, 0, 0] + p[:, 1, 0]) ** 2 + p[:, 0, 1] ** 2 + p[:, 1, 1] ** 2)
    e = e + slope * u - 25.0 * u**2 + 10.0 * u**4
    r2 = ((p[:, I_IDX] - p[:, J_IDX]) ** 2).sum(-1)
    e = e + ((1.1**2 / r2) ** 6).sum(-1)
    out = torch.relu(x.abs() - 3.0)
    return e + 200.0 * (out**2).sum(-1)


class Coupling(torch.nn.Module):
    def __init__(self, d, hidden, transform_second):
        super().__init__()
        half = d // 2
        self.trans = torch.arange(half, d) if transform_second else torch.arange(0, half)
        self.cond = torch.arange(0, half) if transform_second else torch.arange(half, d)
        nt = len(self.trans)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(len(self.cond), hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, 2 * nt))
        self.nt = nt

    def forward(self, z):
        h = self.net(z[:, self.cond])
        s = 2.0 * torch.tanh(h[:, : self.nt] / 2.0)
        t = h[:, self.nt:]
        x = z.clone()
        x[:, self.trans] = z[:, self.trans] * torch.exp(s) + t
        return x, s.sum(-1)


class Flow(torch.nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.layers = torch.nn.ModuleList(Coupling(d, hidden, i % 2 == 0) for i in range(8))
        with torch.no_grad():
            for i, p in enumerate(self.parameters()):
                p.copy_(0.01 * torch.sin(torch.arange(p.numel(), dtype=DTYPE) * 0.618).view_as(p))

    def forward(self, z):
        ld = torch.zeros(z.shape[0])
        for layer in self.layers:
            z, l = layer(z)
            ld = ld + l
        return z, ld


def linlogcut(u, high=1e3, maximum=1e6):
    u = torch.where(u < high, u, high + torch.log1p(torch.clamp(u - high, min=0.0)))
    return torch.clamp(u, max=maximum)


def measure(seconds, f):
    f()
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        f()
        n += 1
    return n / (time.perf_counter() - t0)


def bench(name, energy, d, hidden, seconds, batch=1024):
    flow = Flow(d, hidden)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-4)

    def step():
        z = torch.randn(batch, d)
        x, ld = flow(z)
        loss = (linlogcut(energy(x.double()).float()) - ld).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def sample():
        with torch.no_grad():
            z = torch.randn(batch, d)
            x, ld = flow(z)
            u = energy(x.double())
            logw = -u + 0.5 * (z.double() ** 2).sum(-1) + ld.double()
            return logw.sum().item()

    steps = measure(seconds, step)
    samples = measure(seconds, sample) * batch
    macs = 8 * ((d - d // 2) * hidden + hidden * hidden + hidden * 2 * (d // 2))
    print(f"{name:<11} d={d:<3} 2×{hidden:<4} batch {batch}: {steps:8.1f} KL steps/s "
          f"({steps * 6 * macs * batch * 1e-9:6.1f} GFLOP/s)   {samples:10.0f} samples/s with log-weights")


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    bench("dimer-bath", dimer_bath, 76, 256, seconds)
    bench("mueller", mueller, 2, 64, seconds)
