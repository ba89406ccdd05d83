"""The C++ atom-line parser of XYZ / extended XYZ / CP2K pos frames (``_core.parse_xyz_atoms``
behind ``io`` 's XYZ reader): the same frames, bit for bit, as the careful Python reader on every
shared XYZ file; errors still name the file and the line; species codes for the cluster stage."""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml import _core
from clusterdynamicsml.io import xyz as xyz_reader
from clusterdynamicsml.io.frames import FileFormatError, SymbolList, read_frames

XYZ_SETS = [
    "nacl_molten_1400K_zincware/NaCl_1400K_0.extxyz",
    "nacl_molten_1400K_zincware/NaCl_64_Atoms.extxyz",
    "nacl_melt_lammps_1450K/nacl_melt_1000_1450K.extxyz",
    "kcl_dlpoly_mdanalysistests/frames_xyz",
    "water_spce_lammps_mdanalysistests/frames_xyz",
    "lipf6_bn_fec_lammps/frames_xyz_wrap",
    "lipf6_bn_fec_lammps/frames_xyz_unwrap",
]


def _frames(path, slow: bool, monkeypatch):
    with monkeypatch.context() as m:
        if slow:
            m.setattr(xyz_reader, "_parse_xyz_fast", lambda *a, **k: None)
        return list(read_frames(path)[::7])


@pytest.mark.shared_data
@pytest.mark.parametrize("rel", XYZ_SETS)
def test_fast_reader_matches_careful_reader(shared_data, rel, monkeypatch):
    fast = _frames(shared_data / rel, False, monkeypatch)
    slow = _frames(shared_data / rel, True, monkeypatch)
    assert len(fast) == len(slow) > 0
    for a, b in zip(fast, slow):
        assert isinstance(a.symbols, SymbolList) and a.symbols.codes is not None
        assert not isinstance(b.symbols, SymbolList) or b.symbols.codes is None
        assert a.symbols == b.symbols
        assert a.positions.tobytes() == b.positions.tobytes() and a.positions.dtype == np.float64
        assert a.box == b.box and a.time_fs == b.time_fs and a.info.keys() == b.info.keys()
        assert [a.symbols.table[c] for c in a.symbols.codes] == b.symbols


def _write(tmp_path, text, name="t.extxyz"):
    p = tmp_path / name
    p.write_bytes(text.encode())
    return p


def _frame_text(n, rows, time=None):
    head = 'Lattice="10 0 0 0 10 0 0 0 10" Properties=species:S:1:pos:R:3'
    if time is not None:
        head += f" time={time}"
    return f"{n}\n{head}\n" + "".join(r + "\n" for r in rows)


GOOD = ["Pb 1.0 2.0 3.0", "I 4.0 5.0 6.0"]


@pytest.mark.parametrize("bad_row, message", [
    ("I 4.0 5.0 x", "non-numeric coordinate"),
    ("I 4.0 5.0", "expected 4 columns"),
    ("I 4.0 5.0 nan", "NaN or infinite"),
    ("Xq 4.0 5.0 6.0", "Xq"),
])
def test_errors_name_file_and_line(tmp_path, bad_row, message):
    # frame 3 (lines 9-12), its second atom line is line 12
    text = _frame_text(2, GOOD, 0) + _frame_text(2, GOOD, 1) + _frame_text(2, [GOOD[0], bad_row], 2)
    p = _write(tmp_path, text)
    src = read_frames(p)
    assert src[0].positions.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    with pytest.raises(FileFormatError, match=message) as err:
        src[2]
    assert err.value.path == str(p) and err.value.line == 12
    assert f"{p}, line 12" in str(err.value)


def test_single_file_errors_and_blank_lines(tmp_path):
    # a folder of one-frame files: blank lines between atoms are allowed, extra atoms are not
    (tmp_path / "ok").mkdir()
    (tmp_path / "bad").mkdir()
    _write(tmp_path, "2\ncomment\n\nPb 1 2 3\n   \nI 4 5 6\n\n", "ok/frame_0000.xyz")
    f = read_frames(tmp_path / "ok", box=[10, 10, 10])[0]
    assert f.symbols == ["Pb", "I"] and f.positions[1].tolist() == [4.0, 5.0, 6.0]
    assert f.symbols.codes is not None  # read by the C++ parser
    extra = _write(tmp_path, "2\ncomment\nPb 1 2 3\nI 4 5 6\nI 7 8 9\n", "bad/frame_0000.xyz")
    with pytest.raises(FileFormatError, match="more lines than the atom count") as err:
        read_frames(tmp_path / "bad", box=[10, 10, 10])[0]
    assert err.value.path == str(extra) and err.value.line == 5


def test_plain_xyz_extra_columns_and_cp2k_comment(tmp_path):
    text = (" 2\n i =        5, time =       2.500, E =     -12.5\n Pb 1.0 2.0 3.0 9 9\n I +4.0 5e0 -6.0E-1\n")
    p = _write(tmp_path, text, "run-pos-1.xyz")
    f = read_frames(p, box=[10, 10, 10])[0]
    assert f.time_fs == 2.5 and f.info == {"step": 5, "E": -12.5}
    assert f.positions.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, -0.6]]
    assert f.symbols.codes.tolist() == [0, 1]


def test_symbol_list_drops_codes_when_changed():
    s = SymbolList.from_codes(np.array([1, 0, 1], dtype=np.int32), ("Pb", "I"))
    assert s == ["I", "Pb", "I"] and s.codes.tolist() == [1, 0, 1]
    s[0] = "Pb"
    assert s.codes is None and s.table is None
    t = SymbolList.from_codes(np.array([0], dtype=np.int32), ("Pb",))
    t.append("I")
    assert t.codes is None


def test_kernel_errors_are_clear():
    with pytest.raises(ValueError, match="atom line 2 of the frame: the frame ends after 1 of 2"):
        _core.parse_xyz_atoms(b"Pb 1 2 3\n", 0, 2, 0, 1, -1, False)
    with pytest.raises(ValueError, match="expected 5 columns, got 4"):
        _core.parse_xyz_atoms(b"Pb 1 2 3\n", 0, 1, 0, 1, 5, False)
    with pytest.raises(ValueError, match="column layout"):
        _core.parse_xyz_atoms(b"Pb 1 2 3\n", 0, 1, 1, 0, -1, False)
    with pytest.raises(ValueError, match="offset"):
        _core.parse_xyz_atoms(b"Pb 1 2 3\n", 99, 1, 0, 1, -1, False)
    pos, codes, tokens = _core.parse_xyz_atoms(b"x\nPb 1 2 3", 2, 1, 0, 1, -1, False)  # no final newline
    assert pos.tolist() == [[1.0, 2.0, 3.0]] and tokens == [b"Pb"]
