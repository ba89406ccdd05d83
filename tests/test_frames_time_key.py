"""The extended-XYZ time key is read whatever its case (LAMMPS conversions write ``Time=``)."""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml.io import read_frames


@pytest.mark.parametrize("key", ["time", "Time", "TIME"])
def test_time_key_any_case_gives_the_file_times(tmp_path, key):
    p = tmp_path / "traj.extxyz"
    with open(p, "w") as fh:
        fh.writelines(f'2\nLattice="9 0 0 0 9 0 0 0 9" Properties=species:S:1:pos:R:3 {key}={40.0 * k:.1f} '
                     f'pbc="T T T"\nNa 0 0 0\nCl 2.8 0 0\n' for k in range(4))
    src = read_frames(p)
    times = [f.time_fs for f in src]
    assert times == [0.0, 40.0, 80.0, 120.0]
    assert not any("0.5 fs" in w for w in src.warnings)


def test_runtime_key_is_not_a_time(tmp_path):
    p = tmp_path / "traj.xyz"
    p.write_text("".join(f"1\nruntime={7 * k} Time={10 * k}\nNa 0 0 0\n" for k in range(3)))
    assert [f.time_fs for f in read_frames(p)] == [0.0, 10.0, 20.0]


@pytest.mark.shared_data
def test_shared_lammps_nacl_frames_are_40_fs_apart(shared_data):
    path = shared_data / "nacl_melt_lammps_1450K" / "nacl_melt_1000_1450K.extxyz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    times = np.array([f.time_fs for f in read_frames(path, stop=5)])
    np.testing.assert_allclose(times, [0.0, 40.0, 80.0, 120.0, 160.0])
