"""CP2K .ener reader (ref §1.9): columns, units, and errors naming file and line."""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml.io.energy import EnergyData, read_cp2k_ener
from clusterdynamicsml.io.frames import FileFormatError

HEADER = "#     Step Nr.          Time[fs]        Kin.[a.u.]          Temp[K]            Pot.[a.u.]        Cons Qty[a.u.]        UsedTime[s]\n"


def write(tmp_path, body, name="traj.ener"):
    p = tmp_path / name
    p.write_text(HEADER + body)
    return p


def test_reads_the_five_columns(tmp_path):
    p = write(tmp_path, "0 0.0 0.0123 300.5 -1234.5 -1234.4 0.0\n\n  10  5.0   0.0130 310.0 -1234.6 -1234.4 1.2 # trailing comment\n")
    e = read_cp2k_ener(p)
    assert e.filepath == str(p) and len(e) == 2
    assert e.step.tolist() == [0, 10] and e.step.dtype == np.int64
    assert e.time_fs.tolist() == [0.0, 5.0]
    assert e.kinetic.tolist() == [0.0123, 0.0130]
    assert e.temperature.tolist() == [300.5, 310.0]
    assert e.potential.tolist() == [-1234.5, -1234.6]


def test_series_window_and_quantities(tmp_path):
    p = write(tmp_path, "".join(f"{k} {k * 0.5} 0.01 {300 + k} -1.0 -1.0 0.1\n" for k in range(10)))
    e = read_cp2k_ener(p)
    t, v = e.series("temperature", 1.0, 2.0)
    assert t.tolist() == [1.0, 1.5, 2.0] and v.tolist() == [302.0, 303.0, 304.0]
    assert e.series("kinetic")[1].size == 10
    with pytest.raises(ValueError, match="energy quantity must be one of"):
        e.series("pressure")


def test_roundtrip_dict(tmp_path):
    e = read_cp2k_ener(write(tmp_path, "0 0.0 0.1 300 -1 -1 0\n1 0.5 0.2 301 -2 -2 0\n"))
    assert EnergyData.from_dict(e.to_dict()) == e
    bad = e.to_dict()
    bad["time_fs"] = [0.0]
    with pytest.raises(ValueError, match="equal lengths"):
        EnergyData.from_dict(bad)


@pytest.mark.parametrize(
    "body, line, match",
    [
        ("0 0.0 0.1 300\n", 2, "at least 5 numeric columns"),
        ("0 0.0 0.1 300 -1\n1 0.5 abc 300 -1\n", 3, "expected numbers"),
        ("0 0.0 0.1 nan -1\n", 2, "non-finite"),
        ("0.5 0.0 0.1 300 -1\n", 2, "step column must be an integer"),
        ("0 5.0 0.1 300 -1\n1 4.0 0.1 300 -1\n", 3, "time goes backwards"),
    ],
)
def test_errors_name_file_and_line(tmp_path, body, line, match):
    p = write(tmp_path, body)
    with pytest.raises(FileFormatError, match=match) as info:
        read_cp2k_ener(p)
    assert info.value.line == line
    assert str(info.value).startswith(f"{p}, line {line}:")
    assert isinstance(info.value, ValueError)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(FileFormatError, match="no data lines"):
        read_cp2k_ener(write(tmp_path, "# only comments\n"))
    with pytest.raises(FileNotFoundError, match="CP2K .ener file not found"):
        read_cp2k_ener(tmp_path / "nope.ener")
