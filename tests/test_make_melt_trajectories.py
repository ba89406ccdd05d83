"""scripts/make_melt_trajectories.py: Fumi-Tosi coefficients, box size and the dump -> extended XYZ
conversion (the LAMMPS run itself is not exercised here)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from clusterdynamicsml.io import read_frames

_SPEC = importlib.util.spec_from_file_location(
    "make_melt_trajectories", Path(__file__).resolve().parents[1] / "scripts" / "make_melt_trajectories.py")
mmt = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(mmt)


@pytest.mark.shared_data
def test_nacl_coefficients_match_the_shared_input(shared_data):
    path = shared_data / "nacl_melt_lammps_1450K" / "in.nacl"
    if not path.exists():
        pytest.skip(f"{path} not found")
    shared = {}
    for line in path.read_text().splitlines():
        if line.startswith("pair_coeff"):
            f = line.split()
            shared[(int(f[1]), int(f[2]))] = [float(x) for x in f[3:8]]
    ours = mmt.pair_coeffs("NaCl")
    assert set(shared) == set(ours)
    for k, v in shared.items():
        np.testing.assert_allclose(ours[k], v, rtol=2e-4, err_msg=str(k))


def test_pauling_factors_and_dispersion_units():
    kcl = mmt.pair_coeffs("KCl")
    a = {k: v[0] for k, v in kcl.items()}
    assert a[(1, 1)] / a[(1, 2)] == pytest.approx(1.25) and a[(2, 2)] / a[(1, 2)] == pytest.approx(0.75)
    assert a[(1, 2)] == pytest.approx(0.338e-19 / 1.602176634e-19)
    assert kcl[(1, 2)][2] == pytest.approx(1.463 + 1.585)            # sigma = r_K + r_Cl
    assert kcl[(1, 2)][3] == pytest.approx(48.0 * 0.6241509, rel=1e-6)  # 48e-60 erg cm^6 in eV A^6
    assert kcl[(1, 2)][4] < 0                                           # -D: attractive r^-8
    with pytest.raises(ValueError, match="unknown salt 'LiF'"):
        mmt.pair_coeffs("LiF")


def test_box_length_from_density():
    # 500 NaCl (58.443 g/mol) at 1.5 g/cm3: the 31.85 A box of the shared run
    assert mmt.box_length("NaCl", 1000, 1.5) == pytest.approx(31.86, abs=0.01)
    assert mmt.box_length("KCl", 1000, 1.44) ** 3 * 1.44 == pytest.approx(
        mmt.box_length("KCl", 1000, 1.0) ** 3, rel=1e-12)


def _dump(frames, lo=-1.0, hi=9.0):
    out = []
    for step, rows in frames:
        out += ["ITEM: TIMESTEP", str(step), "ITEM: NUMBER OF ATOMS", str(len(rows)),
                "ITEM: BOX BOUNDS pp pp pp"] + [f"{lo} {hi}"] * 3 + ["ITEM: ATOMS id type x y z"]
        out += [" ".join(str(x) for x in r) for r in rows]
    return "\n".join(out) + "\n"


def test_convert_dump_wraps_and_times(tmp_path):
    dump = tmp_path / "traj.dump"
    dump.write_text(_dump([(0, [(1, 1, 0.0, 0.5, 8.5), (2, 2, 2.0, 0.5, 0.5)]),
                           (20, [(1, 1, -1.5, 9.25, 3.0), (2, 2, 10.0, 0.5, -1.0)])]))
    out = tmp_path / "t.extxyz"
    assert mmt.convert_dump(dump, out, 2.0, {"1": "Na", "2": "Cl"}) == 2
    assert not (tmp_path / "t.extxyz.part").exists()
    frames = list(read_frames(out))
    assert [f.time_fs for f in frames] == [0.0, 40.0]
    assert frames[1].symbols == ["Na", "Cl"]
    np.testing.assert_allclose(np.diag(frames[0].box.matrix), [10.0] * 3)
    # shifted by the box origin (-1) and wrapped into [0, 10)
    np.testing.assert_allclose(frames[0].positions, [[1.0, 1.5, 9.5], [3.0, 1.5, 1.5]])
    np.testing.assert_allclose(frames[1].positions, [[9.5, 0.25, 4.0], [1.0, 1.5, 0.0]])


def test_convert_dump_rejects_a_truncated_frame(tmp_path):
    dump = tmp_path / "traj.dump"
    dump.write_text(_dump([(0, [(1, 1, 0.0, 0.5, 8.5), (2, 2, 2.0, 0.5, 0.5)])]).rsplit("\n", 2)[0] + "\n")
    with pytest.raises((ValueError, IndexError)):
        mmt.convert_dump(dump, tmp_path / "t.extxyz", 2.0, {"1": "Na", "2": "Cl"})
    assert not (tmp_path / "t.extxyz").exists()


def test_run_writes_frame_times_of_the_md_time_step(tmp_path, monkeypatch):
    """`run` (LAMMPS replaced by a stand-in that writes the dump LAMMPS would): a dump every
    40 fs at a 2 fs time step has MD steps 0, 20, 40, so Time= is 0, 40, 80 fs (it was
    0, 800, 1600: the step count was multiplied by the dump interval)."""
    class FakeLammps:
        def __init__(self, cmdargs=None):
            pass

        def version(self):
            return 20250722

        def file(self, name):
            Path("traj.dump").write_text(_dump([(s, [(1, 1, 0.5, 0.5, 0.5), (2, 2, 3.0, 0.5, 0.5)])
                                                for s in (0, 20, 40)]))
            Path("log.lammps").write_text("Step Temp Press PotEng\n0 1450 1 -1\n20 1440 2 -2\nLoop time of 1\n")

        def close(self):
            pass

    monkeypatch.setattr(mmt, "_import_lammps", lambda: (None, SimpleNamespace(lammps=FakeLammps)))
    out = tmp_path / "melt"
    mmt.main(["run", "--salt", "NaCl", "--temperature", "1450", "--density", "1.5", "--n-ions", "2",
              "--timestep-fs", "2", "--dump-fs", "40", "--equil-ps", "0.04", "--prod-ps", "0.08",
              "--out", str(out), "--no-analyze"])
    frames = list(read_frames(next(out.glob("*.extxyz"))))
    assert [f.time_fs for f in frames] == [0.0, 40.0, 80.0]
