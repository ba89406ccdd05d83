"""Test helpers for the dynamics stage (importable by spawned worker processes).

* ``standin_count_labels(frame, rules)``: a small, real cluster counter (typed neighbour
  pairs + union-find from the geometry kernels) used until ``clusters.count_labels`` lands;
  ``rules`` is a dict ``{"node": "Na", "linker": "Cl", "cutoff": 2.6}``. Labels follow the
  package convention (node element first, count 1 omitted): ``Na2Cl``.
* ``SyntheticTrajectory``: a picklable, random-access frame source that generates frame k
  on the fly (no frames are stored), so memory use does not depend on the number of frames.
"""
from __future__ import annotations

import os
from collections import Counter

import numpy as np

from clusterdynamicsml.geometry.box import Box
from clusterdynamicsml.geometry.neighbors import connected_components, neighbor_pairs_typed
from clusterdynamicsml.io.frames import Frame


def standin_count_labels(frame, rules) -> Counter:
    node, linker, cutoff = rules["node"], rules["linker"], float(rules["cutoff"])
    symbols = np.asarray(frame.symbols)
    types = np.full(symbols.size, -1, dtype=np.int32)
    types[symbols == node] = 0
    types[symbols == linker] = 1
    cm = np.array([[0.0, cutoff], [cutoff, 0.0]])
    i, j, _ = neighbor_pairs_typed(frame.positions, types, cm, frame.box)
    comp = connected_components(symbols.size, i, j)
    typed = types >= 0
    n_comp = int(comp.max()) + 1 if comp.size else 0
    n_node = np.bincount(comp[types == 0], minlength=n_comp)
    n_link = np.bincount(comp[types == 1], minlength=n_comp)
    out: Counter = Counter()
    for c in np.unique(comp[typed]):
        parts = []
        for el, n in ((node, n_node[c]), (linker, n_link[c])):
            if n:
                parts.append(el if n == 1 else f"{el}{n}")
        out["".join(parts)] += 1
    return out


def crashing_counter(frame, rules):
    """Like ``standin_count_labels``, but the process exits (os._exit) on ``rules['crash_frame']``
    the first time any process reaches it (a marker file makes the crash happen once)."""
    if frame.index == rules["crash_frame"]:
        try:
            fd = os.open(rules["marker"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os._exit(3)
    return standin_count_labels(frame, rules)


def failing_counter(frame, rules):
    """Raises ValueError on ``rules['fail_frame']`` while the file ``rules['marker']`` exists;
    records every frame it counts by appending its index to ``rules['log']``."""
    if frame.index == rules["fail_frame"] and os.path.exists(rules["marker"]):
        raise ValueError(f"simulated interruption at frame {frame.index}")
    with open(rules["log"], "a") as handle:
        handle.write(f"{frame.index}\n")
    return standin_count_labels(frame, rules)


class SyntheticTrajectory:
    """Random-access synthetic A/B trajectory generated on the fly.

    Atom ``a`` oscillates about a random site: ``x_a(k) = site_a + amp * sin(w_a k dt + phi_a)``
    (three independent components), so clusters form and break smoothly over time and
    frame ``k`` is computed in O(n_atoms) without storing anything.
    """

    def __init__(self, n_atoms: int = 200, n_frames: int = 100, seed: int = 0, timestep_fs: float = 10.0,
                 density: float = 0.03, amplitude: float = 1.2, elements=("Na", "Cl")):
        self.n_atoms, self.n_frames, self.seed = int(n_atoms), int(n_frames), int(seed)
        self.timestep_fs = float(timestep_fs)
        self.length = float((n_atoms / density) ** (1.0 / 3.0))
        rng = np.random.default_rng(seed)
        self._site = rng.uniform(0.0, self.length, size=(n_atoms, 3))
        self._omega = rng.uniform(0.002, 0.02, size=(n_atoms, 3))  # rad per fs
        self._phase = rng.uniform(0.0, 2 * np.pi, size=(n_atoms, 3))
        self.amplitude = float(amplitude)
        self.symbols = [elements[a % 2] for a in range(n_atoms)]
        self.box = Box([self.length] * 3)
        self.time_source = "synthetic"
        self.warnings: list[str] = []

    def __len__(self) -> int:
        return self.n_frames

    def __getitem__(self, k: int) -> Frame:
        if not 0 <= k < self.n_frames:
            raise IndexError(k)
        t = k * self.timestep_fs
        pos = self._site + self.amplitude * np.sin(self._omega * t + self._phase)
        return Frame(index=k, source_index=k, time_fs=t, symbols=list(self.symbols), positions=pos, box=self.box)

    def __iter__(self):
        for k in range(self.n_frames):
            yield self[k]


RULES = {"node": "Na", "linker": "Cl", "cutoff": 2.6}

# the reference workflow fixture (ref §6.1)
T10 = np.arange(6) * 10.0
PB2I = [0, 1, 1, 0, 1, 0]
PB = [2, 0, 0, 2, 0, 2]
IODIDE = [1, 0, 0, 1, 0, 1]


def ref_fixture(**kw):
    """The reference workflow fixture (ref §6.1): 6 frames, dt = 10 fs, 3 frames per bin."""
    kw.setdefault("timestep_fs", 10.0)
    kw.setdefault("frames_per_bin", 3)
    from clusterdynamicsml.dynamics.analyze import dynamics_from_counts

    return dynamics_from_counts(T10, np.array([PB2I, PB, IODIDE]).T, ["Pb2I", "Pb", "I"], **kw)


def write_energy_file(tmp_path):
    """A small CP2K .ener file (8 rows, 10 fs apart) in tmp_path."""
    p = tmp_path / "run.ener"
    lines = ["#     Step Nr.          Time[fs]        Kin.[a.u.]          Temp[K]            Pot.[a.u.]        Cons Qty[a.u.]        UsedTime[s]"]
    for k in range(8):
        lines.append(f"{k * 20:8d} {k * 10.0:16.6f} {0.01 + k * 1e-4:20.10f} {300.0 + k:16.6f} {-100.0 - k * 0.01:20.10f} {-99.9:20.10f} {0.5:12.6f}")
    p.write_text("\n".join(lines) + "\n")
    return p


def half_box_counter(frame, rules):
    """A cheap counter that still reads every position: atoms of each element in the lower
    half of the box along x (label = element). Used by the streaming-memory checks."""
    symbols = np.asarray(frame.symbols)
    lower = frame.positions[:, 0] % frame.box.lengths[0] < 0.5 * frame.box.lengths[0]
    return Counter({el: int(np.count_nonzero(lower & (symbols == el))) for el in np.unique(symbols).tolist()})


# ---- chunk functions for the map_chunks tests --------------------------------------
def square_chunk(view, start, stop):
    """A deterministic chunk function: (start, stop, sum of squares, process id)."""
    return start, stop, sum(int(view[k]) ** 2 for k in range(start, stop)), os.getpid()


def exit_once_chunk(view, start, stop, marker):
    """Kills its process (os._exit) the first time any process runs the chunk starting at 8."""
    if start == 8:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os._exit(3)
    return square_chunk(view, start, stop)[:3]


def always_exit_chunk(view, start, stop):
    os._exit(4)


def raising_chunk(view, start, stop):
    if start == 4:
        raise ValueError(f"bad frame {start}")
    return start
