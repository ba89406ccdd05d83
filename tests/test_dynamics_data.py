"""Cluster dynamics on real trajectories (../shared/data) and on a local Dask cluster."""
from __future__ import annotations

import numpy as np
import pytest

import clusterdynamicsml as cdml
from _dynamics_standin import RULES, SyntheticTrajectory, standin_count_labels
from clusterdynamicsml.dynamics.analyze import DynamicsResult, analyze_dynamics


def test_dask_local_scheduler_matches_serial():
    pytest.importorskip("distributed")
    traj = SyntheticTrajectory(n_atoms=100, n_frames=16, seed=4)
    kw = dict(timestep_fs=10.0, frames_per_bin=2, counter=standin_count_labels, chunk_size=3)
    serial = analyze_dynamics(traj, RULES, num_threads=1, **kw)
    local = analyze_dynamics(traj, RULES, workers=2, scheduler="local", **kw)  # starts and stops a LocalCluster
    assert local.differences(serial) == ["settings"] and local.settings["scheduler"] == "local"


# --------------------------------------------------------------------------------------
# real data (../shared/data)
# --------------------------------------------------------------------------------------
NACL = "nacl_molten_1400K_zincware/NaCl_1400K_0.extxyz"


@pytest.fixture(scope="module")
def nacl_result(shared_data):
    rules = cdml.ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6})
    with cdml.set_num_threads(1):
        return analyze_dynamics(shared_data / NACL, rules, frames_per_bin=25)


@pytest.mark.shared_data
def test_molten_nacl_end_to_end(nacl_result, tmp_path):
    r = nacl_result
    assert r.n_frames == 500 and r.n_bins == 20 and r.timestep_fs == 0.5  # no time in the file: ref default
    assert r.time_source == "sequential" and any("0.5 fs" in w for w in r.time_warnings)
    assert {"Na", "Cl", "NaCl", "Na2Cl", "NaCl2", "Na2Cl2"} <= set(r.labels)
    # every atom is in exactly one counted cluster, except in the two frames where a Na-Cl chain
    # wraps around the 13.1 A box: those percolating clusters are reported, not counted
    atoms = r.label_sizes @ r.frame_count_matrix
    assert np.flatnonzero(atoms != 64).tolist() == [22, 258] and sorted(64 - atoms[[22, 258]]) == [10, 12]
    assert r.warnings and "in 2 of 500 clustered frames" in r.warnings[0] and "Na5Cl5 x1, Na6Cl6 x1" in r.warnings[0]
    assert r.label_sizes.tolist() == sorted(r.label_sizes.tolist())
    for row in r.lifetime_by_label:
        c = r.counts(row.label)
        assert row.association_events - row.dissociation_events == c[-1] - c[0]
        assert 0 < row.occupancy_fraction <= 1
        if row.mean_lifetime_fs is not None:
            assert row.mean_lifetime_fs >= r.timestep_fs and row.std_lifetime_fs >= 0
        if row.mle_lifetime_fs is not None:
            assert row.mle_lifetime_fs >= r.timestep_fs
    free_na = r.lifetime_row("Na")
    assert free_na.occupancy_fraction == 1.0 and free_na.completed_lifetime_count > 100
    # long-lived free ions: the censoring-aware estimates are not shorter than the completed-only mean
    assert free_na.mle_lifetime_fs >= free_na.mean_lifetime_fs
    assert sum(row.total_observations * row.cluster_size for row in r.lifetime_by_size) == 64 * 500 - 22
    r.save(tmp_path / "nacl.json")
    assert DynamicsResult.load(tmp_path / "nacl.json") == r


@pytest.mark.shared_data
def test_molten_nacl_window_on_two_workers_matches_serial(shared_data, nacl_result):
    rules = cdml.ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6})
    kw = dict(frames_per_bin=25, start_fs=100.0, stop_fs=159.5, chunk_size=30)
    pooled = analyze_dynamics(shared_data / NACL, rules, workers=2, **kw)
    assert pooled.frame_indices.tolist() == list(range(200, 320)) and pooled.n_frames_total == 500
    np.testing.assert_array_equal(
        pooled.frame_count_matrix, nacl_result.frame_count_matrix[[nacl_result.labels.index(x) for x in pooled.labels], 200:320]
    )
    with cdml.set_num_threads(1):
        serial = analyze_dynamics(cdml.read_frames(shared_data / NACL), rules, **kw)
    assert pooled.differences(serial) == ["settings"]


@pytest.mark.shared_data
def test_percolating_kcl_is_reported_not_counted_as_finite(shared_data):
    rules = cdml.ClusterRules(node=["K"], linker=["Cl"], shell=[], cutoffs={("K", "Cl"): 3.6})
    path = shared_data / "kcl_dlpoly_mdanalysistests" / "frames_xyz"
    with cdml.set_num_threads(1):
        r = analyze_dynamics(path, rules)
        assert r.labels == [] and r.n_frames == 3
        assert any("percolating clusters" in w and "K108Cl108 x3" in w for w in r.warnings)
        counted = analyze_dynamics(path, rules, include_percolating=True)
    assert counted.labels == ["K108Cl108"] and counted.label_sizes.tolist() == [216]
    assert counted.lifetime_row("K108Cl108").window_truncated_lifetime_count == 1
    assert "counted under their labels" in counted.warnings[0]


@pytest.mark.shared_data
def test_molten_nacl_same_result_for_one_and_two_kernel_threads(shared_data):
    rules = cdml.ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6})
    source = cdml.read_frames(shared_data / NACL)
    kw = dict(frames_per_bin=4, start_fs=20.0, stop_fs=39.5)
    one = analyze_dynamics(source, rules, num_threads=1, **kw)
    two = analyze_dynamics(source, rules.to_dict(), num_threads=2, **kw)  # rules as a dict (run files)
    assert one.n_frames == 40 and one == two
