"""Validation ladder of the Debye kernels in absolute units (electrons^2)."""
from __future__ import annotations

import numpy as np
import pytest

import clusterdynamicsml as cdml
from clusterdynamicsml import _core
from clusterdynamicsml.saxs.debye import debye_partials, first_shell_pairs, rank_aligned_spread, read_structure
from clusterdynamicsml.saxs.formfactors import form_factors


def naive_debye(pos, syms, q, sigma=None, damp_pairs=None):
    """Obviously-correct double loop: sum_i sum_j f_i f_j sinc(q r_ij) [* exp(-s^2 q^2/2), i != j]."""
    ff = form_factors(set(syms), q)
    f = np.array([ff[s] for s in syms])
    n = len(syms)
    out = np.zeros_like(q)
    for i in range(n):
        for j in range(n):
            r = np.linalg.norm(pos[i] - pos[j])
            term = f[i] * f[j] * np.sinc(q * r / np.pi)
            if i != j and sigma:
                key = tuple(sorted((syms[i], syms[j])))
                s = sigma.get(key, 0.0)
                if damp_pairs is None or (min(i, j), max(i, j)) in damp_pairs:
                    term = term * np.exp(-0.5 * s * s * q * q)
            out += term
    return out


def random_cluster(seed, n, elements=("Pb", "I", "O")):
    rng = np.random.default_rng(seed)
    pos = rng.normal(scale=4.0, size=(n, 3))
    syms = [elements[k] for k in rng.integers(0, len(elements), n)]
    return pos, syms


def assert_rel(a, b, tol, msg=""):
    err = np.abs(a - b) / np.abs(b)
    k = int(np.argmax(err))
    assert err[k] <= tol, f"{msg}: max relative error {err[k]:.3g} at q index {k} ({a[k]!r} vs {b[k]!r})"


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("grid", ["uniform", "random"])
def test_exact_equals_naive_double_loop(seed, grid):
    n = 20 + 7 * seed
    pos, syms = random_cluster(seed, n)
    rng = np.random.default_rng(100 + seed)
    q = np.linspace(0.0, 2.0, 301) if grid == "uniform" else np.sort(rng.uniform(0, 2.5, 211))
    sigma = {("I", "Pb"): 0.08, ("O", "Pb"): 0.12} if seed % 2 else None
    got = cdml.debye_intensity(pos, syms, q, sigma=sigma)
    want = naive_debye(pos, syms, q, sigma)
    assert_rel(got, want, 1e-10, f"seed {seed}, n {n}, grid {grid}")


def test_recurrence_on_coarse_grid_with_large_phase_steps():
    # dq * r up to ~pi and beyond: the recurrence must stay exact to 1e-10.
    pos, syms = random_cluster(7, 40)
    q = np.linspace(0.5, 40.0, 64)
    assert_rel(cdml.debye_intensity(pos, syms, q), naive_debye(pos, syms, q), 1e-10, "coarse grid")


def test_two_atoms_closed_form():
    q = np.linspace(0.0, 2.0, 200)
    d = 3.17
    I = cdml.debye_intensity([[0, 0, 0], [d, 0, 0]], ["Pb", "I"], q)
    ff = form_factors(["Pb", "I"], q)
    f1, f2 = ff["Pb"], ff["I"]
    want = f1**2 + f2**2 + 2 * f1 * f2 * np.sinc(q * d / np.pi)
    np.testing.assert_allclose(I, want, rtol=1e-13, atol=0)
    # the same with histogram bins: one pair, its bin's mean distance is d to 2^-17 bin widths,
    # so only the fixed-point term of the bound is left (no bin variance)
    for simd in ("auto", "portable"):
        s, *_ = _core.debye_partials(np.array([[0, 0, 0], [d, 0, 0]], float), np.array([0, 1], np.int32), 2, q,
                                     "histogram", 0.001, 1, simd)
        np.testing.assert_allclose(s[1], np.sinc(q * d / np.pi), rtol=0, atol=q.max() * 0.001 * 2.0**-18 + 1e-15)
    hi = debye_partials([[0, 0, 0], [d, 0, 0]], ["Pb", "I"], q, method="histogram")
    assert np.all(np.abs(hi.intensity() - want) <= hi.histogram_error_bound() + 1e-12 * want)


def test_q_zero_limit_is_square_of_sum_of_f():
    pos, syms = random_cluster(3, 50)
    q = np.array([0.0, 1e-7])
    ff = form_factors(syms, q)
    total = sum(ff[s] for s in syms)
    for method in ("exact", "histogram"):
        I = cdml.debye_intensity(pos, syms, q, method=method)
        assert I[0] == pytest.approx(total[0] ** 2, rel=1e-14)
        assert I[1] == pytest.approx(total[1] ** 2, rel=1e-9)


def test_rigid_rotation_and_translation_change_nothing():
    pos, syms = random_cluster(11, 80)
    q = np.linspace(0.01, 2.0, 150)
    ref = cdml.debye_intensity(pos, syms, q)
    a, b, c = 0.3, -1.1, 2.0
    Rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    Ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    Rx = np.array([[1, 0, 0], [0, np.cos(c), -np.sin(c)], [0, np.sin(c), np.cos(c)]])
    moved = pos @ (Rz @ Ry @ Rx).T + np.array([120.0, -35.5, 7.25])
    assert_rel(cdml.debye_intensity(moved, syms, q), ref, 1e-11, "rotated + translated")


def test_sigma_zero_equals_undamped_sum():
    pos, syms = random_cluster(5, 40)
    q = np.linspace(0, 2, 100)
    plain = cdml.debye_intensity(pos, syms, q)
    zero = cdml.debye_intensity(pos, syms, q, sigma={("I", "Pb"): 0.0, ("Pb", "Pb"): 0.0})
    np.testing.assert_array_equal(plain, zero)
    damped = cdml.debye_intensity(pos, syms, q, sigma={("I", "Pb"): 0.1})
    assert not np.array_equal(plain, damped)
    assert damped[0] == plain[0]


def test_first_shell_damping_three_atom_closed_form():
    # Pb at 0, I at 3.0 (first shell, cutoff 3.36) and I at 7.0 (not first shell from Pb;
    # I-I has no cutoff): only the Pb-I(3.0) pair is damped.
    pos = np.array([[0, 0, 0], [3.0, 0, 0], [0, 7.0, 0]])
    syms = ["Pb", "I", "I"]
    q = np.linspace(0, 2, 80)
    sigma = {("I", "Pb"): 0.15}
    got = cdml.debye_intensity(pos, syms, q, sigma=sigma, dw_pairs="first_shell", cutoffs={("Pb", "I"): 3.36})
    want = naive_debye(pos, syms, q, sigma, damp_pairs={(0, 1)})
    np.testing.assert_allclose(got, want, rtol=1e-12)
    everything = cdml.debye_intensity(pos, syms, q, sigma=sigma)
    assert np.max(np.abs(got - everything)) > 1.0  # the long Pb-I pair is left undamped


def test_first_shell_node_scaffold_joins_node_components():
    pos = np.array([[0, 0, 0], [9.0, 0, 0], [20.0, 0, 0], [3.0, 0, 0]])
    i, j, d = first_shell_pairs(pos, ["Pb", "Pb", "Pb", "I"], {("Pb", "I"): 3.36}, node_elements=["Pb"])
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 3), (1, 2)]
    np.testing.assert_allclose(d, [9.0, 3.0, 11.0])


@pytest.mark.parametrize("method", ["exact", "histogram"])
def test_bit_identical_for_any_thread_count(method):
    pos, syms = random_cluster(21, 700, ("Pb", "I", "O", "C"))
    q = np.linspace(0.02, 2.0, 257)
    ref = cdml.debye_intensity(pos, syms, q, method=method, num_threads=1)
    for nt in (2, 3, 8):
        assert np.array_equal(cdml.debye_intensity(pos, syms, q, method=method, num_threads=nt), ref), nt
    qr = np.sort(np.random.default_rng(0).uniform(0, 2, 77))
    ref = cdml.debye_intensity(pos, syms, qr, method=method, num_threads=1)
    assert np.array_equal(cdml.debye_intensity(pos, syms, qr, method=method, num_threads=3), ref)


def test_histogram_tiles_bin_every_pair_once():
    # the binning pass runs over i-block x j-block tiles; with type counts that are not
    # multiples of the block sizes (32 x 256), every pair must still land in exactly one bin
    rng = np.random.default_rng(5)
    syms = ["Pb"] * 33 + ["I"] * 257 + ["O"] * 1 + ["C"] * 600
    rng.shuffle(syms)
    pos = rng.uniform(0, 30, (len(syms), 3))
    pos[7] = pos[8]  # a coincident pair
    q = np.linspace(0.0, 2.0, 101)
    for nt in (1, 2, 3):
        hi = debye_partials(pos, syms, q, method="histogram", bin_width=0.002, num_threads=nt)
        np.testing.assert_array_equal(hi.s[:, 0], hi.pair_counts.astype(float))
        ex = debye_partials(pos, syms, q, num_threads=nt)
        Ie, Ih = ex.intensity(), hi.intensity()
        assert np.all(np.abs(Ih - Ie) <= hi.histogram_error_bound() + 1e-9 * Ie)
        if nt == 1:
            ref = hi.s
        else:
            assert np.array_equal(hi.s, ref), nt


def test_histogram_paths_agree_and_stay_within_bound():
    # the AVX-512 distance pass (when the CPU has it) and the portable one code the same bins;
    # each is bit-identical across thread counts and within the bound of the exact sums.
    # 8000 atoms: above the work below which the kernels stay on one thread
    rng = np.random.default_rng(9)
    syms = list(rng.choice(["Pb", "I", "O"], 8000))
    pos = rng.uniform(-25, 25, (8000, 3))
    types = np.array([["I", "O", "Pb"].index(e) for e in syms], np.int32)
    q = np.linspace(0.0, 2.0, 64)
    ex = debye_partials(pos, syms, q)
    bound = debye_partials(pos, syms, q, method="histogram", bin_width=0.01).histogram_error_bound()
    Ie = ex.intensity()
    traces = {}
    for simd in ("auto", "portable"):
        ref = None
        for nt in (1, 2, 3):
            s, _, pair_counts, _ = _core.debye_partials(pos, types, 3, q, "histogram", 0.01, nt, simd)
            if ref is None:
                ref = s
            assert np.array_equal(s, ref), (simd, nt)
        np.testing.assert_array_equal(ref[:, 0], pair_counts.astype(float))
        hi = debye_partials(pos, syms, q, method="histogram", bin_width=0.01)
        traces[simd] = type(hi)(**{**hi.__dict__, "s": ref}).intensity()
        assert np.all(np.abs(traces[simd] - Ie) <= bound + 1e-9 * Ie), simd
    with pytest.raises(ValueError, match="simd must be"):
        _core.debye_partials(pos, types, 3, q, "histogram", 0.01, 1, "sse9")


def test_histogram_words_are_flushed_before_they_overflow():
    # two tight clumps of 4100 atoms 10.5 A apart: 16.8e6 O-Pb pairs fall in one 1 A bin, more
    # than one 64-bit histogram word can count (~16.7e6): the thread must move its words to the
    # wide counters on the way, or the count and the mean distance come out wrong
    rng = np.random.default_rng(2)
    n = 4100
    pos = np.concatenate([rng.uniform(0, 0.01, (n, 3)), rng.uniform(0, 0.01, (n, 3)) + [10.5, 0, 0]])
    syms = ["O"] * n + ["Pb"] * n
    q = np.array([0.0, 0.7, 2.0])
    hi = debye_partials(pos, syms, q, method="histogram", bin_width=1.0, num_threads=1)
    p = hi.pairs.index(("O", "Pb"))
    assert hi.s[p, 0] == n * n
    d = np.linalg.norm(pos[n:].mean(axis=0) - pos[:n].mean(axis=0))
    np.testing.assert_allclose(hi.s[p], n * n * np.sinc(q * d / np.pi), rtol=1e-5)
    assert np.array_equal(debye_partials(pos, syms, q, method="histogram", bin_width=1.0, num_threads=2).s, hi.s)


def test_histogram_refuses_absurd_bin_counts():
    with pytest.raises(ValueError, match="more than 2e7 bins"):
        cdml.debye_intensity([[0, 0, 0], [50, 0, 0]], ["Pb", "I"], [0.1, 0.2], method="histogram",
                             bin_width=1e-6)


def real_clusters(shared_data):
    """Real structures: the Pb-I fragments, DMF, and an 11 A sphere cut from the LiPF6 MD frame."""
    out = []
    ref = shared_data / "saxshell_reference_structures"
    for name in ("pbi3.pdb", "cspbi3.pdb", "dmf.pdb"):
        out.append((name, *read_structure(ref / name)))
    lines = (shared_data / "lipf6_bn_fec_lammps" / "frames_xyz_wrap" / "frame_0000.xyz").read_text().splitlines()
    n = int(lines[0])
    syms = [ln.split()[0] for ln in lines[2 : 2 + n]]
    pos = np.array([[float(v) for v in ln.split()[1:4]] for ln in lines[2 : 2 + n]])
    centre = np.full(3, 44.058949 / 2)  # the box centre: the sphere never crosses the cell faces
    keep = np.linalg.norm(pos - centre, axis=1) <= 11.0
    out.append(("lipf6_sphere", [s for s, k in zip(syms, keep) if k], pos[keep]))
    return out


@pytest.mark.shared_data
def test_histogram_within_documented_bound_on_real_clusters(shared_data):
    q = np.linspace(0.0, 2.0, 400)
    for name, syms, pos in real_clusters(shared_data):
        for w in (0.001, 0.01):
            ex = debye_partials(pos, syms, q)
            hi = debye_partials(pos, syms, q, method="histogram", bin_width=w)
            Ie, Ih = ex.intensity(), hi.intensity()
            bound = hi.histogram_error_bound()
            err = np.abs(Ih - Ie)
            assert np.all(err <= bound + 1e-9 * Ie), (name, w, float(np.max(err - bound)))
            # the bound relative to the forward intensity: (q w)^2 / 24 <= 1.7e-5 here
            assert np.max(err / Ie[0]) <= (2.0 * w) ** 2 / 24, name
        if name == "lipf6_sphere":
            assert len(syms) > 300
            # and in practice far inside it, relative to I(q) itself
            assert np.max(np.abs(Ih - Ie) / Ie) < 1e-3


def test_rank_aligned_sigma_reference_case():
    s1 = (["Pb", "I"], [[0, 0, 0], [1.0, 0, 0]])
    s2 = (["I", "Pb"], [[0, 0, 0], [0, 1.1, 0]])
    assert cdml.saxs.rank_aligned_sigma([s1, s2], ("Pb", "I")) == pytest.approx(0.05, abs=1e-15)
    assert cdml.saxs.rank_aligned_sigma([s1, s2], "I-Pb") == pytest.approx(0.05, abs=1e-15)


def test_rank_aligned_sigma_truncates_to_smallest_count_and_takes_rms():
    a = (["Pb", "I", "I"], [[0, 0, 0], [3.0, 0, 0], [0, 3.4, 0]])
    b = (["Pb", "I", "I"], [[0, 0, 0], [3.2, 0, 0], [0, 3.0, 0]])
    c = (["Pb", "I"], [[0, 0, 0], [3.1, 0, 0]])
    skip = (["O", "O"], [[0, 0, 0], [1.2, 0, 0]])
    r = rank_aligned_spread([a, b, c, skip], ("Pb", "I"), cutoff=3.9)
    assert r.aligned_count == 1 and r.support == 3
    assert r.sigma == pytest.approx(np.std([3.0, 3.0, 3.1]))
    r2 = rank_aligned_spread([a, b], ("Pb", "I"))
    sig = [np.std([3.0, 3.0]), np.std([3.4, 3.2])]
    assert r2.sigma == pytest.approx(np.sqrt(np.mean(np.square(sig))))
    assert r2.b_factor == pytest.approx(8 * np.pi**2 * r2.sigma**2)
    same = rank_aligned_spread([a, b], ("I", "I"))
    assert same.aligned_count == 1


def test_rank_aligned_sigma_needs_two_structures():
    s1 = (["Pb", "I"], [[0, 0, 0], [1.0, 0, 0]])
    with pytest.raises(ValueError, match="at least two structures"):
        cdml.saxs.rank_aligned_sigma([s1], ("Pb", "I"))
    with pytest.raises(ValueError, match="at least two structures containing the pair"):
        cdml.saxs.rank_aligned_sigma([s1, (["O"], [[0, 0, 0]])], ("Pb", "I"))


def test_bad_input_is_rejected_with_readable_messages():
    q = np.linspace(0, 1, 5)
    pos = [[0, 0, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match="Waasmaier"):
        cdml.debye_intensity(pos, ["Pb", "Xq"], q)
    with pytest.raises(ValueError, match="method must be one of"):
        cdml.debye_intensity(pos, ["Pb", "I"], q, method="fast")
    with pytest.raises(ValueError, match="q must be finite and >= 0"):
        cdml.debye_intensity(pos, ["Pb", "I"], [-0.1, 0.2])
    with pytest.raises(ValueError, match="2 rows"):
        cdml.debye_intensity(pos, ["Pb"], q)
    with pytest.raises(ValueError, match="NaN"):
        cdml.debye_intensity([[0, 0, np.nan], [1, 0, 0]], ["Pb", "I"], q)
    with pytest.raises(ValueError, match=">= 0 angstrom"):
        cdml.debye_intensity(pos, ["Pb", "I"], q, sigma={("Pb", "I"): -0.1})
    with pytest.raises(ValueError, match="needs cutoffs"):
        cdml.debye_intensity(pos, ["Pb", "I"], q, sigma={("Pb", "I"): 0.1}, dw_pairs="first_shell")
    with pytest.raises(ValueError, match="bin_width"):
        cdml.debye_intensity(pos, ["Pb", "I"], q, method="histogram", bin_width=0)
    with pytest.raises(ValueError, match="exceeds 1e8"):
        cdml.debye_intensity([[0, 0, 0], [1e9, 0, 0]], ["Pb", "I"], q)


def test_coincident_atoms_count_as_sinc_zero():
    q = np.linspace(0, 2, 50)
    I = cdml.debye_intensity([[1, 1, 1], [1, 1, 1]], ["O", "O"], q)
    f = form_factors(["O"], q)["O"]
    np.testing.assert_allclose(I, 4 * f * f, rtol=1e-14)
    Ih = cdml.debye_intensity([[1, 1, 1], [1, 1, 1]], ["O", "O"], q, method="histogram")
    np.testing.assert_allclose(Ih, 4 * f * f, rtol=1e-14)
