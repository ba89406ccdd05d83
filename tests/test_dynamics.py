"""Cluster dynamics (SPEC §3, ref §3): window, bins, matrices, lifetimes, dataset I/O, analyze_dynamics."""
from __future__ import annotations

import csv
import io
import json
import math
import tracemalloc
from collections import deque

import numpy as np
import pytest

import clusterdynamicsml as cdml
from _dynamics_standin import (
    IODIDE,
    PB,
    PB2I,
    RULES,
    T10,
    SyntheticTrajectory,
    failing_counter,
    half_box_counter,
    ref_fixture,
    standin_count_labels,
    write_energy_file,
)
from clusterdynamicsml.dynamics.analyze import (
    DynamicsResult,
    analyze_dynamics,
    assign_bins,
    build_bin_edges,
    dynamics_from_counts,
    kaplan_meier_mean,
    label_size,
    resolve_bin_width,
    resolve_time_window,
    series_lifetimes,
    summarize_series,
)


# --------------------------------------------------------------------------------------
# slow, obviously-correct reference of ref §3.5 (a deque of instances, one frame at a time)
# --------------------------------------------------------------------------------------
def reference_lifetimes(c, t, start, stop):
    stop_obs = max(stop, t[-1])
    queue = deque((t[0], True) for _ in range(c[0]))
    completed, truncated = [], []
    assoc = dissoc = 0
    for f in range(1, len(c)):
        d = c[f] - c[f - 1]
        if d > 0:
            assoc += d
            queue.extend((t[f], False) for _ in range(d))
        elif d < 0:
            dissoc += -d
            for _ in range(-d):
                birth, left = queue.popleft()
                (truncated if left else completed).append(max(t[f] - birth, 0.0))
    truncated.extend(stop_obs - birth for birth, _ in queue)
    return completed, truncated, assoc, dissoc


# --------------------------------------------------------------------------------------
# the worked example and the reference fixture
# --------------------------------------------------------------------------------------
def test_reference_worked_example_pb2i():
    row = summarize_series(PB2I, T10, 0.0, 60.0, label="Pb2I", cluster_size=3)
    assert row.completed_lifetime_count == 2
    assert row.window_truncated_lifetime_count == 0
    assert row.mean_lifetime_fs == 15.0
    assert row.std_lifetime_fs == 5.0
    assert row.association_events == 2 and row.dissociation_events == 2
    life = series_lifetimes(PB2I, T10, 60.0)
    assert sorted(life.completed.tolist()) == [10.0, 20.0]
    # rates per ps over the 60 fs window
    assert row.association_rate_per_ps == pytest.approx(2 / 0.06)
    assert row.occupancy_fraction == 0.5 and row.occupied_frames == 3 and row.total_observations == 3
    # no censoring in this series: the censoring-aware estimates agree with the plain mean
    assert row.km_mean_lifetime_fs == 15.0 and not row.km_mean_is_restricted
    assert row.mle_lifetime_fs == 15.0


def test_reference_workflow_fixture_bins_and_size_table():
    r = ref_fixture()
    assert r.labels == ["I", "Pb", "Pb2I"]  # sorted by size, then label
    assert r.label_sizes.tolist() == [1, 1, 3]
    assert r.n_frames == 6 and r.n_bins == 2
    assert (r.start_fs, r.stop_fs) == (0.0, 60.0)
    assert r.bin_edges_fs.tolist() == [0.0, 30.0, 60.0]
    assert r.raw_count_matrix.tolist() == [[1, 2], [2, 4], [2, 1]]
    assert r.frames_in_bin.tolist() == [3, 3]
    pb2i = r.lifetime_row("Pb2I")
    assert (pb2i.cluster_size, pb2i.completed_lifetime_count, pb2i.window_truncated_lifetime_count) == (3, 2, 0)
    assert (pb2i.mean_lifetime_fs, pb2i.std_lifetime_fs) == (15.0, 5.0)
    size1 = next(s for s in r.lifetime_by_size if s.cluster_size == 1)
    assert size1.label is None
    assert (size1.completed_lifetime_count, size1.window_truncated_lifetime_count) == (3, 6)
    assert (size1.mean_lifetime_fs, size1.std_lifetime_fs) == (10.0, 0.0)


def test_matrices_follow_their_definitions():
    r = ref_fixture()
    raw = r.raw_count_matrix
    np.testing.assert_array_equal(r.total_clusters_per_bin, raw.sum(axis=0))
    np.testing.assert_allclose(r.fraction_matrix, raw / raw.sum(axis=0))
    np.testing.assert_allclose(r.mean_count_matrix, raw / r.frames_in_bin)
    np.testing.assert_array_equal(r.frame_count_matrix, np.array([IODIDE, PB, PB2I]))
    np.testing.assert_array_equal(r.total_clusters_per_frame, np.array([IODIDE, PB, PB2I]).sum(axis=0))
    assert r.raw_count_matrix.dtype == np.int64 and r.fraction_matrix.dtype == np.float64


def test_empty_bins_give_zero_fraction_and_mean_not_nan():
    # frames at 0 and 30 fs with dt = 10 and one frame per bin: bins 1 and 2 hold no frame
    r = dynamics_from_counts([0.0, 30.0], [[1], [2]], ["Na"], timestep_fs=10.0)
    assert r.frames_in_bin.tolist() == [1, 0, 0, 1]
    assert r.fraction_matrix.tolist() == [[1.0, 0.0, 0.0, 1.0]]
    assert r.mean_count_matrix.tolist() == [[1.0, 0.0, 0.0, 2.0]]
    assert any("smaller than the frame spacing" in w for w in r.time_warnings)


# --------------------------------------------------------------------------------------
# window and bins (ref §3.1 to §3.3)
# --------------------------------------------------------------------------------------
def test_frame_exactly_on_a_bin_edge_goes_to_the_later_bin():
    edges = build_bin_edges(0.0, 60.0, 30.0)
    assert assign_bins([0.0, 29.999, 30.0, 59.9, 60.0], edges).tolist() == [0, 0, 1, 1, 1]
    r = ref_fixture()
    assert r.raw_count_matrix[r.labels.index("Pb2I")].tolist() == [2, 1]  # the frame at 30 fs is in bin 1


def test_frame_on_an_edge_despite_float_rounding():
    # 9 x 0.1 = 0.9 but the edge 3 x (3 x 0.1) = 0.9000000000000001: the frame is still on the edge
    r = dynamics_from_counts(np.arange(10) * 0.1, np.ones((10, 1), dtype=int), ["Na"], timestep_fs=0.1, frames_per_bin=3)
    assert r.frames_in_bin.tolist() == [3, 3, 3, 1]


def test_explicit_stop_is_inclusive_default_stop_is_last_plus_dt():
    r = ref_fixture(frames_per_bin=2, start_fs=10.0, stop_fs=40.0)
    assert r.frame_times_fs.tolist() == [10.0, 20.0, 30.0, 40.0]  # 40 included
    assert r.frame_indices.tolist() == [1, 2, 3, 4]
    assert r.bin_width_fs == 20.0 and r.n_bins == 2 and r.stop_is_explicit
    default = ref_fixture(start_fs=10.0)
    assert default.stop_fs == 60.0 and not default.stop_is_explicit
    assert default.frame_times_fs.tolist() == [10.0, 20.0, 30.0, 40.0, 50.0]
    w = resolve_time_window([0.0, 10.0, 20.0], 10.0)
    assert (w.start_fs, w.stop_fs, w.selected.tolist()) == (0.0, 30.0, [True, True, True])


def test_rates_use_the_observed_window_with_and_without_explicit_stop():
    row = ref_fixture(stop_fs=100.0).lifetime_row("Pb2I")
    assert row.association_rate_per_ps == pytest.approx(2 / 0.1)
    # an explicit stop before the last selected frame's time cannot happen (inclusive), and a stop
    # at or before the start becomes start + dt (ref §3.2)
    w = resolve_time_window(T10, 10.0, start_fs=20.0, stop_fs=5.0)
    assert (w.start_fs, w.stop_fs) == (20.0, 30.0) and w.selected.tolist() == [False, False, True, True, False, False]


def test_bin_width_resolution_and_rejections():
    assert resolve_bin_width(0.5) == (1, 0.5)
    assert resolve_bin_width(0.5, 4) == (4, 2.0)
    assert resolve_bin_width(0.5, bin_width_fs=2.0) == (4, 2.0)
    assert resolve_bin_width(0.5, 4, 2.0) == (4, 2.0)
    with pytest.raises(ValueError, match="integer multiple of timestep_fs"):
        resolve_bin_width(10.0, bin_width_fs=15.0)
    with pytest.raises(ValueError, match="does not match frames_per_bin"):
        resolve_bin_width(10.0, 2, 30.0)
    for bad in (2.5, 0, -1, True, "3"):
        with pytest.raises(ValueError, match="frames_per_bin must be a positive integer"):
            resolve_bin_width(10.0, bad)
    with pytest.raises(ValueError, match="timestep_fs must be > 0"):
        resolve_bin_width(0.0)
    assert resolve_bin_width(10.0, bin_width_fs=15.0, require_integral_ratio=False) == (2, 15.0)
    with pytest.raises(ValueError, match="integer multiple"):
        ref_fixture(frames_per_bin=None, bin_width_fs=25.0)


def test_empty_window_is_rejected():
    with pytest.raises(ValueError, match=r"no frames in the analysis window \[100, 110\) fs"):
        ref_fixture(start_fs=100.0)
    with pytest.raises(ValueError, match="no frames in the analysis window"):
        ref_fixture(start_fs=1.0, stop_fs=9.0)


def test_bin_count_is_not_inflated_by_rounding():
    edges = build_bin_edges(0.0, 0.3, 0.1)  # 0.3 / 0.1 = 2.9999999999999996
    assert edges.size == 4
    assert build_bin_edges(0.0, 0.0, 1.0).size == 2  # at least one bin


# --------------------------------------------------------------------------------------
# lifetimes (ref §3.5) and censoring
# --------------------------------------------------------------------------------------
def test_fifo_pairs_the_oldest_instance_first():
    t = np.array([0.0, 10.0, 20.0, 30.0])
    life = series_lifetimes([1, 2, 1, 0], t, 40.0)
    assert life.left_truncated.tolist() == [20.0]  # the instance present at t=0 dies first
    assert life.completed.tolist() == [20.0]  # the one born at 10 dies at 30


def test_censoring_at_both_ends():
    t = T10
    c = [2, 2, 1, 1, 3, 3]
    life = series_lifetimes(c, t, 60.0)
    assert life.left_truncated.tolist() == [20.0]  # present at start, died at 20
    assert life.spanning.tolist() == [60.0]  # present at start, alive at the end
    assert life.right_truncated.tolist() == [20.0, 20.0]  # born at 40, alive at the end (T_obs = 60)
    assert life.completed.size == 0
    row = summarize_series(c, t, 0.0, 60.0)
    assert row.completed_lifetime_count == 0 and row.window_truncated_lifetime_count == 4
    assert row.mean_lifetime_fs is None and row.std_lifetime_fs is None
    assert row.km_mean_lifetime_fs == 20.0 and row.km_mean_is_restricted  # lower bound only
    # exposure = integral of the count = 120 fs, one observed death
    assert row.mle_lifetime_fs == 120.0 and row.mle_lifetime_stderr_fs == 120.0


def test_simultaneous_birth_and_death():
    t = np.array([0.0, 10.0, 20.0])
    # one label dies while another of the same size is born in the same frame
    r = dynamics_from_counts(t, [[1, 0], [0, 1], [0, 1]], ["Pb2", "I2"], timestep_fs=10.0)
    for lab in ("Pb2", "I2"):
        row = r.lifetime_row(lab)
        assert row.association_events + row.dissociation_events == 1
    size2 = r.lifetime_by_size[0]
    assert size2.cluster_size == 2 and size2.association_events == 0 and size2.dissociation_events == 0
    assert size2.window_truncated_lifetime_count == 1  # one anonymous instance spans the window
    # within one label a death and a birth between two samples cancel (ref N5): nothing is seen
    row = summarize_series([1, 1, 1], t, 0.0, 30.0)
    assert row.association_events == row.dissociation_events == 0 and row.window_truncated_lifetime_count == 1
    # a frame with both an increase for one instance type and decrease for another: counts 2 -> 0 -> 2
    row = summarize_series([2, 0, 2], t, 0.0, 30.0)
    assert (row.association_events, row.dissociation_events) == (2, 2)
    assert row.window_truncated_lifetime_count == 4 and row.completed_lifetime_count == 0


@pytest.mark.parametrize("seed", range(25))
def test_vectorised_lifetimes_match_the_slow_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    c = np.clip(np.cumsum(rng.integers(-2, 3, size=n)) + rng.integers(0, 3), 0, None)
    t = np.cumsum(rng.uniform(0.5, 3.0, size=n))
    stop = float(t[-1] + rng.uniform(0.0, 2.0))
    completed, truncated, assoc, dissoc = reference_lifetimes(c.tolist(), t.tolist(), float(t[0]), stop)
    row = summarize_series(c, t, float(t[0]), stop)
    msg = f"seed {seed}, n={n}, counts={c.tolist()}"
    assert (row.association_events, row.dissociation_events) == (assoc, dissoc), msg
    assert row.completed_lifetime_count == len(completed), msg
    assert row.window_truncated_lifetime_count == len(truncated), msg
    life = series_lifetimes(c, t, max(stop, t[-1]))
    np.testing.assert_allclose(np.sort(life.completed), np.sort(completed), err_msg=msg)
    np.testing.assert_allclose(np.sort(life.window_truncated), np.sort(truncated), err_msg=msg)
    if completed:
        assert row.mean_lifetime_fs == pytest.approx(np.mean(completed)), msg
        assert row.std_lifetime_fs == pytest.approx(np.std(completed)), msg
    # the MLE exposure is the time integral of the sample-and-hold count
    widths = np.diff(np.append(t, max(stop, t[-1])))
    if dissoc:
        assert row.mle_lifetime_fs == pytest.approx(float(np.sum(c * widths)) / dissoc), msg


def test_kaplan_meier_known_values():
    assert kaplan_meier_mean([1.0, 2.0, 3.0], [True, True, True]) == (2.0, False)
    # S: 1 -> 3/4 at t=1 -> 1/2 at t=2 (3 at risk, one event, one censored) -> 0 at t=3
    assert kaplan_meier_mean([1.0, 2.0, 2.0, 3.0], [True, False, True, True]) == (2.25, False)
    mean, restricted = kaplan_meier_mean([1.0, 4.0], [True, False])
    assert (mean, restricted) == (1.0 + 0.5 * 3.0, True)
    assert kaplan_meier_mean([], []) == (None, False)


def test_censoring_aware_estimates_are_not_biased_short():
    """Exponential lifetimes (tau = 400 fs) of a sparse label seen in 1000 fs windows, pooled over
    60 independent windows: the completed-only mean is biased short; the MLE recovers tau."""
    rng = np.random.default_rng(7)
    tau, dt, n_frames = 400.0, 5.0, 200
    t = np.arange(n_frames) * dt
    completed, exposure, deaths = [], 0.0, 0
    for _ in range(60):
        births = np.concatenate([np.zeros(1), rng.uniform(0.0, t[-1], size=3)])
        ends = births + rng.exponential(tau, size=births.size)
        counts = ((births[None, :] <= t[:, None]) & (ends[None, :] > t[:, None])).sum(axis=1)
        row = summarize_series(counts, t, 0.0, float(t[-1] + dt))
        completed += series_lifetimes(counts, t, float(t[-1] + dt)).completed.tolist()
        if row.mle_lifetime_fs is not None:
            exposure += row.mle_lifetime_fs * row.dissociation_events
            deaths += row.dissociation_events
    assert np.mean(completed) < 0.75 * tau
    assert exposure / deaths == pytest.approx(tau, rel=0.15)


def test_label_size():
    assert label_size("Pb2I5") == 7 and label_size("Na") == 1 and label_size("Na32Cl32") == 64
    for bad in ("", "2Pb", "pb", "Pb-I", None):
        with pytest.raises(ValueError, match="cannot read the cluster size"):
            label_size(bad)


def test_dynamics_from_counts_rejects_bad_input():
    with pytest.raises(ValueError, match="strictly increasing; frame 2 has time 10 fs after 10 fs"):
        dynamics_from_counts([0.0, 10.0, 10.0], [[1], [1], [1]], ["Na"], timestep_fs=10.0)
    with pytest.raises(ValueError, match=r"counts must have shape \(frames, labels\) = \(2, 1\)"):
        dynamics_from_counts([0.0, 10.0], [[1, 2], [1, 2]], ["Na"])
    with pytest.raises(ValueError, match="non-negative"):
        dynamics_from_counts([0.0, 10.0], [[1], [-1]], ["Na"])
    with pytest.raises(ValueError, match="must be integers"):
        dynamics_from_counts([0.0, 10.0], [[1.5], [1]], ["Na"])
    with pytest.raises(ValueError, match="labels must be distinct"):
        dynamics_from_counts([0.0], [[1, 1]], ["Na", "Na"])
    with pytest.raises(ValueError, match="non-empty"):
        dynamics_from_counts([], [], [])
    with pytest.raises(ValueError, match="label_sizes has no size"):
        dynamics_from_counts([0.0], [[1]], ["X"], label_sizes={})


def test_timestep_inferred_when_not_given():
    r = dynamics_from_counts(T10, np.array([PB2I]).T, ["Pb2I"])
    assert r.timestep_fs == 10.0 and any("median frame spacing 10 fs" in w for w in r.time_warnings)
    one = dynamics_from_counts([5.0], [[1]], ["Na"])
    assert one.timestep_fs == 0.5 and one.stop_fs == 5.5


def test_labels_absent_from_the_window_are_dropped():
    r = dynamics_from_counts(T10, np.array([[0, 0, 0, 0, 0, 3], PB2I]).T, ["Na", "Pb2I"], timestep_fs=10.0, stop_fs=40.0)
    assert r.labels == ["Pb2I"]


# --------------------------------------------------------------------------------------
# dataset JSON and CSV (ref §3.7)
# --------------------------------------------------------------------------------------
def test_dataset_roundtrip_is_field_by_field_equal(tmp_path):
    from clusterdynamicsml.io.energy import read_cp2k_ener

    energy = read_cp2k_ener(write_energy_file(tmp_path))
    r = ref_fixture(energy=energy, time_warnings=["note"], settings={"rules": "x", "path": tmp_path})
    paths = r.save(tmp_path / "X.json")
    assert [p.name for p in paths] == ["X.json", "X_cluster_distribution.csv", "X_lifetime.csv", "X_energy.csv"]
    back = DynamicsResult.load(tmp_path / "X.json")
    assert back.differences(r) == [] and back == r
    for f in ("fraction_matrix", "raw_count_matrix", "frame_count_matrix", "bin_edges_fs"):
        a, b = getattr(back, f), getattr(r, f)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert back.lifetime_by_label == r.lifetime_by_label and back.energy == r.energy
    data = json.loads((tmp_path / "X.json").read_text())
    assert data["version"] == 1 and data["cluster_labels"] == ["I", "Pb", "Pb2I"]
    assert data["frames_per_bin"] == [3, 3] and data["preview"]["frames_per_colormap_timestep"] == 3
    # an edited field is detected by the equality
    back.bin_counts.data[0] += 1
    assert back.differences(r) == ["bin_counts"]
    # the fraction and mean-count matrices are derived from the counts on load: an edited one is refused
    data["fraction_matrix"][1][0] += 1e-15
    with pytest.raises(ValueError, match=r"fraction_matrix, label 'Pb': the values are not raw_count_matrix divided"):
        DynamicsResult.from_dict(data)


def test_dataset_roundtrip_without_any_cluster(tmp_path):
    r = dynamics_from_counts([0.0, 1.0, 2.0], np.zeros((3, 1), dtype=int), ["Na"], timestep_fs=1.0)
    assert r.labels == [] and r.raw_count_matrix.shape == (0, 3) and r.frame_count_matrix.shape == (0, 3)
    assert r.fraction_matrix.shape == (0, 3) and r.lifetime_by_label == [] and r.lifetime_by_size == []
    r.save(tmp_path / "empty.json")
    assert DynamicsResult.load(tmp_path / "empty.json") == r


def test_dataset_load_rejects_other_versions_and_renames_old_key(tmp_path):
    r = ref_fixture()
    data = r.to_dict()
    data["version"] = 2
    (tmp_path / "v2.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="unsupported dataset version 2"):
        DynamicsResult.load(tmp_path / "v2.json")
    data = r.to_dict()
    for row in data["lifetime_by_label"]:
        row["censored_lifetime_count"] = row.pop("window_truncated_lifetime_count")
    assert DynamicsResult.from_dict(data) == r
    (tmp_path / "bad.json").write_text('{"format": 1,\n')
    with pytest.raises(ValueError, match=r"bad.json, line 2: invalid JSON"):
        DynamicsResult.load(tmp_path / "bad.json")
    del data["bin_edges_fs"]
    with pytest.raises(ValueError, match="missing the key 'bin_edges_fs'"):
        DynamicsResult.from_dict(data)


def test_csv_columns_and_formatting(tmp_path):
    from clusterdynamicsml.dynamics.analyze import CLUSTER_DISTRIBUTION_COLUMNS, LIFETIME_COLUMNS

    r = ref_fixture()
    r.save(tmp_path / "X.json")
    assert not (tmp_path / "X_energy.csv").exists()
    rows = list(csv.DictReader(open(tmp_path / "X_lifetime.csv")))
    assert list(rows[0])[: len(LIFETIME_COLUMNS)] == list(LIFETIME_COLUMNS)
    pb2i = next(row for row in rows if row["label"] == "Pb2I")
    assert (pb2i["mean_lifetime_fs"], pb2i["std_lifetime_fs"]) == ("15", "5")  # %.12g
    assert pb2i["completed_lifetime_count"] == "2" and pb2i["association_events"] == "2"
    dist = list(csv.DictReader(open(tmp_path / "X_cluster_distribution.csv")))
    assert tuple(dist[0]) == CLUSTER_DISTRIBUTION_COLUMNS
    assert len(dist) == len(r.labels) * r.n_bins
    first = dist[0]
    assert (first["label"], first["bin_index"], first["display_mode"], first["time_unit"]) == ("I", "0", "fraction", "fs")
    assert float(first["colormap_value"]) == r.fraction_matrix[0, 0]
    ps = list(csv.DictReader(io.StringIO(r.distribution_csv("mean_count", "ps"))))
    assert ps[1]["bin_start_time"] == "0.03" and float(ps[1]["colormap_value"]) == r.mean_count_matrix[0, 1]
    # None is written as an empty cell
    none_row = summarize_series([1, 1], [0.0, 1.0], 0.0, 2.0, label="Na", cluster_size=1)
    r.lifetime_by_label = [none_row]
    text = r.lifetime_csv().splitlines()[1].split(",")
    assert text[2] == "" and text[3] == ""


def test_energy_csv_and_overlay_window(tmp_path):
    from clusterdynamicsml.io.energy import read_cp2k_ener

    r = ref_fixture(energy=read_cp2k_ener(write_energy_file(tmp_path)))
    t, temp = r.energy_series("temperature")
    assert t.tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]  # bin_edges[0] <= t <= bin_edges[-1]
    assert temp[0] == 300.0
    lines = r.energy_csv().splitlines()
    assert lines[0] == "step,time_fs,kinetic,temperature,potential" and lines[1].startswith("0,0.0,0.01,300.0,-100.0")


# --------------------------------------------------------------------------------------
# analyze_dynamics: frames -> counts -> result
# --------------------------------------------------------------------------------------
def _frames(n_frames=40, n_atoms=120, seed=3):
    return list(SyntheticTrajectory(n_atoms=n_atoms, n_frames=n_frames, seed=seed))


def _expected(frames, **kw):
    labels, rows = [], []
    for f in frames:
        c = standin_count_labels(f, RULES)
        for lab in c:
            if lab not in labels:
                labels.append(lab)
        rows.append(c)
    counts = np.array([[c.get(lab, 0) for lab in labels] for c in rows])
    return dynamics_from_counts([f.time_fs for f in frames], counts, labels, **kw)


def test_analyze_dynamics_matches_counting_frame_by_frame():
    frames = _frames()
    r = analyze_dynamics(frames, RULES, frames_per_bin=4, timestep_fs=10.0, counter=standin_count_labels, num_threads=1)
    expected = _expected(frames, timestep_fs=10.0, frames_per_bin=4)
    assert r.differences(expected) == ["settings"]
    assert r.settings["frames_per_bin"] == 4 and r.settings["counter"].endswith("standin_count_labels")
    assert r.n_frames == 40 and r.n_bins == 10


def test_default_counter_counts_real_clusters_and_keeps_its_recorded_name(tmp_path):
    """The built-in counter (C++ clustering): a Na-Cl pair that parts and rejoins beside a free
    Na. The settings and checkpoint fingerprints name it as before the module split, so older
    checkpoints still resume and datasets stay byte-identical."""
    from clusterdynamicsml.io.records import Frame

    rules = cdml.ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6}, pbc=False)
    frames = [
        Frame(index=k, source_index=k, time_fs=10.0 * k, symbols=["Na", "Cl", "Na"],
              positions=np.array([[0.0, 0.0, 0.0], [d, 0.0, 0.0], [10.0, 10.0, 10.0]]))
        for k, d in enumerate([2.0, 5.0, 2.0])
    ]
    r = analyze_dynamics(frames, rules, timestep_fs=10.0, num_threads=1, checkpoint=tmp_path / "c.ckpt")
    assert r.labels == ["Cl", "Na", "NaCl"]
    assert r.frame_count_matrix.tolist() == [[0, 1, 0], [1, 2, 1], [1, 0, 1]]
    name = "clusterdynamicsml.dynamics.analyze._default_counter"
    assert r.settings["counter"] == name
    header = json.loads((tmp_path / "c.ckpt").read_text().splitlines()[0])["body"]
    assert header["fingerprint"]["counter"] == name


def test_same_result_for_any_chunk_size_threads_and_iterators():
    frames = _frames(30)
    kw = dict(frames_per_bin=3, timestep_fs=10.0, counter=standin_count_labels, start_fs=35.0, stop_fs=250.0)
    base = analyze_dynamics(frames, RULES, num_threads=1, chunk_size=7, **kw)
    for other in (
        analyze_dynamics(frames, RULES, num_threads=2, chunk_size=1, **kw),
        analyze_dynamics(iter(frames), RULES, num_threads=1, chunk_size=4, **kw),
        analyze_dynamics(SyntheticTrajectory(n_atoms=120, n_frames=30, seed=3), RULES, num_threads=1, **kw),
    ):
        assert set(other.differences(base)) <= {"settings", "time_source"}
    assert base.frame_times_fs[0] == 40.0 and base.frame_times_fs[-1] == 250.0
    assert base.frame_indices.tolist() == list(range(4, 26)) and base.n_frames_total == 30


def test_analyze_dynamics_with_energy_file(tmp_path):
    frames = _frames(6)
    r = analyze_dynamics(frames, RULES, timestep_fs=10.0, counter=standin_count_labels, num_threads=1,
                         energy_file=write_energy_file(tmp_path))
    assert r.energy is not None and r.energy_series("potential")[0].size == 7
    r.save(tmp_path / "d.json")
    assert DynamicsResult.load(tmp_path / "d.json") == r


def test_checkpoint_resume_counts_every_frame_exactly_once(tmp_path):
    traj = SyntheticTrajectory(n_atoms=80, n_frames=25, seed=5)
    log, marker, ckpt = tmp_path / "log", tmp_path / "marker", tmp_path / "counts.ckpt"
    rules = dict(RULES, fail_frame=17, marker=str(marker), log=str(log))
    marker.touch()
    kw = dict(timestep_fs=10.0, counter=failing_counter, num_threads=1, chunk_size=5, checkpoint=ckpt)
    with pytest.raises(ValueError, match="simulated interruption at frame 17"):
        analyze_dynamics(traj, rules, **kw)
    first = [int(x) for x in log.read_text().split()]
    assert first == list(range(17))  # chunks 0..2 done and checkpointed, chunk 3 interrupted
    # simulate a write cut short by the interruption
    with open(ckpt, "a") as handle:
        handle.write('{"chunk": 3, "result": {"sta')
    marker.unlink()
    log.write_text("")
    resumed = analyze_dynamics(traj, rules, **kw)
    assert [int(x) for x in log.read_text().split()] == list(range(15, 25))  # only chunks 3 and 4
    fresh = analyze_dynamics(traj, rules, timestep_fs=10.0, counter=failing_counter, num_threads=1, chunk_size=5)
    assert resumed == fresh
    # a finished checkpoint reloads without counting anything
    log.write_text("")
    again = analyze_dynamics(traj, rules, **kw)
    assert log.read_text() == "" and again == resumed
    # a checkpoint of another run is refused
    with pytest.raises(ValueError, match="written for another run .*chunk_size"):
        analyze_dynamics(traj, rules, **dict(kw, chunk_size=4))


def test_streaming_memory_is_flat_in_trajectory_length():
    """Peak traced memory for 10x the frames grows only by the per-frame count records."""

    n_atoms = 8000

    def peak(n_frames):
        traj = SyntheticTrajectory(n_atoms=n_atoms, n_frames=n_frames, seed=1)
        tracemalloc.start()
        r = analyze_dynamics(traj, RULES, timestep_fs=10.0, counter=half_box_counter, chunk_size=8)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert r.n_frames == n_frames
        return top

    small, large = peak(10), peak(100)
    frame_bytes = n_atoms * 3 * 8
    # holding the frames would add 90 x 192 kB = 17 MB; the per-frame count records are ~100 bytes
    assert large - small < frame_bytes, (small, large)


def test_analyze_dynamics_rejects_bad_input(tmp_path):
    frames = _frames(4)
    kw = dict(counter=standin_count_labels, num_threads=1)
    with pytest.raises(ValueError, match="rules must be a ClusterRules"):
        analyze_dynamics(frames)
    with pytest.raises(ValueError, match="frames_per_bin must be a positive integer, got 1.5"):
        analyze_dynamics(frames, RULES, frames_per_bin=1.5, **kw)
    with pytest.raises(ValueError, match="timestep_fs must be > 0"):
        analyze_dynamics(frames, RULES, timestep_fs=-1, **kw)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        analyze_dynamics(frames, RULES, chunk_size=0, **kw)
    with pytest.raises(ValueError, match="no frames in the analysis window"):
        analyze_dynamics(frames, RULES, start_fs=1e6, **kw)
    with pytest.raises(ValueError, match="not a one-pass iterator"):
        analyze_dynamics(iter(frames), RULES, workers=2, **kw)
    with pytest.raises(ValueError, match="frames_or_path must be"):
        analyze_dynamics(42, RULES, **kw)
    with pytest.raises(ValueError, match="no frames"):
        analyze_dynamics([], RULES, **kw)
    with pytest.raises(FileNotFoundError):
        analyze_dynamics(frames, RULES, energy_file=tmp_path / "missing.ener", **kw)


def test_public_names():
    assert cdml.analyze_dynamics is analyze_dynamics and cdml.DynamicsResult is DynamicsResult
    assert math.isclose(cdml.dynamics.DEFAULT_TIMESTEP_FS, 0.5)




def test_settings_are_checked_before_any_frame_is_read(tmp_path):
    log = tmp_path / "log"
    rules = dict(RULES, fail_frame=-1, marker=str(tmp_path / "none"), log=str(log))
    frames = _frames(5)  # 10 fs apart: the inferred time step is 10 fs
    with pytest.raises(ValueError, match="integer multiple of timestep_fs=10.0 fs; got 25.0 fs"):
        analyze_dynamics(frames, rules, bin_width_fs=25.0, counter=failing_counter, num_threads=1)
    with pytest.raises(ValueError, match="workers must be a positive integer or None"):
        analyze_dynamics(frames, rules, workers="2", counter=failing_counter)
    with pytest.raises(ValueError, match="num_threads must be a positive integer or None"):
        analyze_dynamics(frames, rules, num_threads=0, counter=failing_counter)
    assert not log.exists()
    r = analyze_dynamics(frames, rules, bin_width_fs=20.0, counter=failing_counter, num_threads=1)
    assert (r.frames_per_bin, r.bin_width_fs, r.n_bins) == (2, 20.0, 3)


def test_properties_of_the_aggregation_on_random_counts():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=60, deadline=None)
    @hypothesis.given(
        seed=st.integers(0, 2**32 - 1), n_frames=st.integers(1, 40), n_labels=st.integers(1, 5),
        k=st.integers(1, 7), dt=st.sampled_from([0.5, 1.0, 2.5, 10.0]),
    )
    def check(seed, n_frames, n_labels, k, dt):
        rng = np.random.default_rng(seed)
        counts = rng.integers(0, 4, size=(n_frames, n_labels)) * (rng.random((n_frames, n_labels)) < 0.7)
        labels = ["Na", "Cl", "NaCl", "Na2Cl", "NaCl2"][:n_labels]
        times = np.arange(n_frames) * dt
        r = dynamics_from_counts(times, counts, labels, timestep_fs=dt, frames_per_bin=k)
        assert r.frames_in_bin.sum() == n_frames
        np.testing.assert_array_equal(r.raw_count_matrix.sum(axis=1), r.frame_count_matrix.sum(axis=1))
        for b in range(r.n_bins):
            if r.total_clusters_per_bin[b]:
                assert r.fraction_matrix[:, b].sum() == pytest.approx(1.0)
        for row in r.lifetime_by_label:
            c = r.counts(row.label)
            assert row.association_events - row.dissociation_events == c[-1] - c[0]
            assert row.completed_lifetime_count + row.window_truncated_lifetime_count == c[0] + row.association_events
        # the label order of the input does not matter
        perm = rng.permutation(n_labels)
        other = dynamics_from_counts(times, counts[:, perm], [labels[j] for j in perm], timestep_fs=dt, frames_per_bin=k)
        assert other == r

    check()


def test_progress_bar_reports_frames(capsys):
    analyze_dynamics(_frames(5), RULES, timestep_fs=10.0, counter=standin_count_labels, num_threads=1, progress=True)
    assert "5/5" in capsys.readouterr().err
