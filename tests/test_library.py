"""Structure library writer: layout, whole clusters, metadata, resume after interruption."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clusterdynamicsml.clusters.extract import ClusterRules, extract_clusters, parse_label
from clusterdynamicsml.geometry.box import Box
from clusterdynamicsml.io.frames import Frame
from clusterdynamicsml.library import write as lib
from clusterdynamicsml.library.write import METADATA_NAME, PROGRESS_NAME, write_library

RULES = ClusterRules(node=["Pb"], linker=["I"], shell=["O"], cutoffs={("Pb", "I"): 3.4, ("Pb", "O"): 2.9})


def synthetic_frames(n_frames=8, n_atoms=60, seed=0, per_file=True, tmp_source="frames"):
    """Random Pb/I/O frames in a 12 A box, with coordinates spread over several images."""
    rng = np.random.default_rng(seed)
    L = 12.0
    out = []
    for k in range(n_frames):
        sym = list(rng.choice(["Pb", "I", "I", "O", "C"], n_atoms))
        pos = rng.uniform(0, L, (n_atoms, 3)) + rng.integers(-1, 2, (n_atoms, 3)) * L
        src = f"/data/{tmp_source}/frame_{k:04d}.xyz" if per_file else f"/data/{tmp_source}/traj.xyz"
        out.append(Frame(k, k, 0.5 * k, sym, pos, Box([L, L, L]), source=src))
    return out


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_xyz(path: Path):
    lines = path.read_text().splitlines()
    n = int(lines[0])
    rows = [ln.split() for ln in lines[2:2 + n]]
    return lines[1], [r[0] for r in rows], np.array([r[1:] for r in rows], float)


def test_layout_files_and_metadata(tmp_path):
    frames = synthetic_frames()
    out = tmp_path / "lib"
    summary = write_library(frames, RULES, out)
    meta = json.loads((out / METADATA_NAME).read_text())
    assert meta["status"] == "completed" and meta["settings"]["rules"] == RULES.to_dict()
    assert meta["frames"]["n_frames"] == 8 and meta["frames"]["source_folders"] == ["/data/frames"]
    assert summary.n_frames == 8 and summary.n_files == meta["n_files"] > 50
    # every cluster of every frame has its file, named <frame stem>_<ID>.xyz under its label
    expected = {}
    for f in frames:
        for c, cid in zip(extract_clusters(f, RULES), lib.cluster_ids(10 ** 3)):
            if not c.percolating:
                expected[f"{c.label}/frame_{f.index:04d}_{cid}.xyz"] = (f, c)
    files = {str(p.relative_to(out)) for p in out.rglob("*.xyz")}
    assert files == set(expected)
    assert summary.files_per_label == {lab: v["files"] for lab, v in meta["labels"].items()}
    for rel, (f, c) in list(expected.items())[:40]:
        comment, sym, pos = read_xyz(out / rel)
        label = rel.split("/")[0]
        assert f"label={label}" in comment and f"frame=frame_{f.index:04d}" in comment
        assert f"time_fs={f.time_fs:.6f}" in comment and 'source="frame_' in comment
        assert sym == [f.symbols[k] for k in c.atom_indices]
        assert np.allclose(pos, c.unwrapped_positions(f), atol=1e-7)
        # the file's core composition is its label
        counts = {}
        for s in sym[:c.core_indices.size]:
            counts[s] = counts.get(s, 0) + 1
        assert counts == parse_label(label)
    assert not (out / ".extract_tmp").exists()
    lines = (out / PROGRESS_NAME).read_text().splitlines()
    assert [json.loads(ln)["stem"] for ln in lines] == [f"frame_{k:04d}" for k in range(8)]


def test_files_hold_whole_clusters_across_the_box(tmp_path):
    L = 10.0
    f = Frame(0, 0, 0.0, ["Pb", "I", "I"], np.array([[0.2, 5, 5], [L - 2.8, 5, 5], [0.2 + 3.0, 5, 5]]), Box([L, L, L]),
              source="x/frame_0000.xyz")
    write_library([f], RULES, tmp_path / "lib")
    _, sym, pos = read_xyz(tmp_path / "lib" / "PbI2" / "frame_0000_AAA.xyz")
    assert sym == ["Pb", "I", "I"]
    assert np.allclose(np.linalg.norm(pos[1:] - pos[0], axis=1), 3.0)


def test_multi_frame_sources_get_indexed_stems(tmp_path):
    frames = synthetic_frames(3, per_file=False)
    write_library(frames, RULES, tmp_path / "lib")
    stems = {p.name.rsplit("_", 1)[0] for p in (tmp_path / "lib").rglob("*.xyz")}
    assert stems == {"traj_frame_00000", "traj_frame_00001", "traj_frame_00002"}


class Boom(RuntimeError):
    pass


def interrupted(frames, after):
    for k, f in enumerate(frames):
        if k == after:
            raise Boom(f"simulated crash before frame {k}")
        yield f


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    frames = synthetic_frames(10, seed=3)
    ref = tmp_path / "ref"
    write_library(frames, RULES, ref)
    out = tmp_path / "out"
    with pytest.raises(Boom):
        write_library(interrupted(frames, 4), RULES, out)
    meta = json.loads((out / METADATA_NAME).read_text())
    assert meta["status"] == "in_progress"
    # frame 3 waits for its look-ahead (frame 4) to know its file stem, so 3 frames are done
    assert len((out / PROGRESS_NAME).read_text().splitlines()) == 3
    summary = write_library(frames, RULES, out)
    assert summary.n_frames_resumed == 3 and summary.n_frames == 10
    assert tree(out) == tree(ref)


def test_crash_between_moving_files_and_recording_the_frame(tmp_path, monkeypatch):
    frames = synthetic_frames(6, seed=4)
    ref = tmp_path / "ref"
    write_library(frames, RULES, ref)
    out = tmp_path / "out"
    real = lib._append_progress
    calls = {"n": 0}

    def flaky(path, record):
        calls["n"] += 1
        if calls["n"] == 3:
            # files of the third frame are in place, its record is half written
            with open(path, "a") as fh:
                fh.write(json.dumps(record)[:25])
            raise Boom("crash while recording frame 3")
        real(path, record)

    monkeypatch.setattr(lib, "_append_progress", flaky)
    with pytest.raises(Boom):
        write_library(frames, RULES, out)
    monkeypatch.setattr(lib, "_append_progress", real)
    summary = write_library(frames, RULES, out)
    assert summary.n_frames_resumed == 2
    assert tree(out) == tree(ref)


def test_crash_inside_a_frame_leaves_no_partial_frame(tmp_path, monkeypatch):
    frames = synthetic_frames(4, seed=5)
    out = tmp_path / "out"
    real = lib._cluster_file
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 30:
            raise Boom("disk full")
        real(*args, **kw)

    monkeypatch.setattr(lib, "_cluster_file", flaky)
    with pytest.raises(Boom):
        write_library(frames, RULES, out)
    done = [json.loads(ln)["stem"] for ln in (out / PROGRESS_NAME).read_text().splitlines()]
    visible = {p.name.rsplit("_", 1)[0] for p in out.rglob("*.xyz") if ".extract_tmp" not in p.parts}
    assert visible == set(done)  # the interrupted frame has no file in the library yet
    monkeypatch.setattr(lib, "_cluster_file", real)
    write_library(frames, RULES, out)
    ref = tmp_path / "ref"
    write_library(frames, RULES, ref)
    assert tree(out) == tree(ref)


def test_percolating_clusters_are_skipped_with_a_note(tmp_path):
    L = 12.0
    xs = np.arange(4) * 3.0 + 0.5
    pos = np.column_stack([xs, np.full(4, 5.0), np.full(4, 5.0)])
    pos = np.vstack([pos, [[6.0, 15.0, 15.0]]])
    f = Frame(0, 0, 0.0, ["Pb", "I", "Pb", "I", "Pb"], pos, Box([L, 20.0, 20.0]), source="a/frame_0000.xyz")
    s = write_library([f], RULES, tmp_path / "lib")
    assert s.percolating == {"Pb2I2": 1}
    assert s.percolating_notes == [{"frame_stem": "frame_0000", "frame_index": 0, "cluster_id": "AAA",
                                    "label": "Pb2I2", "n_atoms": 4}]
    assert s.files_per_label == {"Pb": 1}
    assert (tmp_path / "lib" / "Pb" / "frame_0000_AAB.xyz").exists()
    assert not (tmp_path / "lib" / "Pb2I2").exists()
    meta = json.loads((tmp_path / "lib" / METADATA_NAME).read_text())
    assert meta["percolating"]["n_clusters"] == 1 and "not finite" in meta["percolating"]["note"]


def test_pdb_output_keeps_residues(tmp_path):
    L = 15.0
    f = Frame(0, 7, 3.5, ["Pb", "I", "O", "C", "H"],
              np.array([[0.5, 7, 7], [0.5, 10.0, 7], [L - 2.0, 7, 7], [L - 3.2, 7, 7], [L - 3.2, 8.0, 7]]),
              Box([L, L, L]), residues=["PB", "IOD", "DMF", "DMF", "DMF"], residue_ids=np.array([1, 2, 3, 3, 3]),
              atom_names=["PB1", "I1", "O1", "C1", "H1"], source="f/frame_0007.pdb")
    rules = ClusterRules(node=["Pb"], linker=["I"], shell=[("O", "DMF")], cutoffs={("Pb", "I"): 3.4, ("Pb", "O"): 3.0},
                         shell_molecules=True)
    write_library([f], rules, tmp_path / "lib", fmt="pdb")
    text = (tmp_path / "lib" / "PbI" / "frame_0007_AAA.pdb").read_text().splitlines()
    atoms = [ln for ln in text if ln.startswith("HETATM")]
    assert len(atoms) == 5
    assert [ln[17:20].strip() for ln in atoms] == ["PB", "IOD", "DMF", "DMF", "DMF"]
    assert [ln[76:78].strip() for ln in atoms] == ["PB", "I", "O", "C", "H"]  # PDB element columns
    xyz = np.array([[float(ln[30:38]), float(ln[38:46]), float(ln[46:54])] for ln in atoms])
    assert np.allclose(xyz[2] - xyz[0], [-2.5, 0, 0], atol=1e-3)  # the DMF came whole across the face
    assert np.allclose(xyz[3] - xyz[0], [-3.7, 0, 0], atol=1e-3)
    assert all(len(ln) <= 80 for ln in text)


def test_include_shell_levels(tmp_path):
    rules = ClusterRules(node=["Pb"], linker=["I"], shell=["O"], cutoffs={("Pb", "I"): 3.4, ("Pb", "O"): {0: 2.5, 1: 4.0}},
                         shell_levels=[1], pbc=False)
    f = Frame(0, 0, 0.0, ["Pb", "O", "O"], np.array([[0, 0, 0], [2.0, 0, 0], [0, 3.5, 0]]), None, source="q/frame_0000.xyz")
    write_library([f], rules, tmp_path / "all")
    write_library([f], rules, tmp_path / "l0", include_shell_levels=[0])
    assert read_xyz(tmp_path / "all" / "Pb" / "frame_0000_AAA.xyz")[1] == ["Pb", "O", "O"]
    assert read_xyz(tmp_path / "l0" / "Pb" / "frame_0000_AAA.xyz")[1] == ["Pb", "O"]


def test_refuses_to_mix_libraries_and_bad_arguments(tmp_path):
    frames = synthetic_frames(2)
    write_library(frames, RULES, tmp_path / "lib")
    with pytest.raises(ValueError, match="already holds a cluster library; pass resume=True"):
        write_library(frames, RULES, tmp_path / "lib", resume=False)
    with pytest.raises(ValueError, match="made with other settings"):
        write_library(frames, ClusterRules(node=["Pb"], linker=["I"], cutoffs={("Pb", "I"): 3.36}), tmp_path / "lib")
    with pytest.raises(ValueError, match="made with other settings \\(format: 'xyz' then, 'pdb' now\\)"):
        write_library(frames, RULES, tmp_path / "lib", fmt="pdb")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty and holds no cluster library"):
        write_library(frames, RULES, tmp_path / "other")
    with pytest.raises(ValueError, match="fmt must be 'xyz' or 'pdb', got 'cif'"):
        write_library(frames, RULES, tmp_path / "new", fmt="cif")
    with pytest.raises(ValueError, match="rules must be a ClusterRules"):
        write_library(frames, {"node": "Pb"}, tmp_path / "new")
    dup = [frames[0], frames[0]]
    with pytest.raises(ValueError, match="same file stem"):
        write_library(dup, RULES, tmp_path / "dup")


def test_rerun_on_a_finished_library_is_a_no_op_and_extends(tmp_path):
    frames = synthetic_frames(5, seed=9)
    out = tmp_path / "lib"
    write_library(frames[:3], RULES, out)
    before = tree(out)
    s = write_library(frames[:3], RULES, out)
    assert s.n_frames_resumed == 3 and tree(out) == before
    write_library(frames, RULES, out)
    ref = tmp_path / "ref"
    write_library(frames, RULES, ref)
    assert tree(out) == tree(ref)


def test_progress_callback(tmp_path):
    seen = []
    write_library(iter(synthetic_frames(3)), RULES, tmp_path / "lib", progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, None), (2, None), (3, None)]
    seen.clear()
    write_library(list(synthetic_frames(2, tmp_source="b")), RULES, tmp_path / "lib2", progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 2), (2, 2)]


@pytest.mark.shared_data
def test_lipf6_library_from_real_frames(shared_data, tmp_path):
    import clusterdynamicsml as cdml
    from test_clusters import LIPF6

    frames = cdml.read_frames(shared_data / "lipf6_bn_fec_lammps" / "frames_xyz_wrap", stop=3)
    s = write_library(frames, LIPF6, tmp_path / "lib")
    assert s.n_frames == 3 and list((tmp_path / "lib" / "LiP").glob("frame_0000_*.xyz"))
    fr = s.metadata["frames"]
    assert fr["first_source"].endswith("frame_0000.xyz") and fr["last_source"].endswith("frame_0002.xyz")
    assert fr["timestep_fs"] == frames.timestep_fs
    assert set(s.files_per_label) <= {"Li", "P", "LiP", "Li2P"} and s.files_per_label["LiP"] >= 3
    _, sym, pos = read_xyz(next((tmp_path / "lib" / "LiP").glob("*.xyz")))
    assert sym == ["Li", "P"] and np.linalg.norm(pos[1] - pos[0]) <= 3.7


def test_progress_bar_and_frame_source_input(tmp_path):
    s = write_library(synthetic_frames(2), RULES, tmp_path / "lib", progress=True)
    assert s.n_frames == 2


def test_corrupt_progress_record_in_the_middle_is_an_error(tmp_path):
    frames = synthetic_frames(3)
    out = tmp_path / "lib"
    write_library(frames, RULES, out)
    lines = (out / PROGRESS_NAME).read_text().splitlines(keepends=True)
    (out / PROGRESS_NAME).write_text(lines[0] + "{not json\n" + "".join(lines[1:]))
    with pytest.raises(ValueError, match=r"extraction_progress.jsonl, line 2: corrupt progress record"):
        write_library(frames, RULES, out)


def test_cluster_files_are_byte_identical_to_write_xyz_and_no_temporaries_remain(tmp_path):
    """The library writes each cluster file plainly inside the frame's temporary folder (no
    second temporary file and rename per cluster); the text must stay what write_xyz writes."""
    import os
    import stat

    from clusterdynamicsml.clusters.extract import cluster_ids
    from clusterdynamicsml.io.frames import write_xyz

    frames = synthetic_frames(4)
    write_library(frames, RULES, tmp_path / "lib")
    files = sorted((tmp_path / "lib").glob("*/*.xyz"))
    assert files
    by_name = {f.name: f for f in files}
    for frame in frames:
        clusters = extract_clusters(frame, RULES)
        for c, cid in zip(clusters, cluster_ids(len(clusters))):
            if c.percolating:
                continue
            stem = lib.frame_stem(frame)
            f = by_name[f"{stem}_{cid}.xyz"]
            ref = tmp_path / "ref.xyz"
            comment = f.read_text().split("\n")[1]
            write_xyz(ref, [frame.symbols[k] for k in c.atom_indices.tolist()], c.unwrapped_positions(frame), comment)
            assert f.read_bytes() == ref.read_bytes(), f.name
            assert stat.S_IMODE(os.stat(f).st_mode) & 0o444 == 0o444
    leftovers = [p for p in (tmp_path / "lib").rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")
                 and p.name not in (METADATA_NAME, PROGRESS_NAME)]
    assert not leftovers, leftovers


def test_progress_is_fsynced_once_per_library_not_per_frame(tmp_path, monkeypatch):
    """Regression (speed): one fsync per frame and one temporary folder per frame took half
    of the library time of the bundled example on a slow disk."""
    import os

    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    rmdirs = []
    real_rmdir = os.rmdir
    monkeypatch.setattr(os, "rmdir", lambda p, *a, **k: (rmdirs.append(p), real_rmdir(p, *a, **k))[1])
    summary = write_library(synthetic_frames(8), RULES, tmp_path / "lib")
    assert summary.n_frames == 8 and summary.n_files > 8
    assert len(calls) <= 1, calls
    assert len(rmdirs) <= 2, rmdirs
    assert not (tmp_path / "lib" / lib._TMP_NAME).exists()


def test_max_files_per_label_keeps_the_first_files_in_frame_order(tmp_path):
    frames = synthetic_frames()
    full = write_library(frames, RULES, tmp_path / "full")
    capped = write_library(frames, RULES, tmp_path / "capped", max_files_per_label=2)
    meta_full = json.loads((tmp_path / "full" / METADATA_NAME).read_text())
    meta = json.loads((tmp_path / "capped" / METADATA_NAME).read_text())
    assert meta["settings"]["max_files_per_label"] == 2
    # cluster counts still count every cluster; files are capped
    assert {k: v["clusters"] for k, v in meta["labels"].items()} == \
        {k: v["clusters"] for k, v in meta_full["labels"].items()}
    assert capped.files_per_label == {k: min(n, 2) for k, n in full.files_per_label.items()}
    for label, n in capped.files_per_label.items():
        kept = sorted(p.name for p in (tmp_path / "capped" / label).iterdir())
        assert kept == sorted(p.name for p in (tmp_path / "full" / label).iterdir())[:n]
        assert len(kept) == n
    # deterministic across an interrupted + resumed run
    part = tmp_path / "part"
    write_library(frames[:3], RULES, part, max_files_per_label=2)
    write_library(frames, RULES, part, max_files_per_label=2)
    strip = {k: v for k, v in tree(part).items() if not k.endswith(".json") and not k.endswith(".jsonl")}
    ref = {k: v for k, v in tree(tmp_path / "capped").items() if not k.endswith(".json") and not k.endswith(".jsonl")}
    assert strip == ref
    with pytest.raises(ValueError, match="max_files_per_label"):
        write_library(frames, RULES, tmp_path / "bad", max_files_per_label=0)
