"""PyTorch eager peer of `cargo run --release -p boltzflow-learn --example van_throughput`.

The same model and the same work per training step (bench/README.md, VAN section): a MADE over
n spins with `depth` masked linear layers (hidden width `width`, tanh), logits of
q(s_i = +1 | s_<i), Z2 symmetrisation log q = logaddexp(log q~(s), log q~(-s)) - ln 2, batch 1000.
A step draws 1000 exact samples site by site, evaluates E = -1/2 s^T J s and log q (on s and -s),
forms the score-function loss mean((f - mean f) * log q) with f = beta*E + log q, and takes an
Adam step.

Sampling comes in two forms:
- `naive`: one full forward pass per site (n passes per batch), as the reference VAN code does;
- `incremental`: the first layer's pre-activations updated by one rank-one step per site and only
  output i of the last layer evaluated, the algorithm boltzflow uses.

    OMP_NUM_THREADS=2 python3 bench/peers/van_torch.py [SECONDS] [cpu|cuda]
"""
import math
import sys
import time

import torch

torch.set_num_threads(2)
DEVICE = torch.device(sys.argv[2] if len(sys.argv) > 2 else "cpu")


def made_masks(n, depth, width):
    deg_in = torch.arange(n)
    deg_h = torch.arange(width) % (n - 1)
    masks = []
    for layer in range(depth):
        a = deg_in if layer == 0 else deg_h
        last = layer == depth - 1
        b = deg_in if last else deg_h
        m = (b[None, :] > a[:, None]) if last else (b[None, :] >= a[:, None])
        masks.append(m.float().to(DEVICE))  # [fan_in, fan_out]
    return masks


class Made(torch.nn.Module):
    def __init__(self, n, depth, width):
        super().__init__()
        self.n = n
        widths = [n] + [width] * (depth - 1) + [n]
        self.masks = made_masks(n, depth, width)
        self.w = torch.nn.ParameterList()
        self.b = torch.nn.ParameterList()
        for i in range(depth):
            bound = 1.0 / math.sqrt(widths[i])
            w = torch.empty(widths[i], widths[i + 1], device=DEVICE).uniform_(-bound, bound) * self.masks[i]
            self.w.append(torch.nn.Parameter(w))
            self.b.append(torch.nn.Parameter(torch.empty(widths[i + 1], device=DEVICE).uniform_(-bound, bound)))

    def forward(self, s):
        h = s
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            h = h @ (w * self.masks[i]) + b
            if i + 1 < len(self.w):
                h = torch.tanh(h)
        return h

    def log_q_tilde(self, s):
        return torch.nn.functional.logsigmoid(s * self.forward(s)).sum(1)

    def log_q(self, s):
        return torch.logaddexp(self.log_q_tilde(s), self.log_q_tilde(-s)) - math.log(2.0)

    @torch.no_grad()
    def sample_naive(self, rows):
        s = torch.zeros(rows, self.n, device=DEVICE)
        for i in range(self.n):
            p = torch.sigmoid(self.forward(s)[:, i])
            s[:, i] = torch.where(torch.rand(rows, device=DEVICE) < p, 1.0, -1.0)
        flip = torch.where(torch.rand(rows, 1, device=DEVICE) < 0.5, 1.0, -1.0)
        return s * flip

    @torch.no_grad()
    def sample_incremental(self, rows):
        ws = [w * m for w, m in zip(self.w, self.masks)]
        s = torch.zeros(rows, self.n, device=DEVICE)
        a1 = self.b[0].expand(rows, -1).clone()
        for i in range(self.n):
            if len(ws) == 1:
                logit = a1[:, i]
            else:
                h = torch.tanh(a1)
                for w, b in zip(ws[1:-1], list(self.b)[1:-1]):
                    h = torch.tanh(h @ w + b)
                logit = h @ ws[-1][:, i] + self.b[-1][i]
            si = torch.where(torch.rand(rows, device=DEVICE) < torch.sigmoid(logit), 1.0, -1.0)
            s[:, i] = si
            a1 += si[:, None] * ws[0][i][None, :]
        flip = torch.where(torch.rand(rows, 1, device=DEVICE) < 0.5, 1.0, -1.0)
        return s * flip


def bench(name, n, depth, width, mode, seconds, batch=1000, beta=1.0):
    torch.manual_seed(0)
    model = Made(n, depth, width)
    j = torch.randn(n, n, device=DEVICE) / math.sqrt(n)
    j = torch.triu(j, 1)
    j = j + j.T
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sample = model.sample_naive if mode == "naive" else model.sample_incremental

    def step():
        s = sample(batch)
        with torch.no_grad():
            e = -0.5 * ((s @ j) * s).sum(1)
        lq = model.log_q(s)
        with torch.no_grad():
            f = beta * e + lq
        loss = ((f - f.mean()) * lq).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def sync():
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()

    step()
    sync()
    t0 = time.perf_counter()
    k = 0
    while time.perf_counter() - t0 < seconds:
        step()
        k += 1
    sync()
    rate = k / (time.perf_counter() - t0)
    print(f"torch  {name:<28} {mode:<11} {DEVICE.type:<5} {rate:8.2f} steps/s")
    return rate


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {DEVICE}")
    for mode in ("naive", "incremental"):
        bench("sk n=20 made 2x80", 20, 2, 80, mode, seconds)
        bench("ising L=16 made 2x512", 256, 2, 512, mode, seconds)
