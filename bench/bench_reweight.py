"""Maximum-entropy reweighting benchmark: 100 components x 1000 q points (issue 13 asks < 5 s).

Run as a script (prints medians) or with pytest-benchmark:

    python bench/bench_reweight.py [--components 100] [--points 1000] [--repeats 5] [--full-scan]
    python -m pytest bench/bench_reweight.py --benchmark-only

Case: m component curves (Debye traces of random Pb/I clusters of 2-30 atoms), data from
perturbed MD populations with a quadratic background and 0.3 % noise; the full theta scan (29
values, warm-started L-BFGS) of ``maxent_reweight``. Peer in the same run: the same scan with
chi2 and its gradient evaluated directly on the (m, n) curves (the background projected out
once, then O(m n) per evaluation) instead of the O(m^2) Gram form; both must give the same
weights (to 1e-5 in total variation) and the scan must lower chi2.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from clusterdynamicsml.saxs import reweight as rw
from clusterdynamicsml.saxs.debye import debye_intensity


def make_case(m=100, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    q = np.linspace(0.02, 1.0, n)
    X = []
    for _ in range(m):
        k = int(rng.integers(2, 30))
        X.append(debye_intensity(rng.normal(scale=1.0 + 0.15 * k, size=(k, 3)), ["Pb"] + ["I"] * (k - 1), q))
    X = np.array(X)
    w0 = rng.dirichlet(np.ones(m))
    wt = w0 * np.exp(rng.normal(scale=0.7, size=m))
    wt /= wt.sum()
    B = np.column_stack([np.ones_like(q), q, q**2])
    clean = 1e-4 * wt @ X + B @ [0.05, 0.01, 0.02]
    sd = 3e-3 * clean
    y = clean + rng.normal(size=n) * sd
    return X, y, sd, w0, B


class DirectChi2(rw.ProfiledChi2):
    """The peer: chi2(w) and its gradient from the projected (m, n) curves at every call."""

    def __init__(self, X, y, sigma, background=None):
        super().__init__(X, y, sigma, background)
        Z, z = X / sigma, y / sigma
        A = np.asarray(background).reshape(y.size, -1) / sigma[:, None]
        Q, _ = np.linalg.qr(A / np.linalg.norm(A, axis=0))
        self.Zp = Z - (Z @ Q) @ Q.T
        self.zp = z - Q @ (Q.T @ z)

    def value_grad(self, w):
        mcurve = w @ self.Zp
        mm = float(mcurve @ mcurve)
        hw = float(mcurve @ self.zp)
        if hw <= 0 or mm <= 0:
            return self.c0, np.zeros_like(w)
        s = hw / mm
        r = self.zp - s * mcurve
        return float(r @ r), -2.0 * s * (self.Zp @ r)


def run(direct=False, case=None, early_stop=True):
    X, y, sd, w0, B = case
    if direct:
        orig = rw.ProfiledChi2
        rw.ProfiledChi2 = DirectChi2
        try:
            return rw.maxent_reweight(X, y, sd, w0, B, early_stop=early_stop)
        finally:
            rw.ProfiledChi2 = orig
    return rw.maxent_reweight(X, y, sd, w0, B, early_stop=early_stop)


def _check(a, b):
    assert a.chi2 < a.chi2_prior
    assert 0.5 * np.abs(a.weights - b.weights).sum() < 1e-5, "Gram and direct forms disagree"


def test_reweight_gram(benchmark):
    case = make_case()
    res = benchmark(run, False, case)
    _check(res, run(True, case))
    benchmark.extra_info.update({"components": 100, "points": 1000, "form": "gram"})


def test_reweight_direct_peer(benchmark):
    case = make_case()
    res = benchmark(run, True, case)
    _check(res, run(False, case))
    benchmark.extra_info.update({"components": 100, "points": 1000, "form": "direct"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--components", type=int, default=100)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--full-scan", action="store_true", help="all 29 thetas (no early stop)")
    a = ap.parse_args()
    case = make_case(a.components, a.points)
    times = {"gram": [], "direct": []}
    res = {}
    for _ in range(a.repeats):
        for form in ("gram", "direct"):
            t = time.perf_counter()
            res[form] = run(form == "direct", case, early_stop=not a.full_scan)
            times[form].append(time.perf_counter() - t)
    _check(res["gram"], res["direct"])
    g, d = statistics.median(times["gram"]), statistics.median(times["direct"])
    r = res["gram"]
    print(f"{a.components} components x {a.points} q, {len(r.scan)} thetas: gram {g:.3f} s, direct {d:.3f} s "
          f"(ratio {d / g:.1f}x); chi2 prior {r.chi2_prior:.4g} -> {r.chi2:.4g}, ESS {r.effective_sample_size:.3f}")


if __name__ == "__main__":
    main()
