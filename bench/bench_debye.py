"""Debye-sum benchmark: clusterdynamicsml exact and histogram kernels beside DebyeCalculator
(CPU, direct and grid pair sums) and a vectorised numpy double loop, in one run.

Run as a script (prints a table, writes JSON with --json):

    OMP_NUM_THREADS=2 python bench/bench_debye.py [--threads 2] [--sizes 100 1000]
    CDML_BENCH_LARGE=1 python bench/bench_debye.py          # adds 5k and 20k atoms

or with pytest-benchmark (size sweep and thread sweep, each asserting its result):

    python -m pytest bench/bench_debye.py --benchmark-only

Structures: random atoms (Pb, I, O, C) at 0.05 atoms / A^3 in a cube; q: 500 points, 0.02 to
2.0 1/A (DebyeCalculator's arange grid, reused by every tool). Every tool gets the same thread
count (OMP_NUM_THREADS, torch.set_num_threads, DebyeCalculator(num_threads=...), ours
num_threads). DebyeCalculator is run with biso = 0 and float64 for the comparison; its iq is
half the full double sum (self terms as f^2 / 2), so 2 * iq is compared with our I(q).
Reported: median wall time over the repeats, and pair-q evaluations per second
N (N - 1) / 2 * Q / t (for the histogram kernel an "equivalent" rate), the ratio to our exact
kernel, and the largest deviation from it relative to I(q). The histogram kernel is timed at the
default bin width (0.001 A) and at 0.01 A, each with its error bound e(q) ((sum |f|)^2 - sum f^2)
printed beside the observed deviation.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

THREADS = int(os.environ.get("CDML_BENCH_THREADS", os.environ.get("OMP_NUM_THREADS", "2")))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))  # before torch / the core are loaded

import numpy as np  # noqa: E402

import clusterdynamicsml as cdml  # noqa: E402

ELEMENTS = ("Pb", "I", "O", "C")
HIST_WIDTHS = (0.001, 0.01)  # angstrom: the default and a coarser bin
NQ = 500
LARGE = os.environ.get("CDML_BENCH_LARGE", "") not in ("", "0")


def structure(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    side = (n / 0.05) ** (1 / 3)
    return [ELEMENTS[k] for k in rng.integers(0, len(ELEMENTS), n)], rng.uniform(0, side, size=(n, 3))


def q_grid():
    qstep = (2.0 - 0.02) / NQ
    return np.arange(0.02, 2.0, qstep)[:NQ], qstep


def numpy_reference(pos, syms, q):
    """Vectorised numpy double loop: row by row, (n, Q) arrays, full sum with self terms."""
    ff = cdml.saxs.form_factors(set(syms), q)
    f = np.array([ff[s] for s in syms])
    out = np.zeros_like(q)
    for i in range(len(syms)):
        r = np.linalg.norm(pos - pos[i], axis=1)
        x = np.outer(r, q)
        out += f[i] * np.sum(f * np.sinc(x / np.pi), axis=0)
    return out


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def debyecalculator_runner(pos, syms, q, qstep, mode, dtype_name, threads):
    try:
        import torch
        from debyecalculator import DebyeCalculator
    except ImportError:
        return None
    torch.set_num_threads(threads)
    dtype = torch.float64 if dtype_name == "f64" else torch.float32
    calc = DebyeCalculator(qmin=0.02, qmax=2.0, qstep=qstep, biso=0.0, device="cpu", dtype=dtype,
                           pair_sum=mode, num_threads=threads, rmax=max(20.0, float(np.ptp(pos, axis=0).max() * 2)))

    def run():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return 2.0 * np.asarray(calc.iq((list(syms), pos.copy())).i, dtype=np.float64)[: len(q)]

    return run


def bench(sizes, threads, repeats, out=print):
    q, qstep = q_grid()
    rows = []
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        rev = "?"
    out(f"# clusterdynamicsml {cdml.__version__} ({rev}), OpenMP {'on' if cdml.openmp_enabled() else 'off'}, "
        f"threads {threads}, Q = {len(q)} points {q[0]:.3f}..{q[-1]:.3f} 1/A")
    out(f"{'N':>6} {'tool':<34} {'median s':>10} {'pair-q/s':>10} {'vs exact':>9} {'max rel dev':>11}")
    for n in sizes:
        syms, pos = structure(n)
        pairs_q = n * (n - 1) / 2 * len(q)
        reps = repeats if n <= 5000 else 1
        t_exact, I_exact = timed(lambda: cdml.debye_intensity(pos, syms, q, num_threads=threads), reps)
        entries = [("cdml exact (f64)", t_exact, I_exact)]
        # the histogram kernel is cheap: always the full repeats (one warm-up call first)
        hist = {}
        for w in HIST_WIDTHS:
            cdml.debye_intensity(pos, syms, q, method="histogram", bin_width=w, num_threads=threads)
            t_h, I_h = timed(lambda: cdml.debye_intensity(pos, syms, q, method="histogram", bin_width=w,
                                                          num_threads=threads), max(repeats, 5))
            hist[w] = I_h
            entries.append((f"cdml histogram w={w:g} A (f64)", t_h, I_h))
        peers = [("DebyeCalculator grid f32", "grid", "f32"), ("DebyeCalculator grid f64", "grid", "f64")]
        if n <= 5000:
            peers.append(("DebyeCalculator direct f64", "direct", "f64"))
        for name, mode, dt in peers:
            run = debyecalculator_runner(pos, syms, q, qstep, mode, dt, threads)
            if run is None:
                continue
            run()  # warm-up (form factor tables, thread pool)
            t, I = timed(run, 1 if (mode == "direct" and n >= 5000) else reps)
            entries.append((name, t, I))
        if n <= (5000 if LARGE else 1000):
            t, I = timed(lambda: numpy_reference(pos, syms, q), 1)
            entries.append(("numpy vectorised double loop", t, I))
        for name, t, I in entries:
            dev = float(np.max(np.abs(I - I_exact) / np.abs(I_exact)))
            row = {"n": n, "tool": name, "median_s": t, "pair_q_per_s": pairs_q / t, "ratio_vs_exact": t / t_exact,
                   "max_rel_dev_vs_exact": dev, "threads": threads, "q_points": len(q), "git": rev,
                   "openmp": cdml.openmp_enabled()}
            rows.append(row)
            out(f"{n:>6} {name:<34} {t:>10.4f} {pairs_q / t:>10.3g} {t / t_exact:>9.3g} {dev:>11.2e}")
        for w, I_h in hist.items():
            bound = cdml.saxs.debye_partials(pos, syms, q, method="histogram", bin_width=w).histogram_error_bound()
            err = np.abs(I_h - I_exact)
            out(f"{n:>6} (histogram w={w:g} A: max |dI| / bound = {float(np.max(err / bound)):.2e}, "
                f"bound / I(0) <= {float(np.max(bound) / I_exact[0]):.1e}, max |dI|/I {float(np.max(err / I_exact)):.2e})")
            rows.append({"n": n, "tool": f"histogram bound w={w:g}", "max_err_over_bound": float(np.max(err / bound)),
                         "bound_over_I0": float(np.max(bound) / I_exact[0])})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100, 1000] + ([5000, 20000] if LARGE else []))
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None, help="write the rows to this JSON file")
    a = ap.parse_args(argv)
    rows = bench(a.sizes, a.threads, a.repeats)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


# ---------------------------------------------------------------- pytest-benchmark entry points
try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:
    SIZES = [100, 1000] + ([5000, 20000] if LARGE else [])

    @pytest.mark.parametrize("n", SIZES)
    @pytest.mark.parametrize("method,width", [("exact", None)] + [("histogram", w) for w in HIST_WIDTHS])
    def test_debye_size_sweep(benchmark, n, method, width):
        syms, pos = structure(n)
        q, _ = q_grid()
        kw = {"bin_width": width} if width else {}
        benchmark.extra_info.update({"n": n, "q_points": len(q), "threads": THREADS, "openmp": cdml.openmp_enabled(),
                                     "bin_width": width})
        I = benchmark(cdml.debye_intensity, pos, syms, q, method=method, num_threads=THREADS, **kw)
        if n <= 1000:
            ref = numpy_reference(pos, syms, q)
            tol = 1e-10 if method == "exact" else float(np.max(
                cdml.saxs.debye_partials(pos, syms, q, method="histogram", **kw).histogram_error_bound() / ref)) + 1e-10
            assert np.max(np.abs(I - ref) / ref) <= tol

    @pytest.mark.parametrize("threads", [1, 2])
    def test_debye_thread_sweep(benchmark, threads):
        syms, pos = structure(2000)
        q, _ = q_grid()
        benchmark.extra_info.update({"n": 2000, "threads": threads})
        I = benchmark(cdml.debye_intensity, pos, syms, q, num_threads=threads)
        assert np.array_equal(I, cdml.debye_intensity(pos, syms, q, num_threads=1))

    @pytest.mark.parametrize("n", [1000])
    def test_debyecalculator_direct(benchmark, n):
        syms, pos = structure(n)
        q, qstep = q_grid()
        run = debyecalculator_runner(pos, syms, q, qstep, "direct", "f64", THREADS)
        if run is None:
            pytest.skip("DebyeCalculator not installed")
        I = benchmark(run)
        ref = cdml.debye_intensity(pos, syms, q)
        assert np.max(np.abs(I - ref) / ref) < 1e-3  # form-factor tables differ slightly


if __name__ == "__main__":
    sys.exit(main())
