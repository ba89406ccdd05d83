"""Synthetic extended-XYZ trajectories for the throughput benchmarks (written once, cached).

Two kinds, each atom oscillating about a random site so that Pb/I clusters form and break
over time:

* ``"ions"`` (the default, the hard case for clustering): every atom is tracked, 1/3 Pb
  (node) and 2/3 I (linker) at 0.0125 atoms per cubic angstrom (about 1.5 I within 3.5 A of
  a Pb: many finite clusters, thousands per 10k-atom frame);
* ``"solution"``: 5 % Pb, 10 % I and 85 % solvent atoms (O, N, C, H: read but never
  clustered) at 0.1 atoms per cubic angstrom. Coordinates are wrapped
into the cubic box and written with 5 decimals (``%9.5f``), one frame per 2 + n lines::

    10000
    Lattice="46.4 0 0 0 46.4 0 0 0 46.4" Properties=species:S:1:pos:R:3 time=10.0 pbc="T T T"
    Pb  12.34567  1.23456 40.00001
    ...

Formatting is vectorised (digits from integer arithmetic), so a 10k-atom x 5000-frame file
(3 GB) is written in about a minute. ``python bench/trajgen.py N_ATOMS N_FRAMES PATH [KIND]``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

CUTOFF = 3.5           # Pb-I cutoff used by the benchmarks (angstrom)
TIMESTEP_FS = 10.0
SPECIES = ("Pb", "I", "O", "N", "C", "H")
KINDS = {  # density (atoms per cubic angstrom), fraction of each species
    "ions": (0.0125, (1 / 3, 2 / 3, 0.0, 0.0, 0.0, 0.0)),
    "solution": (0.1, (0.05, 0.10, 0.10, 0.10, 0.25, 0.40)),
}
CACHE = Path(os.environ.get("CDML_BENCH_DATA", "/tmp/cdml_bench_data"))


def rules():
    """One node (Pb) and one linker (I) type, 3.5 A cutoff, no shells."""
    from clusterdynamicsml.clusters import ClusterRules

    return ClusterRules(node=["Pb"], linker=["I"], shell=[], cutoffs={("Pb", "I"): CUTOFF})


def _fixed(values: np.ndarray) -> np.ndarray:
    """(n,) floats in [0, 1000) -> (n, 9) uint8 ASCII '%9.5f'."""
    q = np.rint(values * 1e5).astype(np.int64)
    out = np.empty((values.size, 9), dtype=np.uint8)
    frac, whole = q % 100000, q // 100000
    for k in range(5):
        out[:, 8 - k] = 48 + frac % 10
        frac //= 10
    out[:, 3] = ord(".")
    for k in range(3):
        digit = whole % 10
        out[:, 2 - k] = np.where((whole > 0) | (k == 0), 48 + digit, 32)
        whole //= 10
    return out


def write_trajectory(path, n_atoms: int, n_frames: int, seed: int = 2026, kind: str = "ions") -> Path:
    """Write ``n_frames`` frames of ``n_atoms`` atoms to ``path`` (extended XYZ)."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    density, fractions = KINDS[kind]
    length = (n_atoms / density) ** (1.0 / 3.0)
    counts = np.floor(np.asarray(fractions) * n_atoms).astype(int)
    counts[int(np.argmax(fractions))] += n_atoms - counts.sum()
    species = np.repeat(np.arange(len(SPECIES)), counts)
    rng.shuffle(species)
    names = np.array([s.ljust(3).encode() for s in SPECIES], dtype="S3")
    sp = np.frombuffer(names[species].tobytes(), dtype=np.uint8).reshape(n_atoms, 3)
    site = rng.uniform(0.0, length, size=(n_atoms, 3))
    omega = rng.uniform(0.002, 0.02, size=(n_atoms, 3))
    phase = rng.uniform(0.0, 2 * np.pi, size=(n_atoms, 3))
    row = np.empty((n_atoms, 3 + 3 * 10 + 1), dtype=np.uint8)
    row[:, :3] = sp
    row[:, -1] = ord("\n")
    lat = f"{length:.6f}"
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "wb") as fh:
        for k in range(n_frames):
            t = k * TIMESTEP_FS
            pos = np.mod(site + 1.2 * np.sin(omega * t + phase), length)
            pos[pos >= length - 5e-6] = 0.0  # "%9.5f" of a value just below L would print L
            for c in range(3):
                row[:, 3 + 10 * c] = ord(" ")
                row[:, 4 + 10 * c:13 + 10 * c] = _fixed(pos[:, c])
            fh.write(f"{n_atoms}\nLattice=\"{lat} 0 0 0 {lat} 0 0 0 {lat}\" Properties=species:S:1:pos:R:3 "
                     f"time={t:.1f} pbc=\"T T T\"\n".encode())
            fh.write(row.tobytes())
    os.replace(tmp, path)
    return path


def trajectory(n_atoms: int, n_frames: int, seed: int = 2026, kind: str = "ions") -> Path:
    """The cached file for (n_atoms, n_frames, seed, kind), written on first use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"pbi_{kind}_{n_atoms}x{n_frames}_s{seed}.extxyz"
    if not path.exists():
        write_trajectory(path, n_atoms, n_frames, seed, kind)
    return path


if __name__ == "__main__":
    print(write_trajectory(sys.argv[3], int(sys.argv[1]), int(sys.argv[2]),
                           kind=sys.argv[4] if len(sys.argv) > 4 else "ions"))
