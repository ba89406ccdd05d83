"""Generator of the bundled example trajectory (numpy only, fixed seed).

A coarse-grained model of PbI2 in a polar solvent: Pb2+ and I- ions and solvent oxygen
sites (one site per solvent molecule, standing for the donor O of DMF) in a periodic cubic
box, moved by Langevin dynamics (BAOAB splitting) at constant temperature.

Pair potential between sites i and j at distance r (angstrom, eV)::

    U_ij(r) = k_e q_i q_j exp(-r / lambda_D) / (eps_r r)          screened Coulomb
            + 4 eps_ij [ (sigma_ij / r)^12 - a_ij (sigma_ij / r)^6 ]  Lennard-Jones-like

with k_e = 14.3996 eV angstrom, a relative permittivity eps_r and a Debye screening length
lambda_D that stand in for the solvent around the explicit sites, and a_ij = 1 for pairs that
attract (Pb-O donor bonds, O-O) and 0 for purely repulsive cores (I-O, I-I, Pb-Pb, Pb-I core).
All interactions use the minimum image and are cut at ``cutoff`` (angstrom) with the
energy shifted to zero there.

Langevin BAOAB (Leimkuhler and Matthews 2013), time step dt (fs), friction gamma (1/fs):
B: v += dt/2 F/m;  A: x += dt/2 v;  O: v = c v + sqrt((1 - c^2) kT/m) xi with c = exp(-gamma dt);
A: x += dt/2 v;  B: v += dt/2 F/m.

Units: angstrom, fs, amu, eV; 1 eV/(angstrom amu) = 9.648533e-3 angstrom/fs^2.

Outputs (``write_example``): a multi-frame extended XYZ (``Lattice``, ``pbc``, ``time=`` in
fs) and a CP2K-style ``.ener`` file (step, time [fs], kinetic [hartree], temperature [K],
potential [hartree], conserved [hartree], used time [s]).
"""
from __future__ import annotations

import time as _time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_path

K_E = 14.399645  # eV angstrom
K_B = 8.617333262e-5  # eV / K
ACC = 9.648533212e-3  # (eV / (angstrom amu)) -> angstrom / fs^2
HARTREE = 27.211386245988  # eV


@dataclass(frozen=True)
class ExampleModel:
    """Parameters of the example simulation (defaults give the bundled trajectory)."""

    n_pb: int = 10
    n_i: int = 20
    n_o: int = 60
    box: float = 19.0  # angstrom, cubic
    temperature: float = 300.0  # K
    eps_r: float = 10.0
    debye_length: float = 6.0  # angstrom
    dt: float = 2.0  # fs
    gamma: float = 0.005  # 1/fs
    equilibration_steps: int = 6000
    steps_per_frame: int = 10
    n_frames: int = 200
    cutoff: float = 9.0  # angstrom (< box / 2)
    seed: int = 20261122
    masses: dict = field(default_factory=lambda: {"Pb": 207.2, "I": 126.904, "O": 73.09})
    charges: dict = field(default_factory=lambda: {"Pb": 2.0, "I": -1.0, "O": 0.0})
    # (sigma [angstrom], epsilon [eV], attractive 0/1) per pair
    lj: dict = field(default_factory=lambda: {
        ("Pb", "Pb"): (3.6, 0.010, 0.0),
        ("Pb", "I"): (2.75, 0.030, 0.0),
        ("Pb", "O"): (2.35, 0.080, 1.0),
        ("I", "I"): (4.0, 0.010, 0.0),
        ("I", "O"): (3.5, 0.010, 0.0),
        ("O", "O"): (3.3, 0.030, 1.0),
    })


def _pair_tables(symbols, model: ExampleModel):
    kinds = sorted(set(symbols))
    idx = np.array([kinds.index(s) for s in symbols])
    nk = len(kinds)
    sig = np.zeros((nk, nk))
    eps = np.zeros((nk, nk))
    att = np.zeros((nk, nk))
    for (a, b), (s, e, w) in model.lj.items():
        if a in kinds and b in kinds:
            i, j = kinds.index(a), kinds.index(b)
            sig[i, j] = sig[j, i] = s
            eps[i, j] = eps[j, i] = e
            att[i, j] = att[j, i] = w
    q = np.array([model.charges[s] for s in symbols])
    return sig[idx][:, idx], eps[idx][:, idx], att[idx][:, idx], np.outer(q, q)


class _ForceField:
    def __init__(self, symbols, model: ExampleModel):
        self.L = model.box
        self.rc = model.cutoff
        self.sig, self.eps, self.att, self.qq = _pair_tables(symbols, model)
        self.kc = K_E / model.eps_r
        self.lam = model.debye_length
        n = len(symbols)
        self.mask = ~np.eye(n, dtype=bool)
        # energy shift so each pair energy is 0 at the cutoff
        self.shift = self._pair_energy(np.full((n, n), self.rc))

    def _pair_energy(self, r):
        sr6 = (self.sig / r) ** 6
        lj = 4 * self.eps * (sr6 * sr6 - self.att * sr6)
        coul = self.kc * self.qq * np.exp(-r / self.lam) / r
        return lj + coul

    def __call__(self, x):
        d = x[:, None, :] - x[None, :, :]
        d -= self.L * np.round(d / self.L)
        r = np.sqrt(np.einsum("ijk,ijk->ij", d, d))
        np.fill_diagonal(r, self.rc * 2)
        inside = (r < self.rc) & self.mask
        rr = np.where(inside, r, self.rc)
        sr6 = (self.sig / rr) ** 6
        # -dU/dr
        f_lj = 4 * self.eps * (12 * sr6 * sr6 - 6 * self.att * sr6) / rr
        ex = np.exp(-rr / self.lam)
        f_c = self.kc * self.qq * ex * (1.0 / rr**2 + 1.0 / (self.lam * rr))
        fmag = np.where(inside, f_lj + f_c, 0.0)
        forces = np.einsum("ij,ijk->ik", fmag / rr, d)
        energy = 0.5 * float(np.sum(np.where(inside, self._pair_energy(rr) - self.shift, 0.0)))
        return forces, energy


def _initial_positions(n, L, rng, min_dist=2.6):
    """Random sequential placement with a minimum distance (minimum image)."""
    pos = np.zeros((0, 3))
    while pos.shape[0] < n:
        trial = rng.uniform(0, L, 3)
        if pos.shape[0]:
            d = pos - trial
            d -= L * np.round(d / L)
            if np.min(np.einsum("ij,ij->i", d, d)) < min_dist**2:
                continue
        pos = np.vstack([pos, trial])
    return pos


def simulate(model: ExampleModel = ExampleModel(), progress=None):
    """Run the Langevin simulation. Returns (symbols, frames (F, n, 3), times_fs (F,),
    energies dict of arrays (F,): kinetic_ev, potential_ev, temperature_k)."""
    rng = np.random.default_rng(model.seed)
    symbols = ["Pb"] * model.n_pb + ["I"] * model.n_i + ["O"] * model.n_o
    n = len(symbols)
    if model.cutoff >= model.box / 2:
        raise ValueError("cutoff must be smaller than half the box")
    m = np.array([model.masses[s] for s in symbols])[:, None]
    kT = K_B * model.temperature
    x = _initial_positions(n, model.box, rng)
    v = rng.normal(size=(n, 3)) * np.sqrt(kT / m * ACC)
    ff = _ForceField(symbols, model)
    f, u = ff(x)
    c1 = np.exp(-model.gamma * model.dt)
    c2 = np.sqrt((1 - c1 * c1) * kT / m * ACC)
    h = 0.5 * model.dt
    frames, times, kin, pot, temp = [], [], [], [], []
    total = model.equilibration_steps + model.n_frames * model.steps_per_frame
    # gentle start: cap the force during the first steps (overlapping random placement)
    for step in range(1, total + 1):
        if step < 200:
            fn = np.linalg.norm(f, axis=1, keepdims=True)
            f = f * np.minimum(1.0, 2.0 / np.maximum(fn, 1e-12))
        v += h * f / m * ACC
        x += h * v
        v = c1 * v + c2 * rng.normal(size=(n, 3))
        x += h * v
        f, u = ff(x)
        v += h * f / m * ACC
        prod = step - model.equilibration_steps
        if prod > 0 and prod % model.steps_per_frame == 0:
            ke = 0.5 * float(np.sum(m * v * v)) / ACC
            frames.append(np.mod(x, model.box))
            times.append(prod * model.dt)
            kin.append(ke)
            pot.append(u)
            temp.append(2 * ke / (3 * n * K_B))
        if progress is not None:
            progress(step, total)
    times = np.array(times) - model.steps_per_frame * model.dt
    return symbols, np.array(frames), times, {
        "kinetic_ev": np.array(kin), "potential_ev": np.array(pot), "temperature_k": np.array(temp)}


def write_example(out_dir, model: ExampleModel = ExampleModel(), stem: str = "pbi2_solvent_langevin",
                  progress=None) -> dict:
    """Simulate and write ``<stem>.xyz`` (extended XYZ) and ``<stem>.ener`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = _time.perf_counter()
    symbols, frames, times, en = simulate(model, progress=progress)
    L = model.box
    lattice = f"{L:.4f} 0.0 0.0 0.0 {L:.4f} 0.0 0.0 0.0 {L:.4f}"
    xyz = out / f"{stem}.xyz"
    with atomic_path(xyz) as tmp, open(tmp, "w") as fh:
        for k, (pos, t) in enumerate(zip(frames, times)):
            fh.write(f"{len(symbols)}\n")
            fh.write(f'Lattice="{lattice}" Properties=species:S:1:pos:R:3 pbc="T T T" '
                     f"time={t:.1f} frame={k} energy={en['potential_ev'][k]:.6f}\n")
            for s, p in zip(symbols, pos):
                fh.write(f"{s:<2s} {p[0]:8.3f} {p[1]:8.3f} {p[2]:8.3f}\n")
    ener = out / f"{stem}.ener"
    cons = (en["kinetic_ev"] + en["potential_ev"]) / HARTREE
    with open(ener, "w") as fh:
        fh.write("#     Step Nr.          Time[fs]        Kin.[a.u.]          Temp[K]            "
                 "Pot.[a.u.]        Cons Qty[a.u.]        UsedTime[s]\n")
        for k, t in enumerate(times):
            step = int(round(t / model.dt))
            fh.write(f"{step:10d} {t:17.6f} {en['kinetic_ev'][k] / HARTREE:20.12f} "
                     f"{en['temperature_k'][k]:17.6f} {en['potential_ev'][k] / HARTREE:20.12f} "
                     f"{cons[k]:20.12f} {0.0:17.6f}\n")
    params = asdict(model)
    params["lj"] = {f"{a}-{b}": list(v) for (a, b), v in model.lj.items()}
    return {"xyz": xyz, "ener": ener, "n_atoms": len(symbols), "n_frames": len(times),
            "seconds": _time.perf_counter() - t0, "model": params}
