"""Frames I/O: readers, time axis, box resolution, writers, streaming (SPEC §1, ref §1.1/1.2/1.5, V8-V10)."""
from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import pickle
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import clusterdynamicsml as cdml
from clusterdynamicsml.chem import (
    ATOMIC_NUMBERS,
    SYMBOLS,
    atomic_number,
    element_from_atom_name,
    element_from_token,
    normalize_element,
)
from clusterdynamicsml.geometry.box import Box
from clusterdynamicsml.io import frames as fr
from clusterdynamicsml.io.frames import (
    FileFormatError,
    Frame,
    FrameSource,
    read_frames,
    read_structure,
    write_frames,
    write_pdb,
    write_xyz,
)

# --------------------------------------------------------------------------- helpers


def xyz_text(symbols, positions, comment=""):
    lines = [str(len(symbols)), comment]
    lines += [f"{s} {x:.6f} {y:.6f} {z:.6f}" for s, (x, y, z) in zip(symbols, positions)]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def random_structure(rng, n=5, elements=("Pb", "I", "O")):
    syms = [elements[k % len(elements)] for k in range(n)]
    return syms, rng.uniform(-5, 15, size=(n, 3))


def multi_xyz(path: Path, n_frames: int, n_atoms: int = 4, comment=lambda k: f"frame {k}", seed=0) -> list:
    rng = np.random.default_rng(seed)
    truth = []
    with open(path, "w") as fh:
        for k in range(n_frames):
            syms, pos = random_structure(rng, n_atoms)
            fh.write(xyz_text(syms, pos, comment(k)))
            truth.append((syms, np.round(pos, 6)))
    return truth


def pdb_atom(serial: str, name: str, res: str, resseq: str, xyz, element: str = "", record="HETATM") -> str:
    x, y, z = xyz
    return (f"{record:<6s}{serial:>5s} {name:<4s} {res:<4s}X{resseq:>4s}    "
            f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00          {element:>2s}")


def raises_at(path, line, match=None):
    """pytest.raises for a FileFormatError naming ``path`` and ``line``."""
    pattern = re.escape(f"{path}, line {line}:") + (f".*{match}" if match else "")
    return pytest.raises(FileFormatError, match=pattern)


# --------------------------------------------------------------------------- elements


@pytest.mark.parametrize("token, expected", [
    ("Pb", "Pb"), ("PB", "Pb"), ("pb", "Pb"), ("Pb1", "Pb"), ("Pb12", "Pb"), ("I", "I"), ("i", "I"),
    ("O3", "O"), ("K+", "K"), ("Cl-", "Cl"), ("CA", "Ca"), ("C1A", "C"), (b"Na", "Na"), (" Li ", "Li"),
])
def test_element_from_token(token, expected):
    # XYZ atom tokens: a symbol with an optional index or charge (normalize_element is strict,
    # symbols only: see tests/test_chem.py)
    assert element_from_token(token) == expected


@pytest.mark.parametrize("token", ["X", "Xx1", "1", "", "Q", "OW", "*"])
def test_element_from_token_rejects_unknown(token):
    with pytest.raises(ValueError, match="unknown element"):
        element_from_token(token)


def test_normalize_element_map_and_isotopes():
    assert normalize_element("OW", {"OW": "O"}) == "O"
    assert normalize_element("2", {"2": "h"}) == "H"
    assert normalize_element("D", isotopes_as_hydrogen=True) == "H"
    assert element_from_token("D1", isotopes_as_hydrogen=True) == "H"
    with pytest.raises(ValueError, match="not an element"):
        normalize_element("OW", {"OW": "Zz"})


def test_periodic_table():
    assert len(SYMBOLS) == 118 and len(set(SYMBOLS)) == 118
    assert ATOMIC_NUMBERS["H"] == 1 and ATOMIC_NUMBERS["Pb"] == 82 and ATOMIC_NUMBERS["I"] == 53
    assert ATOMIC_NUMBERS["Og"] == 118 and atomic_number("PB") == 82


@pytest.mark.parametrize("field, residue, expected", [
    (" CA ", "ALA", "C"),     # PDB alignment: column 13 blank -> one-letter element
    ("1HB ", "ALA", "H"),
    ("CA  ", "CA", "Ca"),     # ion residue named like the atom
    ("LI  ", "LI", "Li"),
    ("Pb1 ", "PBI", "Pb"),    # lower-case second letter
    ("ZN  ", "HOH", "Zn"),    # Z alone is not an element
    ("C1  ", "DMF", "C"),
    ("O1  ", "DMF", "O"),
    ("CA1 ", "DMF", "C"),     # ambiguous -> first letter, as the reference tool
])
def test_element_from_atom_name(field, residue, expected):
    assert element_from_atom_name(field, residue) == expected


def test_element_from_atom_name_errors():
    with pytest.raises(ValueError, match="blank atom name"):
        element_from_atom_name("    ")
    with pytest.raises(ValueError, match="cannot tell"):
        element_from_atom_name("XX1 ", "UNK")
    assert element_from_atom_name("OW  ", "SOL", {"OW": "O"}) == "O"


# --------------------------------------------------------------------------- XYZ reading and writing


def test_write_xyz_round_trip_plain(tmp_path):
    rng = np.random.default_rng(1)
    syms, pos = random_structure(rng, 7)
    p = tmp_path / "one.xyz"
    write_xyz(p, syms, pos, comment="hello world")
    src = read_frames(p)
    assert len(src) == 1 and src.box_source == "none"
    f = src[0]
    assert f.symbols == syms
    np.testing.assert_allclose(f.positions, pos, atol=1e-8)
    assert f.positions.dtype == np.float64 and f.positions.shape == (7, 3)
    assert f.info == {"comment": "hello world"} and f.box is None


@pytest.mark.parametrize("box", [[10.0, 11.0, 12.5], [9.0, 10.0, 11.0, 80.0, 95.0, 105.0]])
def test_write_xyz_round_trip_with_box(tmp_path, box):
    rng = np.random.default_rng(2)
    syms, pos = random_structure(rng, 6)
    p = tmp_path / "boxed.xyz"
    write_xyz(p, syms, pos, comment='a "quoted" note', box=box)
    f = read_frames(p)[0]
    np.testing.assert_allclose(f.box.matrix, Box.coerce(box).matrix, atol=1e-9)
    np.testing.assert_allclose(f.positions, pos, atol=1e-8)
    assert f.info["comment"] == 'a "quoted" note' and f.info["pbc"] == (True, True, True)


def test_write_xyz_validates(tmp_path):
    with pytest.raises(ValueError, match="unknown element"):
        write_xyz(tmp_path / "x.xyz", ["Xq"], [[0, 0, 0]])
    with pytest.raises(ValueError, match="disagree"):
        write_xyz(tmp_path / "x.xyz", ["H", "H"], [[0, 0, 0]])
    with pytest.raises(ValueError, match="one line"):
        write_xyz(tmp_path / "x.xyz", ["H"], [[0, 0, 0]], comment="a\nb")
    with pytest.raises(ValueError, match="NaN"):
        write_xyz(tmp_path / "x.xyz", ["H"], [[0, np.nan, 0]])
    assert list(tmp_path.iterdir()) == []  # nothing half-written, no temporary files left


def test_write_is_atomic_on_failure(tmp_path):
    p = tmp_path / "traj.xyz"
    write_xyz(p, ["H"], [[0, 0, 0]])
    before = p.read_text()

    def frames():
        yield Frame(0, 0, 0.0, ["H"], np.zeros((1, 3)))
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_frames(p, frames())
    assert p.read_text() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["traj.xyz"]


def test_extended_xyz_keys_and_properties(tmp_path):
    p = write(tmp_path / "ext.xyz",
              '3\nProperties=pos:R:3:species:S:1:force:R:3 energy=-1.5 step=7 flag name="a b" '
              'vec="1 2 3" ok=T Lattice="10 0 0 0 11 0 0 0 12" pbc="T T T" time=2.5\n'
              "0 0 0 Pb 1 1 1\n1 0 0 I 2 2 2\n0 1 0 O 3 3 3\n")
    src = read_frames(p)
    f = src[0]
    assert f.symbols == ["Pb", "I", "O"]
    np.testing.assert_array_equal(f.positions, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    assert f.info["energy"] == -1.5 and f.info["step"] == 7 and f.info["flag"] is True
    assert f.info["name"] == "a b" and f.info["vec"] == [1, 2, 3] and f.info["ok"] is True
    assert f.time_fs == 2.5 and src.time_source == "file"
    assert f.box == Box([10, 11, 12]) and src.box_source == "file"


def test_extended_xyz_pbc_false_means_no_box(tmp_path):
    p = write(tmp_path / "nopbc.xyz", '1\nLattice="10 0 0 0 10 0 0 0 10" pbc="F F F"\nH 0 0 0\n')
    src = read_frames(p)
    assert src[0].box is None and src.box_source == "none"
    np.testing.assert_array_equal(src[0].info["lattice"], np.eye(3) * 10)


def test_triclinic_lattice(tmp_path):
    m = np.array([[10.0, 0, 0], [2.0, 9.0, 0], [1.0, -1.5, 8.0]])
    write_xyz(tmp_path / "tri.xyz", ["Na"], [[100.0, -50.0, 3.0]], box=Box.from_matrix(m))
    f = read_frames(tmp_path / "tri.xyz")[0]
    np.testing.assert_allclose(f.box.matrix, m)
    assert not f.box.is_orthorhombic


def test_far_outside_coordinates_are_preserved(tmp_path):
    """Wrapping is not the reader's job (ref V10): coordinates come back exactly as written."""
    pos = np.array([[-1234.5, 0.25, 9876.125], [1e5, -3e4, 0.0]])
    write_xyz(tmp_path / "far.xyz", ["K", "Cl"], pos, box=[10, 10, 10])
    f = read_frames(tmp_path / "far.xyz")[0]
    np.testing.assert_array_equal(f.positions, pos)
    write_pdb(tmp_path / "far.pdb", ["K"], [[-999.0, 9999.0, 500.5]], box=[10, 10, 10])
    np.testing.assert_array_equal(read_frames(tmp_path / "far.pdb")[0].positions, [[-999.0, 9999.0, 500.5]])


def test_multi_frame_xyz_index_random_access_and_slicing(tmp_path):
    p = tmp_path / "traj.xyz"
    truth = multi_xyz(p, 23, n_atoms=5)
    src = read_frames(p, timestep_fs=2.0)
    assert len(src) == 23 and src.time_source == "sequential" and src.timestep_fs == 2.0
    assert any("no per-frame times" in w for w in src.warnings)
    frames = list(src)
    for k, f in enumerate(frames):
        assert f.index == k and f.source_index == k and f.time_fs == 2.0 * k
        assert f.symbols == truth[k][0]
        np.testing.assert_array_equal(f.positions, truth[k][1])
        assert f.info == {"comment": f"frame {k}"}
    for k in (22, 0, 13, -1):
        np.testing.assert_array_equal(src[k].positions, truth[k][1])
    sub = src[3:20:4]
    assert isinstance(sub, FrameSource) and len(sub) == 5
    assert [f.source_index for f in sub] == [3, 7, 11, 15, 19]
    np.testing.assert_array_equal(sub.times_fs, [6.0, 14.0, 22.0, 30.0, 38.0])
    assert [f.index for f in src.chunk(5, 9)] == [5, 6, 7, 8]
    assert src.chunks(10) == [(0, 10), (10, 20), (20, 23)]
    with pytest.raises(IndexError):
        src[23]
    picked = src[[4, 0, 22]]
    assert [f.source_index for f in picked] == [4, 0, 22] and picked.times_fs.tolist() == [8.0, 0.0, 44.0]
    with pytest.raises(TypeError):
        src["a"]
    with pytest.raises(TypeError):
        src[np.array([0.5])]
    sel = read_frames(p, start=2, stop=-3, stride=5)
    np.testing.assert_array_equal(sel.source_indices, [2, 7, 12, 17])
    np.testing.assert_array_equal(sel.times_fs, 0.5 * np.array([2, 7, 12, 17]))


def test_index_is_independent_of_block_size(tmp_path, monkeypatch):
    """The byte-offset scan reads fixed blocks; frames straddling blocks must be found exactly."""
    p = tmp_path / "traj.xyz"
    with open(p, "w") as fh:  # irregular frames, blank lines between frames, no final newline
        rng = np.random.default_rng(5)
        for k in range(40):
            n = int(rng.integers(0, 6))
            syms, pos = random_structure(rng, n)
            fh.write(xyz_text(syms, pos, f"time={k * 0.25}"))
            if k % 7 == 0:
                fh.write("\n")
    text = p.read_text().rstrip("\n")
    p.write_text(text)
    ref = read_frames(p)
    for block in (16, 37, 64, 1000):
        monkeypatch.setattr(fr, "_BLOCK", block)
        src = read_frames(p)
        assert len(src) == 40
        np.testing.assert_array_equal(src._backend.offsets, ref._backend.offsets)
        np.testing.assert_array_equal(src.times_fs, 0.25 * np.arange(40))
        for a, b in zip(src, ref):
            assert a.symbols == b.symbols
            np.testing.assert_array_equal(a.positions, b.positions)


def test_cp2k_pos_file_times_steps_and_pbc_name(tmp_path):
    p = tmp_path / "pbi2_dmf_pbc_17p07x_041-pos-1.xyz"
    with open(p, "w") as fh:
        for k in range(4):
            fh.write(f"2\n i =     {10 * k:5d}, time =     {5.0 * k:9.3f}, E =   -123.{k}456\n"
                     "Pb 0 0 0\nI1 3 0 0\n")
    src = read_frames(p)
    assert src.time_source == "file" and src.timestep_fs == 5.0
    np.testing.assert_array_equal(src.times_fs, [0, 5, 10, 15])
    assert src.box_source == "name" and src[0].box == Box([17.07] * 3)
    f = src[2]
    assert f.info == {"step": 20, "E": -123.2456} and f.symbols == ["Pb", "I"]
    # the explicit timestep does not override the times written by CP2K, but it is checked
    src2 = read_frames(p, timestep_fs=1.0)
    np.testing.assert_array_equal(src2.times_fs, [0, 5, 10, 15])
    assert any("not the given timestep" in w for w in src2.warnings)


@pytest.mark.parametrize("name, lengths", [
    ("x_pbc_17p07x_041-pos-1.xyz", [17.07, 17.07, 17.07]),
    ("run_pbc_20-pos-1.xyz", [20, 20, 20]),
    ("run_pbc_10p5x11x12p25-pos-1.xyz", [10.5, 11, 12.25]),
    ("run-pos-1.xyz", None),
])
def test_box_from_pbc_name(name, lengths):
    box = fr.box_from_pbc_name(name)
    assert (box is None) if lengths is None else np.allclose(box.lengths, lengths)


# --------------------------------------------------------------------------- XYZ errors


def test_xyz_errors_name_file_and_line(tmp_path):
    good = "2\nc\nPb 0 0 0\nI 1 1 1\n"
    cases = [
        ("unknown.xyz", "2\nc\nPb 0 0 0\nXx 1 1 1\n", 4, "unknown element 'Xx'"),
        ("nonnum.xyz", "2\nc\nPb 0 0 0\nI 1 abc 1\n", 4, "non-numeric coordinate"),
        ("nan.xyz", "2\nc\nPb 0 0 0\nI 1 nan 1\n", 4, "NaN or infinite"),
        ("short.xyz", "2\nc\nPb 0 0\nI 1 1 1\n", 3, "expected 'element x y z'"),
        ("count.xyz", "two\nc\nPb 0 0 0\n", 1, "expected an atom count"),
        ("trunc.xyz", good + "3\nc\nPb 0 0 0\n", 5, "truncated frame.*says 3 atoms.*after 1 atom lines"),
        ("toofew.xyz", "3\nc\nPb 0 0 0\nI 1 1 1\n" + good, 6, "expected an atom count.*frame at line 1"),
        ("toomany.xyz", "1\nc\nPb 0 0 0\nI 1 1 1\n" + good, 4, "expected an atom count.*wrong atom count"),
        ("nocomment.xyz", good + "2", 5, "ends before the comment line"),
        ("lattice.xyz", '1\nLattice="1 2 3"\nH 0 0 0\n', 2, "9 numbers"),
        ("props.xyz", "1\nProperties=species:S:1:vel:R:3\nH 0 0 0\n", 2, "must contain species:S:1 and pos:R:3"),
        ("propcols.xyz", "1\nProperties=species:S:1:pos:R:3:q:R:1\nH 0 0 0\n", 3, r"expected 5 columns"),
    ]
    for name, text, line, match in cases:
        p = write(tmp_path / name, text)
        with raises_at(p, line, match):
            list(read_frames(p))


def test_one_frame_file_errors(tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    write(d / "frame_0.xyz", "\n2\nc\nPb 0 0 0\n\nI 1 1 1\n\n")  # blank lines are dropped (ref §1.1)
    write(d / "frame_1.xyz", "3\nc\nPb 0 0 0\n\nI 1 1 1\n")
    write(d / "frame_2.xyz", "2\nc\nPb 0 0 0\nI 1 1 1\nO 2 2 2\n")
    write(d / "frame_3.xyz", "")
    src = read_frames(d)
    assert src[0].symbols == ["Pb", "I"]
    with raises_at(d / "frame_1.xyz", 1, "says 3 atoms, found 2"):
        src[1]
    with raises_at(d / "frame_2.xyz", 5, "more lines than the atom count"):
        src[2]
    with raises_at(d / "frame_3.xyz", 1, "empty file"):
        src[3]
    with raises_at(d / "frame_1.xyz", 1, "says 3 atoms"):
        list(src)
    ok = read_frames(d, skip_bad_frames=True)
    assert len(ok) == 1 and [s.file for s in ok.skipped] == [str(d / f"frame_{k}.xyz") for k in (1, 2, 3)]


def test_skip_bad_frames_records_file_line_reason(tmp_path):
    p = tmp_path / "traj.xyz"
    good = "2\nc\nPb 0 0 0\nI 1 1 1\n"
    write(p, good + "2\nc\nPb 0 0 0\nXx 1 1 1\n" + good + "2\nc\nPb 0 x 0\nI 1 1 1\n" + good + "2\nc\nPb 0 0 0\n")
    with pytest.raises(FileFormatError):
        list(read_frames(p))
    src = read_frames(p, skip_bad_frames=True)
    assert len(src) == 3
    assert [(s.line, s.reason.split(" (")[0]) for s in src.skipped] == [
        (21, "truncated frame: the count line"), (8, "unknown element 'Xx'"), (15, "non-numeric coordinate in 'Pb 0 x 0'")]
    assert all(s.file == str(p) for s in src.skipped)
    np.testing.assert_array_equal(src.source_indices, [0, 2, 4])
    assert all(f.n_atoms == 2 for f in src)


def test_skip_bad_frames_resyncs_after_bad_count(tmp_path):
    p = tmp_path / "traj.xyz"
    good = "2\nc\nPb 0 0 0\nI 1 1 1\n"
    write(p, good + "3\nc\nPb 0 0 0\nI 1 1 1\n" + good + good)
    src = read_frames(p, skip_bad_frames=True)
    assert len(src) >= 2 and src.skipped
    assert src.skipped[0].line == 5
    for f in src:
        assert f.symbols == ["Pb", "I"]


def test_crlf_line_endings(tmp_path):
    p = tmp_path / "dos.xyz"
    p.write_bytes(b"2\r\ntime=3 note=x\r\nPb 0 0 0\r\nI 1 1 1\r\n" * 3)
    src = read_frames(p)
    assert len(src) == 3 and src[2].symbols == ["Pb", "I"] and src[1].info == {"note": "x"}
    q = tmp_path / "dos.pdb"
    q.write_bytes(("CRYST1   10.000   10.000   10.000  90.00  90.00  90.00 P 1           1\r\n"
                   + pdb_atom("1", "PB1", "PBI", "1", (1, 2, 3), "Pb") + "\r\nEND\r\n").encode())
    f = read_frames(q)[0]
    assert f.symbols == ["Pb"] and f.box == Box([10] * 3)


def test_utf8_byte_order_mark(tmp_path):
    p = tmp_path / "bom.xyz"
    p.write_bytes(b"\xef\xbb\xbf" + b"1\nc\nNa 0 0 0\n1\nc\nCl 1 1 1\n")
    assert [f.symbols for f in read_frames(p)] == [["Na"], ["Cl"]]
    d = tmp_path / "f"
    d.mkdir()
    (d / "frame_0.xyz").write_bytes(b"\xef\xbb\xbf1\nc\nNa 0 0 0\n")
    assert read_frames(d)[0].symbols == ["Na"]
    q = tmp_path / "bom.pdb"
    q.write_bytes(b"\xef\xbb\xbf" + pdb_atom("1", "K", "K", "1", (0, 0, 0), "K").encode() + b"\n")
    assert read_frames(q)[0].symbols == ["K"]


def test_element_map_for_force_field_names(tmp_path):
    p = write(tmp_path / "w.xyz", "3\nwater\nOW 0 0 0\nHW1 1 0 0\nHW2 0 1 0\n")
    with raises_at(p, 3, "unknown element 'OW'"):
        read_frames(p)
    f = read_frames(p, element_map={"OW": "O", "HW1": "H", "HW2": "H"})[0]
    assert f.symbols == ["O", "H", "H"]


# --------------------------------------------------------------------------- PDB


def test_pdb_columns_residues_cryst1_and_inference(tmp_path):
    lines = [
        "REMARK test",
        "CRYST1   10.000   11.000   12.000  90.00  90.00  90.00 P 1           1",
        pdb_atom("1", "PB1", "PBI", "1", (1, 2, 3), "Pb"),
        pdb_atom("2", "I1", "PBI", "1", (4, 5, 6), "I"),
        pdb_atom("3", "LI", "LI", "2", (7, 8, 9)),              # element inferred from name + residue
        pdb_atom("4", " O1", "DMF", "3", (-1.5, 0, 2)),          # element inferred: PDB alignment
        pdb_atom("5", "C1", "DMF", "3", (0, 0, 0), record="ATOM"),
        "TER",
        "END",
    ]
    p = write(tmp_path / "a.pdb", "\n".join(lines) + "\n")
    src = read_frames(p)
    f = src[0]
    assert f.symbols == ["Pb", "I", "Li", "O", "C"]
    assert f.residues == ["PBI", "PBI", "LI", "DMF", "DMF"]
    np.testing.assert_array_equal(f.residue_ids, [1, 1, 2, 3, 3])
    assert f.atom_names == ["PB1", "I1", "LI", "O1", "C1"]
    np.testing.assert_array_equal(f.positions[3], [-1.5, 0, 2])
    assert f.box == Box([10, 11, 12]) and src.box_source == "file"


def test_pdb_triclinic_cryst1(tmp_path):
    p = write(tmp_path / "tri.pdb",
              "CRYST1   10.000   12.000   14.000  80.00  95.00 110.00 P 1           1\n"
              + pdb_atom("1", "NA", "NA", "1", (0, 0, 0), "Na") + "\nEND\n")
    box = read_frames(p)[0].box
    np.testing.assert_allclose(box.matrix, Box.from_parameters(10, 12, 14, 80, 95, 110).matrix)
    np.testing.assert_allclose(box.angles, [80, 95, 110])


def test_pdb_unit_cryst1_means_no_box(tmp_path):
    p = write(tmp_path / "nobox.pdb",
              "CRYST1    1.000    1.000    1.000  90.00  90.00  90.00 P 1           1\n"
              + pdb_atom("1", "NA", "NA", "1", (0, 0, 0), "Na") + "\n")
    assert read_frames(p)[0].box is None


def test_pdb_serial_overflow_hybrid36_and_duplicates(tmp_path):
    """Serial numbers are never used as keys (ref V8): overflow, hybrid-36, duplicates are fine."""
    lines = [
        pdb_atom("99999", "O1", "SOL", "9999", (0, 0, 0), "O"),
        pdb_atom("A0000", "H1", "SOL", "A000", (1, 0, 0), "H"),
        pdb_atom("*****", "H2", "SOL", "A000", (2, 0, 0), "H"),
        pdb_atom("A0000", "O1", "SOL", "A001", (3, 0, 0), "O"),   # duplicate serial
        pdb_atom("a0000", "O1", "SOL", "****", (4, 0, 0), "O"),   # overflowed residue number
        pdb_atom("a0001", "O1", "SOL", "****", (5, 0, 0), "O"),
    ]
    f = read_frames(write(tmp_path / "big.pdb", "\n".join(lines) + "\n"))[0]
    assert f.n_atoms == 6 and f.symbols == ["O", "H", "H", "O", "O", "O"]
    np.testing.assert_array_equal(f.positions[:, 0], np.arange(6))
    np.testing.assert_array_equal(f.residue_ids[:4], [9999, 10000, 10000, 10001])
    assert f.residue_ids[4] == f.residue_ids[5] == 10002


@pytest.mark.parametrize("value, width, text", [
    (99999, 5, "99999"), (100000, 5, "A0000"), (43770015, 5, "ZZZZZ"), (43770016, 5, "a0000"),
    (87440031, 5, "zzzzz"), (9999, 4, "9999"), (10000, 4, "A000"), (1223055, 4, "ZZZZ"), (2436111, 4, "zzzz"), (-999, 4, "-999"),
])
def test_hybrid36(value, width, text):
    assert fr.hybrid36_encode(value, width) == text
    assert fr.hybrid36_decode(text.rjust(width)) == value


def test_hybrid36_rejects():
    with pytest.raises(ValueError):
        fr.hybrid36_decode("*****")
    with pytest.raises(ValueError):
        fr.hybrid36_decode("Ab000")
    with pytest.raises(ValueError):
        fr.hybrid36_encode(87440032, 5)


def test_pdb_multi_model_and_end_separated(tmp_path):
    hdr = "CRYST1   20.000   20.000   20.000  90.00  90.00  90.00 P 1           1\n"
    models = "".join(
        f"MODEL     {k + 1:4d}\n" + pdb_atom("1", "K", "K", "1", (k, 0, 0), "K") + "\n"
        + pdb_atom("2", "CL", "CL", "2", (k, 1, 0), "Cl") + "\nENDMDL\n" for k in range(3)) + "END\n"
    src = read_frames(write(tmp_path / "models.pdb", hdr + models))
    assert len(src) == 3 and src.box_source == "file"
    for k, f in enumerate(src):
        assert f.symbols == ["K", "Cl"] and f.positions[0, 0] == k and f.box == Box([20] * 3)
        assert f.info["model"] == k + 1
    ends = "".join(hdr + pdb_atom("1", "K", "K", "1", (k, 0, 0), "K") + "\nEND\n" for k in range(4))
    src = read_frames(write(tmp_path / "ends.pdb", ends))
    assert len(src) == 4 and [f.positions[0, 0] for f in src] == [0, 1, 2, 3]


def test_pdb_errors_name_file_and_line(tmp_path):
    ok = pdb_atom("1", "PB1", "PBI", "1", (0, 0, 0), "Pb")
    cases = [
        ("coord.pdb", ok + "\n" + ok[:30] + "  1.x00" + ok[37:], 2, "non-numeric coordinate"),
        ("short.pdb", ok + "\n" + ok[:40], 2, "shorter than 54 columns"),
        ("elem.pdb", "REMARK\n" + ok[:76] + "Qq", 2, "unknown element 'Qq'"),
        ("noatoms.pdb", "REMARK nothing\nEND\n", 1, "no ATOM/HETATM records"),
        ("cryst.pdb", "CRYST1   10.000   abc\n" + ok, 1, "CRYST1 needs"),
    ]
    for name, text, line, match in cases:
        p = write(tmp_path / name, text + "\n")
        with raises_at(p, line, match):
            list(read_frames(p))


def test_pdb_folder_file_with_two_models_is_an_error(tmp_path):
    d = tmp_path / "f"
    d.mkdir()
    atom = pdb_atom("1", "K", "K", "1", (0, 0, 0), "K")
    write(d / "frame_0.pdb", f"MODEL 1\n{atom}\nENDMDL\nMODEL 2\n{atom}\nENDMDL\n")
    with raises_at(d / "frame_0.pdb", 4, "second MODEL"):
        read_frames(d)


def test_write_pdb_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    syms = ["Pb", "I", "I", "O", "C", "H", "Cl", "Na"]
    pos = np.round(rng.uniform(-20, 60, size=(8, 3)), 3)
    res = ["PBI", "PBI", "PBI", "DMF", "DMF", "DMF", "CL", "NA"]
    rid = [1, 1, 1, 10000, 10000, 10000, 123456, 7]
    box = Box.from_parameters(30, 31, 32, 85, 92, 101)
    write_pdb(tmp_path / "w.pdb", syms, pos, residues=res, residue_ids=rid, box=box, comment="label PbI2\nframe 3")
    f = read_frames(tmp_path / "w.pdb")[0]
    assert f.symbols == syms and f.residues == res
    np.testing.assert_array_equal(f.residue_ids, rid)
    np.testing.assert_allclose(f.positions, pos, atol=1e-9)
    np.testing.assert_allclose(f.box.matrix, box.matrix, atol=2e-3)
    text = (tmp_path / "w.pdb").read_text().splitlines()
    assert text[:2] == ["REMARK   label PbI2", "REMARK   frame 3"]
    assert all(len(ln) == 78 for ln in text if ln.startswith("HETATM"))
    # the atom names alone (element columns blanked) still give the elements
    blank = "\n".join(ln[:76] if ln.startswith("HETATM") else ln for ln in text)
    g = read_frames(write(tmp_path / "noel.pdb", blank + "\n"))[0]
    assert g.symbols == syms


def test_write_pdb_validates(tmp_path):
    with pytest.raises(ValueError, match="do not fit the PDB columns"):
        write_pdb(tmp_path / "x.pdb", ["H"], [[0, 0, -1000.0]])
    with pytest.raises(ValueError, match="at most 4"):
        write_pdb(tmp_path / "x.pdb", ["H"], [[0, 0, 0]], residues=["LONGER"])
    with pytest.raises(ValueError, match="PDB orientation"):
        write_pdb(tmp_path / "x.pdb", ["H"], [[0, 0, 0]], box=[[0, 10, 0], [10, 0, 0], [0, 0, 10]])
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- folders and time axis


def make_folder(d: Path, names, n_atoms=2, comment=lambda name: "c"):
    d.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        write(d / name, xyz_text(["Pb", "I"][:n_atoms] * 1, [[k, 0, 0], [k, 1, 0]][:n_atoms], comment(name)))
    return d


def test_folder_natural_sort_on_last_integer(tmp_path):
    names = ["run2_frame_10.xyz", "run2_frame_2.xyz", "run2_frame_1.xyz", "zeta.xyz", "Alpha.xyz", "notes.txt"]
    d = make_folder(tmp_path / "f", [n for n in names if n.endswith(".xyz")])
    write(d / "notes.txt", "ignored")
    src = read_frames(d)
    assert [Path(f.source).name for f in src] == ["run2_frame_1.xyz", "run2_frame_2.xyz", "run2_frame_10.xyz",
                                                 "Alpha.xyz", "zeta.xyz"]
    np.testing.assert_array_equal(src.source_indices, [1, 2, 10, 3, 4])
    assert src.time_source == "sequential"
    np.testing.assert_array_equal(src.times_fs, 0.5 * np.arange(5))


def test_folder_mixed_or_empty_is_an_error(tmp_path):
    d = make_folder(tmp_path / "mixed", ["frame_0.xyz"])
    write(d / "frame_1.pdb", pdb_atom("1", "K", "K", "1", (0, 0, 0), "K") + "\n")
    with pytest.raises(ValueError, match="mixes 1 XYZ and 1 PDB"):
        read_frames(d)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .xyz or .pdb"):
        read_frames(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        read_frames(tmp_path / "missing")


def test_time_axis_frame_names_times_timestep(tmp_path):
    d = make_folder(tmp_path / "f", ["frame_0004.xyz", "frame_0002.xyz", "FRAME_0010.XYZ"])
    src = read_frames(d, timestep_fs=2.0)
    assert src.time_source == "frame_names" and src.warnings == []
    np.testing.assert_array_equal(src.times_fs, [4.0, 8.0, 20.0])
    assert read_frames(d).timestep_fs == 0.5  # the default


def test_time_axis_metadata_json_first(tmp_path):
    d = make_folder(tmp_path / "f", ["frame_0000.xyz", "frame_0001.xyz"])
    meta = {"written_frames": [{"filename": "frame_0000.xyz", "frame_index": 0, "time_fs": 100.0},
                               {"filename": "frame_0001.xyz", "frame_index": 1, "time_fs": 102.5}],
            "selection": {"frame_timestep_fs": 2.5}}
    write(d / fr.EXPORT_METADATA_NAME, json.dumps(meta))
    src = read_frames(d)
    assert src.time_source == "metadata" and src.timestep_fs == 2.5
    np.testing.assert_array_equal(src.times_fs, [100.0, 102.5])
    # incomplete metadata: warning, then the frame_<N> rule
    meta["written_frames"][1]["time_fs"] = None
    write(d / fr.EXPORT_METADATA_NAME, json.dumps(meta))
    src = read_frames(d, timestep_fs=1.0)
    assert src.time_source == "frame_names" and any("written_frames" in w for w in src.warnings)
    np.testing.assert_array_equal(src.times_fs, [0.0, 1.0])


def test_time_axis_sequential_from_folder_tag(tmp_path):
    d = make_folder(tmp_path / "splitxyz_f995_t497p5fs", ["a_1.xyz", "a_2.xyz", "a_3.xyz"])
    src = read_frames(d)
    assert src.time_source == "sequential"
    np.testing.assert_array_equal(src.times_fs, [497.5, 498.0, 498.5])
    assert any("no per-frame times" in w for w in src.warnings)
    assert fr.folder_start_time_fs("x_t12_5fs") == 12.5 and fr.folder_start_time_fs("old_f30fs") == 30.0
    assert fr.folder_start_time_fs("plain") is None
    # frame_<N> names whose times disagree with the tag: warning, the frame times win
    d2 = make_folder(tmp_path / "cut_t100fs", ["frame_0.xyz", "frame_1.xyz"])
    src = read_frames(d2)
    np.testing.assert_array_equal(src.times_fs, [0.0, 0.5])
    assert any("differs from the folder start time 100" in w for w in src.warnings)
    assert read_frames(d, start_time_fs=7.0).times_fs[0] == 7.0


def test_time_axis_extxyz_time_in_folder_files(tmp_path):
    d = make_folder(tmp_path / "f", ["frame_0.xyz", "frame_1.xyz"],
                    comment=lambda name: f"time={40 + 10 * int(name[6])}.0 energy=1")
    src = read_frames(d)
    assert src.time_source == "file" and src.timestep_fs == 10.0
    np.testing.assert_array_equal(src.times_fs, [40.0, 50.0])


def test_time_axis_partial_time_in_multi_frame_file(tmp_path):
    p = tmp_path / "t.xyz"
    multi_xyz(p, 3, comment=lambda k: f"time={k}" if k != 1 else "nothing")
    src = read_frames(p)
    assert src.time_source == "sequential" and any("only 2 of 3" in w for w in src.warnings)


def test_timestep_validation(tmp_path):
    p = tmp_path / "t.xyz"
    multi_xyz(p, 2)
    for bad in (0, -1, float("nan"), "abc"):
        with pytest.raises(ValueError, match="timestep_fs must be a positive number"):
            read_frames(p, timestep_fs=bad)
    with pytest.raises(ValueError, match="stride"):
        read_frames(p, stride=0)
    with pytest.raises(ValueError, match="read_frames accepts"):
        read_frames(42)


# --------------------------------------------------------------------------- box precedence


def test_box_precedence(tmp_path):
    folder = tmp_path / "job"
    folder.mkdir()
    write(folder / "pbi2_pbc_30-pos-1.xyz", "")  # the CP2K source next to the frames folder
    d = make_folder(folder / "frames", ["frame_0.xyz", "frame_1.xyz"])
    # 3. CP2K _pbc_ naming of a sibling *-pos-*.xyz (ref §1.5)
    src = read_frames(d)
    assert src.box_source == "name" and src[0].box == Box([30, 30, 30])
    # 1. the explicit argument wins over everything
    src = read_frames(d, box=[10, 20, 30, 90, 90, 120])
    assert src.box_source == "argument" and src[1].box == Box.from_parameters(10, 20, 30, 90, 90, 120)
    # 2. a per-frame Lattice wins over the naming
    write(d / "frame_0.xyz", '2\nLattice="12 0 0 0 12 0 0 0 12"\nPb 0 0 0\nI 1 1 1\n')
    src = read_frames(d)
    assert src.box_source == "file" and src[0].box == Box([12] * 3)
    assert src[1].box == Box([30] * 3)  # frames without a Lattice fall back to the naming
    src = read_frames(d, box=[5, 5, 5])
    assert src[0].box == Box([5] * 3) and any("overrides" in w for w in src.warnings)


def test_box_never_from_extent_unless_asked(tmp_path):
    p = tmp_path / "t.xyz"
    write(p, "3\nc\nPb 0 0 0\nI 4 1 0\nO 1 2 3\n")
    src = read_frames(p)
    assert src.box_source == "none" and src[0].box is None and src.box is None
    with pytest.raises(ValueError, match="no periodic box found"):
        read_frames(p, require_box=True)
    src = read_frames(p, allow_box_from_extent=True)
    assert src.box_source == "extent" and src[0].box == Box([4, 2, 3])
    assert any("underestimates" in w for w in src.warnings)
    with pytest.raises(ValueError, match="box must be"):
        read_frames(p, box=[1, 2])


def test_conflicting_sibling_boxes_are_not_used(tmp_path):
    write(tmp_path / "a_pbc_20-pos-1.xyz", "")
    write(tmp_path / "b_pbc_21-pos-1.xyz", "")
    d = make_folder(tmp_path / "frames", ["frame_0.xyz"])
    src = read_frames(d)
    assert src.box_source == "none" and any("different boxes" in w for w in src.warnings)


# --------------------------------------------------------------------------- streaming, pickling, workers


def _chunk_sum(args):
    source, a, b = args
    return [(f.index, float(f.positions.sum())) for f in source.chunk(a, b)]


def test_pickle_and_process_pool_chunks(tmp_path):
    p = tmp_path / "traj.xyz"
    multi_xyz(p, 30, n_atoms=6)
    src = read_frames(p, box=[10, 10, 10])[2:]
    blob = pickle.dumps(src)
    assert len(blob) < 4000  # paths and offsets, not frames
    again = pickle.loads(blob)
    assert len(again) == len(src) and again.box_source == "argument"
    np.testing.assert_array_equal(again[5].positions, src[5].positions)
    serial = _chunk_sum((src, 0, len(src)))
    ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with cf.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        parts = list(pool.map(_chunk_sum, [(src, a, b) for a, b in src.chunks(8)]))
    assert [x for part in parts for x in part] == serial
    # a chunk pickles only its own part of the index (and only its own files for a folder)
    whole = read_frames(p)
    part = pickle.loads(pickle.dumps(whole[10:13]))
    assert len(pickle.dumps(whole[10:13])) < len(pickle.dumps(whole)) and len(part) == 3
    assert part._backend.offsets.size == 3 and [f.source_index for f in part] == [10, 11, 12]
    np.testing.assert_array_equal(part[2].positions, whole[12].positions)
    d = make_folder(tmp_path / "f", [f"frame_{k}.xyz" for k in range(12)])
    chunk = pickle.loads(pickle.dumps(read_frames(d)[7::2]))
    assert chunk._backend.files == [str(d / f"frame_{k}.xyz") for k in (7, 9, 11)]
    assert [f.positions[0, 0] for f in chunk] == [7, 9, 11] and chunk.times_fs.tolist() == [3.5, 4.5, 5.5]
    err = pickle.loads(pickle.dumps(FileFormatError("f.xyz", 3, "bad")))
    assert str(err) == "f.xyz, line 3: bad" and err.line == 3


def _iterate_peak(path) -> int:
    src = read_frames(path)
    tracemalloc.start()
    try:
        for _ in src:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_memory_does_not_grow_with_frame_count(tmp_path):
    small, large = tmp_path / "small.xyz", tmp_path / "large.xyz"
    one = "".join(xyz_text(["Na", "Cl"] * 20, np.arange(120).reshape(40, 3) * 0.1, "time=1"))
    small.write_text(one * 20)
    large.write_text(one * 200)
    peak_small, peak_large = _iterate_peak(small), _iterate_peak(large)
    assert peak_large < 1.5 * peak_small + 20_000, (peak_small, peak_large)
    # indexing keeps 4 numbers per frame plus one read block
    tracemalloc.start()
    try:
        read_frames(large)
        index_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert index_peak < 2 * fr._BLOCK + 200 * 200, index_peak


# --------------------------------------------------------------------------- other inputs


def test_sequence_of_frames_and_frame_source_passthrough(tmp_path):
    frames = [Frame(0, 5 + k, 10.0 * k, ["Na"], np.full((1, 3), float(k)), Box([9, 9, 9])) for k in range(4)]
    src = read_frames(frames)
    assert len(src) == 4 and src.timestep_fs == 10.0 and src.box_source == "file"
    np.testing.assert_array_equal(src.source_indices, [5, 6, 7, 8])
    assert read_frames(src, stride=2).source_indices.tolist() == [5, 7]
    assert read_frames(src, box=[3, 3, 3])[0].box == Box([3, 3, 3])
    out = tmp_path / "all.xyz"
    assert write_frames(out, src) == 4
    back = read_frames(out)
    assert back.time_source == "file" and back.times_fs.tolist() == [0, 10, 20, 30]
    assert back[3].box == Box([9, 9, 9]) and back[3].positions[0, 0] == 3.0


def test_ase_atoms_sequence():
    ase = pytest.importorskip("ase")
    images = []
    for k in range(3):
        a = ase.Atoms("NaCl", positions=[[0, 0, 0], [2.8 + k, 0, 0]],
                      cell=[[10, 0, 0], [1, 10, 0], [0, 0, 10]], pbc=True)
        a.info["time"] = 5.0 * k
        a.info["energy"] = -1.0 * k
        images.append(a)
    src = read_frames(images)
    assert src.time_source == "file" and src.timestep_fs == 5.0 and src.box_source == "file"
    f = src[2]
    assert f.symbols == ["Na", "Cl"] and f.positions[1, 0] == 4.8 and f.info["energy"] == -2.0
    np.testing.assert_array_equal(f.box.matrix, [[10, 0, 0], [1, 10, 0], [0, 0, 10]])
    nopbc = read_frames([ase.Atoms("H2", positions=[[0, 0, 0], [0.7, 0, 0]])])
    assert nopbc[0].box is None and nopbc.box_source == "none"


def test_public_names():
    assert cdml.read_frames is read_frames and cdml.Frame is Frame


# --------------------------------------------------------------------------- real data


def test_lipf6_xyz_folder(shared_data):
    src = read_frames(shared_data / "lipf6_bn_fec_lammps" / "frames_xyz_wrap")
    assert len(src) == 10 and src.time_source == "frame_names" and src.box_source == "file"
    f = src[0]
    counts = {el: f.symbols.count(el) for el in set(f.symbols)}
    assert counts == {"C": 2163, "H": 3252, "N": 363, "O": 711, "F": 531, "P": 49, "Li": 49}
    np.testing.assert_allclose(f.box.lengths, 44.058949)
    assert f.info["frame"] == 0 and f.info["source"] == "bn_fec_short_wrap.dcd"


def test_lipf6_wrapped_unwrapped_and_pdb_agree(shared_data):
    base = shared_data / "lipf6_bn_fec_lammps"
    wrap, unwrap, pdb = (read_frames(base / n) for n in ("frames_xyz_wrap", "frames_xyz_unwrap", "frames_pdb_wrap"))
    for k in (0, 9):
        fw, fu, fp = wrap[k], unwrap[k], pdb[k]
        assert fw.symbols == fu.symbols == fp.symbols
        np.testing.assert_allclose(fp.positions, fw.positions, atol=6e-4)
        # unwrapped coordinates stay outside the cell (never wrapped by the reader) ...
        L = fw.box.lengths
        assert (fu.positions < 0).any() or (fu.positions >= L).any()
        # ... and differ from the wrapped ones by whole box vectors
        shift = (fu.positions - fw.positions) / L
        np.testing.assert_allclose(shift, np.round(shift), atol=1e-5)
    fp = pdb[0]
    assert set(fp.residues) == {"BN", "FEC", "PF6", "LI"}
    li = [i for i, r in enumerate(fp.residues) if r == "LI"]
    assert len(li) == 49 and all(fp.symbols[i] == "Li" for i in li)
    assert fp.residue_ids.dtype == np.int64 and fp.residue_ids.max() == 699


def test_nacl_500_frame_extxyz(shared_data):
    path = shared_data / "nacl_molten_1400K_zincware" / "NaCl_1400K_0.extxyz"
    src = read_frames(path)
    assert len(src) == 500 and src.box_source == "file" and src.time_source == "sequential"
    assert src[0].box == Box([13.1] * 3)
    it = list(src.chunk(0, 500))
    for k in (0, 1, 250, 499):
        f = src[k]
        assert f.n_atoms == 64 and f.symbols.count("Na") == 32 and isinstance(f.info["energy"], float)
        np.testing.assert_array_equal(f.positions, it[k].positions)
    assert it[0].info["energy"] == pytest.approx(-232.56265)


def test_nacl_64_time_field(shared_data):
    src = read_frames(shared_data / "nacl_molten_1400K_zincware" / "NaCl_64_Atoms.extxyz")
    assert src.time_source == "file" and src.timestep_fs == 12.0
    np.testing.assert_array_equal(src.times_fs, [23.0, 35.0, 47.0, 59.0])
    assert src[0].info["i"] == 23 and src[0].info["energy"] == pytest.approx(-54195.48028125)


@pytest.mark.filterwarnings("ignore:Reader has no dt information")
def test_kcl_history_via_mdanalysis_matches_xyz(shared_data):
    mda = pytest.importorskip("MDAnalysis")
    base = shared_data / "kcl_dlpoly_mdanalysistests"
    u = mda.Universe(str(base / "HISTORY"), format="HISTORY", topology_format="HISTORY")
    src = read_frames(u, timestep_fs=5.0)
    xyz = read_frames(base / "frames_xyz")
    assert len(src) == len(xyz) == 3 and src.box_source == "file"
    np.testing.assert_array_equal(src.times_fs, [0.0, 5.0, 10.0])
    for a, b in zip(src, xyz):
        assert a.symbols == b.symbols and set(a.symbols) == {"K", "Cl"}
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-5)
        np.testing.assert_allclose(a.box.matrix, b.box.matrix, atol=1e-4)
        assert not a.box.is_orthorhombic
    again = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(again[2].positions, src[2].positions)
    guessed = read_frames(u)
    assert guessed.time_source == "universe" and any("no time step" in w for w in guessed.warnings)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_lipf6_dcd_via_mdanalysis_needs_elements(shared_data):
    mda = pytest.importorskip("MDAnalysis")
    base = shared_data / "lipf6_bn_fec_lammps"
    u = mda.Universe(str(base / "bn_fec.data"), str(base / "bn_fec_short_unwrap.dcd"))
    with pytest.raises(ValueError, match="element_map"):
        read_frames(u)
    elements = (base / "bn_fec_elements.csv").read_text().split()
    u.add_TopologyAttr("elements", elements)
    src = read_frames(u)
    ref = read_frames(base / "frames_xyz_unwrap")
    assert len(src) == 10
    f, g = src[4], ref[4]
    assert f.symbols == g.symbols
    np.testing.assert_allclose(f.positions, g.positions, atol=1e-5)
    np.testing.assert_allclose(f.box.lengths, g.box.lengths, atol=1e-5)


def test_saxshell_reference_pdbs(shared_data):
    base = shared_data / "saxshell_reference_structures"
    f = read_frames(base / "pbi3.pdb")[0]
    assert f.symbols == ["Pb", "I", "I", "I"] and f.residues == ["PBI"] * 4 and f.box is None
    d = np.linalg.norm(f.positions[1:] - f.positions[0], axis=1)
    assert np.all((d > 2.9) & (d < 3.2))
    for p in sorted(base.glob("*.pdb")):
        g = read_frames(p)[0]
        assert g.n_atoms > 0 and all(s[0].isupper() for s in g.symbols)
    dmf = read_frames(base / "dmf.pdb")[0]
    assert sorted(set(dmf.symbols)) == ["C", "H", "N", "O"] and dmf.symbols.count("H") == 7


# --------------------------------------------------------------------------- fuzzing: bad input never crashes


def _mutate(rng, text: str) -> str:
    lines = text.split("\n")
    kind = int(rng.integers(0, 6))
    k = int(rng.integers(0, len(lines)))
    if kind == 0:
        del lines[k]
    elif kind == 1:
        lines.insert(k, lines[int(rng.integers(0, len(lines)))])
    elif kind == 2:
        parts = lines[k].split(" ")
        parts[int(rng.integers(0, len(parts)))] = str(rng.choice(["x", "", "1e", "nan", "Qq", "-", '"', "="]))
        lines[k] = " ".join(parts)
    elif kind == 3:
        return text[: int(rng.integers(0, len(text)))]
    elif kind == 4:
        lines[k] = lines[k][: int(rng.integers(0, len(lines[k]) + 1))]
    else:
        pos = int(rng.integers(0, len(text)))
        return text[:pos] + str(rng.choice(["\n", "\r", " ", "\t", "é", "\x00"])) + text[pos:]
    return "\n".join(lines)


@pytest.mark.parametrize("fmt", ["xyz", "pdb"])
def test_fuzzed_files_give_file_format_errors_only(tmp_path, fmt):
    rng = np.random.default_rng(11)
    if fmt == "xyz":
        good = "".join(xyz_text(["Pb", "I", "O"], np.full((3, 3), k + 0.5),
                                f'Lattice="9 0 0 0 9 0 0 0 9" time={k} e={-k}.5') for k in range(4))
    else:
        good = "CRYST1   10.000   10.000   10.000  90.00  90.00  90.00 P 1           1\n" + "".join(
            f"MODEL {k + 1}\n" + pdb_atom(str(k), "PB1", "PBI", "1", (k, 1, 2), "Pb") + "\n"
            + pdb_atom("A0000", "I1", "PBI", "A000", (k, 3, 4)) + "\nENDMDL\n" for k in range(3))
    p = tmp_path / f"fuzz.{fmt}"
    outcomes = {"ok": 0, "error": 0}
    for trial in range(150):
        p.write_bytes(_mutate(rng, good).encode("utf-8"))
        for skip in (False, True):
            try:
                frames = list(read_frames(p, skip_bad_frames=skip))
            except FileFormatError as exc:
                assert str(p) in str(exc)
                outcomes["error"] += 1
            else:
                for f in frames:
                    assert f.positions.shape == (len(f.symbols), 3) and np.isfinite(f.positions).all()
                outcomes["ok"] += 1
    assert outcomes["ok"] and outcomes["error"]


def test_write_frames_round_trip_many_seeds(tmp_path):
    """Random sizes, elements, boxes (none / orthorhombic / triclinic), times and info survive."""
    elements = ["H", "C", "N", "O", "Pb", "I", "Cs", "Li", "Cl", "Na"]
    for seed in range(12):
        rng = np.random.default_rng(seed)
        frames = []
        for k in range(int(rng.integers(1, 6))):
            n = int(rng.integers(0, 9))
            kind = seed % 3
            box = (None if kind == 0 else Box(rng.uniform(5, 30, 3)) if kind == 1 else
                   Box.from_parameters(*rng.uniform(8, 20, 3), *rng.uniform(70, 110, 3)))
            frames.append(Frame(k, k, 0.25 * k + seed, list(rng.choice(elements, n)),
                                rng.uniform(-100, 100, (n, 3)), box,
                                info={"energy": float(rng.normal()), "step": k, "tag": f"s{seed}"}))
        p = tmp_path / f"rt{seed}.xyz"
        assert write_frames(p, frames) == len(frames)
        back = list(read_frames(p))
        assert len(back) == len(frames), seed
        for a, b in zip(frames, back):
            assert a.symbols == b.symbols and a.time_fs == b.time_fs, seed
            np.testing.assert_allclose(b.positions, a.positions, atol=1e-8, err_msg=f"seed {seed}")
            assert (a.box is None) == (b.box is None), seed
            if a.box is not None:
                np.testing.assert_allclose(b.box.matrix, a.box.matrix, rtol=1e-9, atol=1e-9)
            assert b.info["energy"] == a.info["energy"] and b.info["step"] == a.info["step"]
            assert b.info["tag"] == a.info["tag"]


def test_read_structure(tmp_path):
    write_xyz(tmp_path / "PbI2_0001.xyz", ["Pb", "I", "I"], [[0, 0, 0], [3, 0, 0], [0, 3, 0]], comment="label PbI2")
    f = read_structure(tmp_path / "PbI2_0001.xyz")
    assert f.symbols == ["Pb", "I", "I"] and f.box is None and f.info == {"comment": "label PbI2"}
    write_pdb(tmp_path / "s.pdb", ["Pb", "O"], [[0, 0, 0], [2.5, 0, 0]], residues=["PB", "DMF"], box=[20, 20, 20])
    g = read_structure(tmp_path / "s.pdb")
    assert g.residues == ["PB", "DMF"] and g.box == Box([20, 20, 20])
    write(tmp_path / "two.xyz", "1\nc\nH 0 0 0\n1\nc\nH 0 0 0\n")
    with raises_at(tmp_path / "two.xyz", 4, "more lines than the atom count"):
        read_structure(tmp_path / "two.xyz")


def test_strided_selection_reports_the_spacing_of_the_selected_frames(shared_data):
    """Regression: read_frames(stride=10) on 0.5-fs frames said timestep_fs = 0.5, so a run with
    [frames] stride = 10 and frames_per_bin = 10 made 5-fs bins holding one frame each."""
    import clusterdynamicsml as cdml

    p = shared_data / "nacl_molten_1400K_zincware" / "NaCl_1400K_0.extxyz"
    full = read_frames(p)
    assert full.timestep_fs == 0.5
    sel = read_frames(p, stride=10)
    assert sel.timestep_fs == 5.0 and np.allclose(np.diff(sel.times_fs), 5.0)
    assert sel[::2].timestep_fs == 10.0 and sel[3:9].timestep_fs == 5.0
    assert full[[4, 0, 22]].timestep_fs == 0.5          # non-uniform: unchanged
    assert read_frames(sel, stride=1).timestep_fs == 5.0
    rules = cdml.ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6})
    r = cdml.analyze_dynamics(read_frames(p, stride=10), rules, frames_per_bin=10)
    assert r.bin_width_fs == 50.0 and r.n_bins == 5
