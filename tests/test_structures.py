"""Structure library reader, descriptors, lifetime join and stability weights (ref §4.1, §4.2)."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from clusterdynamicsml.library.read import (
    AtomTypes,
    TrainingRow,
    build_training_rows,
    load_lifetime_table,
    parse_label_counts,
    read_library,
    read_structure,
    shape_descriptors,
)

RULES = {"node": ["Pb"], "linker": ["I"], "shell": ["O"], "cutoffs": {("Pb", "I"): 3.36, ("Pb", "O"): 3.36}}


def write_xyz(path, symbols, positions, comment=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [str(len(symbols)), comment] + [f"{s} {x:.6f} {y:.6f} {z:.6f}" for s, (x, y, z) in zip(symbols, positions)]
    path.write_text("\n".join(lines) + "\n")


def write_pdb(path, symbols, positions, residues):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for k, (s, (x, y, z), res) in enumerate(zip(symbols, positions, residues), start=1):
        lines.append(f"HETATM{k:5d} {s:<4s} {res:>3s} A{1:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00          {s:>2s}")
    lines.append("END")
    path.write_text("\n".join(lines) + "\n")


def test_descriptors_two_atoms_known_values():
    d = shape_descriptors([[-1.0, 0, 0], [1.0, 0, 0]])
    assert d["radius_of_gyration"] == pytest.approx(1.0)
    assert d["max_radius"] == pytest.approx(1.0)
    assert (d["semiaxis_a"], d["semiaxis_b"], d["semiaxis_c"]) == pytest.approx((1.0, 0.0, 0.0), abs=1e-12)


def test_descriptors_invariant_under_rigid_motion():
    rng = np.random.default_rng(3)
    pos = rng.normal(size=(12, 3)) * [3.0, 2.0, 1.0]
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    moved = pos @ q.T + [10.0, -4.0, 7.0]
    a, b = shape_descriptors(pos), shape_descriptors(moved)
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-10), key
    assert a["semiaxis_a"] >= a["semiaxis_b"] >= a["semiaxis_c"]
    # sum of squared semiaxes is Rg^2 (trace of the covariance)
    assert a["semiaxis_a"] ** 2 + a["semiaxis_b"] ** 2 + a["semiaxis_c"] ** 2 == pytest.approx(a["radius_of_gyration"] ** 2)


def test_batched_descriptors_match_single():
    from clusterdynamicsml.library.read import shape_descriptors_batch

    rng = np.random.default_rng(9)
    sets = [rng.normal(size=(n, 3)) * rng.uniform(0.5, 3, size=3) for n in (1, 2, 3, 7, 20)] + [np.zeros((0, 3))]
    batch = shape_descriptors_batch(sets)
    for i, pos in enumerate(sets):
        single = shape_descriptors(pos)
        for key, value in single.items():
            assert batch[key][i] == pytest.approx(value, rel=1e-12, abs=1e-12), (i, key)


def test_read_structure_xyz_tracked_only_and_element_tokens(tmp_path):
    f = tmp_path / "a.xyz"
    write_xyz(f, ["Pb1", "I", "H", "C"], [[0, 0, 0], [3, 0, 0], [9, 9, 9], [5, 5, 5]])
    types = AtomTypes.from_rules(RULES)
    symbols, pos = read_structure(f, types)
    assert symbols == ["Pb", "I"]
    assert pos.shape == (2, 3)


def test_read_structure_bad_line_names_file_and_line(tmp_path):
    f = tmp_path / "bad.xyz"
    f.write_text("2\n\nPb 0 0 0\nI 1 x 0\n")
    with pytest.raises(ValueError, match=r"bad.xyz, line 4"):
        read_structure(f)


def test_library_counts_from_files_modal_and_representative(tmp_path):
    lib = tmp_path / "lib"
    # Pb2 folder holding Pb2I files (ref V4): counts come from the files, with a warning
    write_xyz(lib / "Pb2" / "frame_0001_AAA.xyz", ["Pb", "I", "Pb"], [[0, 0, 0], [3, 0, 0], [6, 0, 0]])
    write_xyz(lib / "Pb2" / "frame_0002_AAA.xyz", ["Pb", "I", "Pb"], [[0, 0, 0], [3.2, 0, 0], [6.4, 0, 0]])
    write_xyz(lib / "Pb2" / "frame_0003_AAA.xyz", ["Pb", "Pb"], [[0, 0, 0], [3, 0, 0]])
    write_xyz(lib / "PbI2" / "frame_0001_AAB.xyz", ["Pb", "I", "I", "H"], [[0, 0, 0], [3, 0, 0], [-3, 0, 0], [0, 20, 0]])
    (lib / "representative_x").mkdir()
    write_xyz(lib / "representative_x" / "r.xyz", ["Pb"], [[0, 0, 0]])
    (lib / "cluster_extraction_metadata.json").write_text("{}")
    write_xyz(lib / ".extract_tmp" / "Pb3" / "x.xyz", ["Pb"] * 3, [[0, 0, 0], [3, 0, 0], [6, 0, 0]])  # interrupted run
    write_xyz(lib / ".extract_tmp" / "x.xyz", ["Pb"], [[0, 0, 0]])
    library = read_library(lib, RULES, frame_labels=["Pb2"])
    assert library.labels == ["Pb2", "PbI2"]
    obs = library["Pb2"]
    assert obs.element_counts == {"Pb": 2, "I": 1}
    assert obs.node_count == 2 and obs.cluster_size == 3
    assert obs.file_count == 3 and obs.readable_count == 3
    assert obs.representative_path.endswith("frame_0001_AAA.xyz")
    assert obs.mismatched_file_count == 2  # the Pb2 file matches its folder
    assert any("Pb2" in w and "composition other than the folder label" in w for w in library.warnings)
    # the untracked H far away does not enter the descriptors (ref N11 fixed)
    assert library["PbI2"].mean_max_radius == pytest.approx(3.0)
    assert library["PbI2"].mean_radius_of_gyration == pytest.approx(np.sqrt(2 * 9.0 / 3))
    # V3: PbI2 never seen in the frames
    assert any("PbI2" in w and "never appears in the frames" in w for w in library.warnings)


def test_library_reads_motif_folders_and_flat_files_together(tmp_path):
    lib = tmp_path / "lib"
    write_xyz(lib / "PbI" / "a.xyz", ["Pb", "I"], [[0, 0, 0], [3, 0, 0]])
    write_xyz(lib / "PbI" / "motif_1" / "b.xyz", ["Pb", "I"], [[0, 0, 0], [3.2, 0, 0]])
    library = read_library(lib, RULES)
    assert library["PbI"].file_count == 2
    assert library["PbI"].motifs == ["motif_1"]
    assert len(library.structures("PbI")) == 2


def test_library_pdb_residue_rules_track_only_matching_atoms(tmp_path):
    lib = tmp_path / "lib"
    rules = {"node": ["Pb"], "linker": ["I"], "shell": [("O", "DMF")], "cutoffs": {"Pb-I": 3.36}}
    write_pdb(lib / "PbI" / "a.pdb", ["Pb", "I", "O", "O"], [[0, 0, 0], [3, 0, 0], [0, 2.5, 0], [0, -30, 0]], ["PBI", "PBI", "dmf", "WAT"])
    library = read_library(lib, rules)
    assert library["PbI"].element_counts == {"Pb": 1, "I": 1, "O": 1}
    assert library["PbI"].mismatched_file_count == 0  # shells are not in the label
    assert library["PbI"].cluster_size == 2


def test_library_unreadable_file_is_warned_not_fatal(tmp_path):
    lib = tmp_path / "lib"
    write_xyz(lib / "PbI" / "a.xyz", ["Pb", "I"], [[0, 0, 0], [3, 0, 0]])
    (lib / "PbI" / "b.xyz").write_text("garbage\n")
    library = read_library(lib, RULES)
    assert library["PbI"].file_count == 2 and library["PbI"].readable_count == 1
    assert any("b.xyz" in w for w in library.warnings)


def test_library_rejects_missing_folder_and_rules_without_nodes(tmp_path):
    with pytest.raises(ValueError, match="structure library folder expected"):
        read_library(tmp_path / "nope", RULES)
    with pytest.raises(ValueError, match="at least one node element"):
        read_library(tmp_path, {"node": [], "linker": ["I"], "cutoffs": {"I-I": 3.0}})
    with pytest.raises(ValueError, match="holds no label folder"):
        read_library(tmp_path, RULES)


def test_parse_label_counts():
    assert parse_label_counts("Pb2I5") == {"Pb": 2, "I": 5}
    assert parse_label_counts("NaCl") == {"Na": 1, "Cl": 1}
    with pytest.raises(ValueError, match="stoichiometry label"):
        parse_label_counts("2PbI")


def test_format_label_order_node_linker_shell():
    types = AtomTypes.from_rules({"node": ["Pb"], "linker": ["I", "Br"], "shell": ["O"], "shells_in_label": True,
                                  "cutoffs": {"Pb-I": 3.36}})
    assert types.format_label({"O": 2, "I": 1, "Pb": 2, "Br": 3}) == "Pb2Br3IO2"
    assert AtomTypes.from_rules(RULES).format_label({"O": 2, "I": 1, "Pb": 2}) == "Pb2I"


LIFETIME_ROW = dict(
    label="Pb2I",
    cluster_size=3,
    mean_lifetime_fs=15.0,
    std_lifetime_fs=5.0,
    completed_lifetime_count=2,
    window_truncated_lifetime_count=1,
    association_rate_per_ps=2.0,
    dissociation_rate_per_ps=1.0,
    occupancy_fraction=0.5,
    mean_count_per_frame=0.6,
    total_observations=6,
    occupied_frames=3,
    association_events=2,
    dissociation_events=2,
)


def test_lifetime_table_from_csv_with_empty_lifetime(tmp_path):
    path = tmp_path / "x_lifetime.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(LIFETIME_ROW))
        w.writeheader()
        w.writerow(LIFETIME_ROW)
        w.writerow(dict(LIFETIME_ROW, label="Pb", mean_lifetime_fs="", std_lifetime_fs=""))
    table = load_lifetime_table(path)
    assert table["Pb2I"]["mean_lifetime_fs"] == 15.0 and table["Pb2I"]["completed_lifetime_count"] == 2
    assert table["Pb"]["mean_lifetime_fs"] is None
    with pytest.raises(ValueError, match="lifetime CSV file expected"):
        load_lifetime_table(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="needs a 'label'"):
        load_lifetime_table([{"cluster_size": 1}])


def test_training_rows_join_and_stability_weight_exact(tmp_path):
    lib = tmp_path / "lib"
    for k in range(3):
        write_xyz(lib / "Pb2I" / f"f{k}.xyz", ["Pb", "I", "Pb"], [[0, 0, 0], [3, 0, 0], [6 + 0.1 * k, 0, 0]])
    write_xyz(lib / "Pb" / "f0.xyz", ["Pb"], [[0, 0, 0]])
    library = read_library(lib, RULES)
    rows, warnings = build_training_rows(library, [LIFETIME_ROW])
    by = {r.label: r for r in rows}
    r = by["Pb2I"]
    assert r.mean_count_per_frame == 0.6 and r.in_dynamics
    expected = 1 + 3 / 10 + 2 / 5 + 5 * 0.6 + 5 * 0.5 + 15.0 / 100
    assert r.stability_weight == pytest.approx(expected, rel=1e-15)
    assert r.observed_weight == pytest.approx(0.6 * 0.5)
    # Pb is not in the dynamics table: zero dynamics, weight >= 1, warning (ref V3)
    assert by["Pb"].mean_count_per_frame == 0 and by["Pb"].mean_lifetime_fs is None and not by["Pb"].in_dynamics
    assert by["Pb"].stability_weight == pytest.approx(1 + 1 / 10)
    assert any("Pb " in w and "never appears" in w for w in warnings)
    assert TrainingRow.from_dict(r.to_dict()) == r


def test_labels_and_rules_agree_with_clusters_module():
    from clusterdynamicsml.clusters import extract as clusters
    rules = clusters.ClusterRules(node=["Pb"], linker=["I", "Br"], shell=[("O", "DMF")], cutoffs={("Pb", "I"): 3.36, ("Pb", "O"): {0: 3.0, 1: 4.0}})
    types = AtomTypes.from_rules(rules)
    assert types.node_elements == ("Pb",) and types.linker_elements == ("Br", "I") and types.shell_elements == ("O",)
    assert types.shell == (("O", "DMF"),)
    assert types.pair_cutoff("I", "Pb") == pytest.approx(3.36) and types.pair_cutoff("O", "Pb") == pytest.approx(3.0)
    for counts in ({"Pb": 2, "I": 5}, {"Pb": 1, "Br": 3, "I": 1}, {"Pb": 4, "I": 1, "Br": 2}):
        assert types.format_label(counts) == clusters.format_label(counts, rules)
        assert parse_label_counts(clusters.format_label(counts, rules)) == clusters.parse_label(clusters.format_label(counts, rules))
