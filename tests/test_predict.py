"""predict_clusters end to end on a tiny synthetic library, target-size rules (ref V1),
uncertainty, validation, tables, JSON round trip, figures, and the real-data validation."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from clusterdynamicsml.library.read import load_lifetime_table, read_library
from clusterdynamicsml.predict.core import (
    PREDICTIONS_CSV_COLUMNS,
    PredictionResult,
    predict_clusters,
    resolve_target_node_counts,
)

RULES = {"node": ["Pb"], "linker": ["I"], "shell": ["O"], "cutoffs": {("Pb", "I"): 3.36, ("Pb", "O"): 3.36}}


def write_chain(path, n_pb, rng, bond=3.2):
    """A zig-zag Pb-I-Pb chain with n_pb nodes and n_pb - 1 bridging iodides, jittered."""
    symbols, pos = [], []
    for k in range(2 * n_pb - 1):
        symbols.append("Pb" if k % 2 == 0 else "I")
        pos.append([k * bond * 0.9, (k % 2) * 1.2, 0.0])
    pos = np.asarray(pos) + rng.normal(scale=0.05, size=(len(pos), 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{len(symbols)}\n\n" + "\n".join(f"{s} {x:.6f} {y:.6f} {z:.6f}" for s, (x, y, z) in zip(symbols, pos)) + "\n")


def lifetime_row(label, size, count, occ, life):
    return dict(
        label=label,
        cluster_size=size,
        mean_lifetime_fs=life,
        std_lifetime_fs=life / 3,
        completed_lifetime_count=4,
        window_truncated_lifetime_count=1,
        association_rate_per_ps=occ * 10,
        dissociation_rate_per_ps=occ * 8,
        occupancy_fraction=occ,
        mean_count_per_frame=count,
        total_observations=int(count * 100),
        occupied_frames=int(occ * 100),
        association_events=5,
        dissociation_events=5,
    )


@pytest.fixture
def chain_library(tmp_path):
    rng = np.random.default_rng(7)
    lib = tmp_path / "lib"
    table = []
    for n, (count, occ, life) in zip(range(1, 5), [(3.0, 1.0, 200.0), (0.8, 0.6, 60.0), (0.3, 0.25, 30.0), (0.1, 0.1, 20.0)]):
        label = "Pb" if n == 1 else f"Pb{n}" + ("I" if n == 2 else f"I{n - 1}")
        for k in range(3):
            write_chain(lib / label / f"frame_{k:04d}_AAA.xyz", n, rng)
        table.append(lifetime_row(label, 2 * n - 1, count, occ, life))
    table.append(lifetime_row("I", 1, 2.0, 1.0, 100.0))  # free linker: in the dynamics, not in the library
    return lib, table


def test_predict_clusters_end_to_end(chain_library, tmp_path):
    lib, table = chain_library
    res = predict_clusters(lib, table, RULES, [5, 6], timestep_fs=10.0, n_bootstrap=30, seed=1, debye_waller=False)
    assert res.max_observed_node_count == 4 and res.target_node_counts == [5, 6]
    assert res.candidates, "predictions"
    assert all(c.label.startswith(("Pb5", "Pb6")) and c.label not in ("Pb5", "Pb6") for c in res.candidates)
    assert all(c.counts.get("I", 0) >= {5: 3, 6: 3}[c.node_count] for c in res.candidates)  # floors ceil(n * 1/2)
    assert sum(c.share for c in res.candidates) == pytest.approx(1.0)
    assert all(c.share > 0 for c in res.candidates)
    assert [c.node_count for c in res.candidates] == sorted((c.node_count for c in res.candidates), reverse=True)
    # the trend route finds the true chain composition Pb_n I_(n-1)
    assert {"Pb5I4", "Pb6I5"} <= {c.label for c in res.candidates}
    # tail anchoring: predicted mass <= the largest observed size's mass
    assert sum(c.weight for c in res.candidates) <= res.mass["largest_mass"] + 1e-12
    # every predicted quantity has a bootstrap summary
    for c in res.candidates:
        for key in ("mean_count_per_frame", "occupancy_fraction", "mean_lifetime_fs", "association_rate_per_ps", "dissociation_rate_per_ps", "mean_radius_of_gyration", "mean_max_radius", "mean_semiaxis_a", "mean_semiaxis_b", "mean_semiaxis_c", "share", "weight", "count_I"):
            u = c.uncertainty[key]
            assert u["n"] > 0 and u["p05"] <= u["p50"] <= u["p95"], (c.label, key, u)
        assert 0.0 <= c.uncertainty["selection_frequency"] <= 1.0
    # along the chain series (trend route) Rg keeps growing with size
    trend = sorted((c for c in res.candidates if c.route == "trend"), key=lambda c: c.node_count)
    rg = [res.training_rows[-1].mean_radius_of_gyration] + [c.predicted["mean_radius_of_gyration"] for c in trend]
    assert rg == sorted(rg) and len(rg) == 3
    # validation: hold out Pb4I3, predict node count 4 from sizes 1-3
    v = res.validation
    assert v["held_out_node_count"] == 4 and v["train_node_counts"] == [1, 2, 3]
    assert [o["label"] for o in v["observed"]] == ["Pb4I3"]
    assert v["predicted"] and v["predicted"][0]["rank"] == 1
    assert v["top1_match"] == (v["predicted"][0]["label"] == "Pb4I3")
    assert 0.0 <= v["label_recall"] <= 1.0 and 0.0 <= v["share_overlap"] <= 1.0
    assert sum(p["share"] for p in v["predicted"]) == pytest.approx(1.0)
    assert v["predicted_mass"] > 0 and v["observed_mass"] == pytest.approx(0.1 * 0.1)
    # library label never in frames: none here; the free linker I has no library folder
    assert not any("never appears" in w for w in res.warnings)


def test_tables_json_round_trip_and_files(chain_library, tmp_path):
    lib, table = chain_library
    res = predict_clusters(lib, table, RULES, max_node_count=5, timestep_fs=10.0, n_bootstrap=10, debye_waller=False)
    preds = res.predictions_table()
    assert list(preds[0])[: len(PREDICTIONS_CSV_COLUMNS)] == list(PREDICTIONS_CSV_COLUMNS)
    combined = res.combined_lifetime_table()
    assert {r["source"] for r in combined} == {"observed", "predicted"}
    assert len([r for r in combined if r["source"] == "observed"]) == len(table)
    hist = res.histogram_tables()
    assert sum(r["normalized_weight"] for r in hist["observed"]) == pytest.approx(1.0)
    assert sum(r["normalized_weight"] for r in hist["observed_plus_predicted"]) == pytest.approx(1.0)
    assert {r["source"] for r in hist["observed_plus_predicted"]} == {"observed", "predicted"}
    data = res.to_dict()
    text = json.dumps(data)
    again = PredictionResult.from_dict(json.loads(text))
    assert again.to_dict() == data
    assert again.candidates[0].counts == res.candidates[0].counts
    paths = res.save(tmp_path / "out", "run")
    with open(paths["predictions"]) as fh:
        header = next(csv.reader(fh))
    assert header[: len(PREDICTIONS_CSV_COLUMNS)] == list(PREDICTIONS_CSV_COLUMNS)
    with open(paths["observed_histogram"]) as fh:
        assert next(csv.reader(fh)) == ["label", "source", "node_count", "mean_lifetime_fs", "mean_count_per_frame", "mean_max_radius", "raw_weight", "normalized_weight"]
    assert PredictionResult.load(paths["json"]).to_dict() == data
    with pytest.raises(ValueError, match="version 1 expected"):
        PredictionResult.from_dict({"version": 99})


def test_same_seed_same_uncertainty(chain_library):
    lib, table = chain_library
    a = predict_clusters(lib, table, RULES, [5], timestep_fs=10.0, n_bootstrap=15, seed=3, validate=False, debye_waller=False)
    b = predict_clusters(lib, table, RULES, [5], timestep_fs=10.0, n_bootstrap=15, seed=3, validate=False, debye_waller=False)
    assert [c.uncertainty for c in a.candidates] == [c.uncertainty for c in b.candidates]


def test_target_sizes_at_or_below_observed_are_an_error_or_explicit_warning(chain_library):
    lib, table = chain_library
    with pytest.raises(ValueError, match=r"\[3, 4\] are at or below the largest observed node count 4"):
        predict_clusters(lib, table, RULES, [3, 4, 5], timestep_fs=10.0, n_bootstrap=0, debye_waller=False)
    res = predict_clusters(lib, table, RULES, [3, 5], timestep_fs=10.0, n_bootstrap=0, observed_targets="warn", validate=False, debye_waller=False)
    assert res.target_node_counts == [5]
    assert any("[3]" in w and "dropped" in w for w in res.warnings)
    with pytest.raises(ValueError, match="no target node count above"):
        predict_clusters(lib, table, RULES, [2, 3], timestep_fs=10.0, n_bootstrap=0, observed_targets="warn", debye_waller=False)


def test_resolve_target_node_counts_defaults_and_validation():
    assert resolve_target_node_counts(3) == [4, 5]
    assert resolve_target_node_counts(3, max_node_count=6) == [4, 5, 6]
    with pytest.raises(ValueError, match="must exceed the largest observed"):
        resolve_target_node_counts(3, max_node_count=3)
    with pytest.raises(ValueError, match="positive integers"):
        resolve_target_node_counts(3, [4.5])
    with pytest.raises(ValueError, match="not both"):
        resolve_target_node_counts(3, [4], 5)
    with pytest.raises(ValueError, match="observed_targets must be"):
        resolve_target_node_counts(3, [4], observed_targets="ignore")


def test_bad_parameters_and_too_few_sizes(chain_library, tmp_path):
    lib, table = chain_library
    with pytest.raises(ValueError, match="candidates_per_size"):
        predict_clusters(lib, table, RULES, [5], candidates_per_size=0)
    with pytest.raises(ValueError, match="share_threshold"):
        predict_clusters(lib, table, RULES, [5], share_threshold=1.5)
    with pytest.raises(ValueError, match="timestep_fs"):
        predict_clusters(lib, table, RULES, [5], timestep_fs=-1)
    rng = np.random.default_rng(0)
    one = tmp_path / "one"
    write_chain(one / "Pb2I" / "a.xyz", 2, rng)
    with pytest.raises(ValueError, match="at least 2 distinct observed node counts"):
        predict_clusters(one, table, RULES, [3], timestep_fs=10.0, n_bootstrap=0)


def test_library_object_and_missing_labels_warn(chain_library):
    lib, table = chain_library
    library = read_library(lib, RULES)
    res = predict_clusters(library, [r for r in table if r["label"] != "Pb3I2"], RULES, [5], timestep_fs=10.0, n_bootstrap=0, debye_waller=False)
    assert any("Pb3I2" in w and "never appears" in w for w in res.warnings)
    assert res.validation["held_out_node_count"] == 4


def test_default_timestep_is_announced(chain_library):
    lib, table = chain_library
    res = predict_clusters(lib, table, RULES, [5], n_bootstrap=0, validate=False, debye_waller=False)
    assert res.timestep_fs == 0.5 and any("0.5 fs" in w for w in res.warnings)


def test_figures_written(chain_library, tmp_path):
    from clusterdynamicsml.plot.predict import plot_population_histograms, plot_prediction_table

    lib, table = chain_library
    res = predict_clusters(lib, table, RULES, [5, 6], timestep_fs=10.0, n_bootstrap=10, debye_waller=False)
    for fn, stem in ((plot_population_histograms, "hist"), (plot_prediction_table, "table")):
        png, svg = fn(res, tmp_path / "fig" / stem)
        assert png.stat().st_size > 1000 and svg.stat().st_size > 1000


# ------------------------------------------------------------------------------------------
# real data: molten NaCl at 2.6 A (needs frames, clusters, library, dynamics from main)


def _needed_pipeline():
    from clusterdynamicsml.clusters import extract as clusters
    from clusterdynamicsml.dynamics import analyze as dynamics
    from clusterdynamicsml.io import frames
    from clusterdynamicsml.library import write as library

    return frames, clusters, library, dynamics


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_nacl_validation_report(shared_data, tmp_path):
    """Molten NaCl at Na-Cl <= 2.6 A: library and dynamics from the first half of the frames,
    train on node counts <= 4, predict 5 and 6, compare with the whole trajectory."""
    frames_mod, clusters_mod, library_mod, dynamics_mod = _needed_pipeline()
    from clusterdynamicsml.predict.core import compare_with_observed

    path = shared_data / "nacl_molten_1400K_zincware" / "NaCl_1400K_0.extxyz"
    rules = clusters_mod.ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6})
    source = frames_mod.read_frames(path)
    half = [source[k] for k in range(len(source) // 2)]
    library_mod.write_library(half, rules, tmp_path / "lib")
    dyn_half = dynamics_mod.analyze_dynamics(half, rules)
    dyn_full = dynamics_mod.analyze_dynamics(path, rules)
    library = read_library(tmp_path / "lib", rules)
    sizes = sorted({o.node_count for o in library})
    assert sizes[:4] == [1, 2, 3, 4] and sizes[-1] >= 6, sizes
    small = type(library)(library.root, library.types, [o for o in library if o.node_count <= 4], library.warnings)
    full_rows = list(load_lifetime_table(dyn_full).values())
    report = {}
    for transform in ("reference", "log"):
        res = predict_clusters(small, dyn_half, rules, [5, 6], n_bootstrap=50, seed=0, debye_waller=False, population_transform=transform)
        assert res.candidates and res.validation["held_out_node_count"] == 4
        assert [o["label"] for o in res.validation["observed"]], "labels observed at the held-out size"
        cmp = compare_with_observed(res.candidates, full_rows, small.types)
        for size, entry in cmp["sizes"].items():
            assert entry["observed"], f"no cluster with {size} nodes observed in the full trajectory"
            for key in ("label_recall", "label_precision", "share_overlap"):
                assert 0.0 <= entry[key] <= 1.0
        keys = ("top1_match", "label_recall", "label_precision", "share_overlap", "top1_composition_distance", "predicted_mass", "observed_mass")
        report[transform] = {
            "leave_largest_out": {k: res.validation.get(k) for k in ("held_out_node_count", *keys)},
            "predicted": {s: [(p["label"], round(p["share"], 3)) for p in e["predicted"]] for s, e in cmp["sizes"].items()},
            "observed": {s: [(o["label"], round(o["share"], 3)) for o in e["observed"][:4]] for s, e in cmp["sizes"].items()},
            "vs_full_trajectory": {s: {k: e[k] for k in keys} for s, e in cmp["sizes"].items()},
        }
    # the log population transform keeps the extrapolated populations positive, and it finds observed labels
    assert report["log"]["vs_full_trajectory"][5]["label_precision"] > 0
    print("NaCl validation:", json.dumps(report, default=str, indent=1))


def test_population_transform_option_is_recorded_and_validated(chain_library):
    lib, table = chain_library
    res = predict_clusters(lib, table, RULES, [5], timestep_fs=10.0, n_bootstrap=5, debye_waller=False, population_transform="log")
    assert res.settings["population_transform"] == "log"
    assert all(c.predicted["mean_count_per_frame"] > 0 for c in res.candidates)
    with pytest.raises(ValueError, match="population_transform must be"):
        predict_clusters(lib, table, RULES, [5], timestep_fs=10.0, n_bootstrap=0, population_transform="exp")


def test_compare_with_observed_known_answer():
    from clusterdynamicsml.library.read import AtomTypes
    from clusterdynamicsml.predict.candidates import Candidate
    from clusterdynamicsml.predict.core import compare_with_observed

    types = AtomTypes.from_rules(RULES)
    a = Candidate(5, "Pb5I4", {"Pb": 5, "I": 4}, "trend", rank=1, share=0.6, weight=0.006)
    b = Candidate(5, "Pb5I3", {"Pb": 5, "I": 3}, "scaled", rank=2, share=0.2, weight=0.002)
    a.predicted = {"mean_count_per_frame": 0.05, "occupancy_fraction": 0.05}
    a.uncertainty = {"mean_count_per_frame": {"p05": 0.01, "p95": 0.2}}
    b.predicted = {}
    observed = [
        {"label": "Pb5I4", "mean_count_per_frame": 0.1, "occupancy_fraction": 0.1},  # weight 0.01
        {"label": "Pb5I6", "mean_count_per_frame": 0.1, "occupancy_fraction": 0.3},  # weight 0.03
        {"label": "Pb4I3", "mean_count_per_frame": 1.0, "occupancy_fraction": 1.0},  # other size
        {"label": "Pb5I2", "mean_count_per_frame": 0.0, "occupancy_fraction": 0.0},  # weight 0: ignored
    ]
    e = compare_with_observed([a, b], observed, types)["sizes"][5]
    assert [o["label"] for o in e["observed"]] == ["Pb5I6", "Pb5I4"]
    assert e["observed_mass"] == pytest.approx(0.04) and e["predicted_mass"] == pytest.approx(0.008)
    assert e["top1_match"] is False
    assert e["label_recall"] == pytest.approx(0.25)
    assert e["label_precision"] == pytest.approx(0.5)
    # predicted within-size shares 0.75 / 0.25, observed 0.75 (Pb5I6) / 0.25 (Pb5I4)
    assert e["share_overlap"] == pytest.approx(0.25)
    assert e["top1_composition_distance"] == pytest.approx(2 / 5)
    (m,) = e["matched"]
    assert m["properties"]["mean_count_per_frame"] == {"predicted": 0.05, "observed": 0.1, "in_interval_05_95": True}


def test_leave_largest_size_out_needs_three_sizes(tmp_path):
    from clusterdynamicsml.library.read import AtomTypes, build_training_rows
    from clusterdynamicsml.predict.core import leave_largest_size_out

    rng = np.random.default_rng(1)
    for n, label in ((1, "Pb"), (2, "Pb2I")):
        write_chain(tmp_path / "lib" / label / "a.xyz", n, rng)
    library = read_library(tmp_path / "lib", RULES)
    rows, _ = build_training_rows(library, [])
    out = leave_largest_size_out(rows, AtomTypes.from_rules(RULES), 10.0)
    assert "skipped" in out and "3 distinct" in out["skipped"]
