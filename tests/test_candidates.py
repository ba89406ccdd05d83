"""Candidate generation, filters, scoring, shares, pruning and tail anchoring (ref §4.4, §4.5, §4.9)."""
from __future__ import annotations

import pytest

from clusterdynamicsml.library.read import AtomTypes, TrainingRow
from clusterdynamicsml.predict.candidates import (
    Candidate,
    allocate_node_counts,
    assign_shares,
    composition_distance,
    generate_candidates,
    has_pure_node_support,
    predict_candidates,
    prune_by_share,
    required_linker_floors,
    round_half_up,
    self_consistent_counts,
    share_weight,
    tail_anchored_mass,
    top_k,
)
from clusterdynamicsml.predict.models import ClusterPropertyModel

TYPES = AtomTypes.from_rules({"node": ["Pb"], "linker": ["I"], "shell": ["O"], "cutoffs": {"Pb-I": 3.36}})


def row(label, counts, count=0.5, occ=0.5, life=20.0, **kw):
    n = sum(v for e, v in counts.items() if e == "Pb")
    base = dict(
        label=label,
        node_count=n,
        element_counts=counts,
        cluster_size=sum(counts.values()),
        file_count=2,
        representative_path=f"/lib/{label}/a.xyz",
        structure_dir="",
        mean_atom_count=float(sum(counts.values())),
        mean_radius_of_gyration=1.0 + n,
        mean_max_radius=1.5 + n,
        mean_semiaxis_a=1.0 + n,
        mean_semiaxis_b=0.5 + n,
        mean_semiaxis_c=0.3,
        mean_count_per_frame=count,
        occupancy_fraction=occ,
        mean_lifetime_fs=life,
        completed_lifetime_count=2,
    )
    base.update(kw)
    return TrainingRow(**base)


CHAIN = [row("Pb", {"Pb": 1}, 2.0, 1.0, 100.0), row("Pb2I", {"Pb": 2, "I": 1}, 0.5, 0.4, 30.0), row("Pb3I2", {"Pb": 3, "I": 2}, 0.2, 0.2, 20.0)]


def cand(n, label, share, score=1.0, count=1.0, occ=0.5, life=10.0):
    c = Candidate(n, label, {"Pb": n}, "scaled")
    c.predicted = {"mean_count_per_frame": count, "occupancy_fraction": occ, "mean_lifetime_fs": life}
    c.share, c.score = share, score
    return c


def test_round_half_up_not_half_to_even():
    assert [round_half_up(v) for v in (0.5, 1.5, 2.5, 3.5, 2.4999, 0.0)] == [1, 2, 3, 4, 2, 0]


def test_largest_remainder_allocation():
    assert allocate_node_counts({"Pb": 1.0}, 5) == {"Pb": 5}
    assert allocate_node_counts({"A": 0.5, "B": 0.5}, 3) == {"A": 2, "B": 1}  # tie broken by element name
    assert allocate_node_counts({"A": 0.7, "B": 0.2, "C": 0.1}, 4) == {"A": 3, "B": 1}


def test_trend_composition_is_self_consistent_better_than_reference():
    # ref N2 [verified]: the reference evaluates the I model at a partial composition and gets
    # 1.5 -> 1 for n* = 4 (dropped by the floor of 2); the fixed point gives the true trend n - 1
    model = ClusterPropertyModel(["Pb"], 10.0).fit(CHAIN)
    counts, info = self_consistent_counts(model, {"Pb": 4})
    assert info["converged"]
    assert counts["I"] == pytest.approx(3.0, abs=1e-4)
    cands, _ = generate_candidates(CHAIN, model, TYPES, 4)
    assert cands[0].route == "trend" and cands[0].label == "Pb4I3"
    # the fixed point reproduces the model at the returned composition
    assert model.predict_counts({"Pb": 4, "I": counts["I"]})["I"] == pytest.approx(counts["I"], abs=1e-6)


def test_self_consistent_counts_with_expanding_map_uses_newton():
    # I = -1 + 1.5 * (I / n) * n ... a count model whose slope in I exceeds 1 (plain iteration diverges)
    rows = [row("PbI", {"Pb": 1, "I": 1}), row("Pb2I3", {"Pb": 2, "I": 3}), row("Pb3I5", {"Pb": 3, "I": 5})]
    model = ClusterPropertyModel(["Pb"], 10.0).fit(rows)
    counts, info = self_consistent_counts(model, {"Pb": 4})
    assert info["converged"]
    assert model.predict_counts({"Pb": 4, "I": counts["I"]})["I"] == pytest.approx(counts["I"], abs=1e-6)


def test_scaled_route_rounds_half_up():
    model = ClusterPropertyModel(["Pb"], 10.0).fit(CHAIN)
    cands, rejected = generate_candidates(CHAIN, model, TYPES, 5)
    labels = {c.label: c for c in cands}
    # Pb2I scaled to 5 nodes: 1 * 5/2 = 2.5 -> 3 (half to even would give 2)
    assert "Pb5I3" in labels
    scaled = [r for r in rejected if r["source_label"] == "Pb2I"] + [c for c in cands if c.source_label == "Pb2I"]
    assert scaled, "the Pb2I-scaled candidate is present (kept or a duplicate)"


def test_linker_floors_ceil_and_only_when_present_in_every_multinode_row():
    assert required_linker_floors(CHAIN, TYPES, 4) == {"I": 2}
    assert required_linker_floors(CHAIN, TYPES, 5) == {"I": 3}  # ceil(5 * 1/2)
    assert required_linker_floors(CHAIN, TYPES, 1) == {}
    rows = CHAIN + [row("Pb2", {"Pb": 2})]
    assert required_linker_floors(rows, TYPES, 4) == {}
    shell_types = AtomTypes.from_rules({"node": ["Pb"], "linker": ["I"], "shell": ["O"], "cutoffs": {"Pb-I": 3.36}})
    rows = [row("Pb2IO", {"Pb": 2, "I": 1, "O": 1}), row("Pb3I2O", {"Pb": 3, "I": 2, "O": 1})]
    assert required_linker_floors(rows, shell_types, 4) == {"I": 2}  # shells never get floors


def test_pure_node_support():
    assert not has_pure_node_support(CHAIN[1:], TYPES, 4)
    assert has_pure_node_support(CHAIN, TYPES, 2)
    assert not has_pure_node_support(CHAIN, TYPES, 3)  # max pure size 1, so only up to 2
    rows = CHAIN + [row("Pb3", {"Pb": 3})]
    assert has_pure_node_support(rows, TYPES, 4) and not has_pure_node_support(rows, TYPES, 5)


def test_filters_reject_linker_free_and_unsupported_pure_node_candidates():
    model = ClusterPropertyModel(["Pb"], 10.0).fit(CHAIN)
    cands, rejected = generate_candidates(CHAIN, model, TYPES, 4)
    assert all(c.counts.get("I", 0) >= 2 for c in cands)
    assert "Pb4" not in {c.label for c in cands}
    assert any(r["label"] == "Pb4" and "linker floor" in r["reason"] for r in rejected)
    # without a linker floor (I is not a linker) the pure-node rule rejects Pb4
    no_linker = AtomTypes.from_rules({"node": ["Pb"], "shell": ["I"], "shells_in_label": True, "cutoffs": {"Pb-I": 3.36}})
    rows = [row("Pb2I", {"Pb": 2, "I": 1}), row("Pb3I2", {"Pb": 3, "I": 2}), row("Pb3", {"Pb": 3})]
    m2 = ClusterPropertyModel(["Pb"], 10.0).fit(rows)
    c6, rej6 = generate_candidates(rows, m2, no_linker, 6)
    assert "Pb6" not in {c.label for c in c6}
    assert any(r["label"] == "Pb6" and "pure-node" in r["reason"] for r in rej6)


def test_deduplication_first_occurrence_wins():
    model = ClusterPropertyModel(["Pb"], 10.0).fit(CHAIN)
    cands, rejected = generate_candidates(CHAIN, model, TYPES, 4)
    labels = [c.label for c in cands]
    assert len(labels) == len(set(labels))
    # Pb3I2 scaled to 4 gives 2.67 -> 3, the same as the trend candidate: the trend one stays
    assert cands[0].route == "trend" and cands[0].label == "Pb4I3"
    assert any(r["label"] == "Pb4I3" and r["route"] == "scaled" and "duplicate" in r["reason"] for r in rejected)


def test_top_k_and_composition_distance():
    cs = [cand(4, "B", 0, score=2.0), cand(4, "A", 0, score=2.0), cand(4, "C", 0, score=5.0), cand(4, "D", 0, score=0.1)]
    best = top_k(cs, 3)
    assert [c.label for c in best] == ["C", "A", "B"] and [c.rank for c in best] == [1, 2, 3]
    assert composition_distance({"Pb": 4, "I": 3}, {"Pb": 4, "I": 1}, 4) == pytest.approx(0.5)


def test_share_normalisation_and_fallbacks():
    cs = [cand(4, "A", 0, count=2.0, occ=0.5), cand(4, "B", 0, count=1.0, occ=0.01), cand(5, "C", 0, count=0.0, occ=0.3), cand(5, "D", 0, count=0.0, occ=0.0, life=40.0)]
    assign_shares(cs, timestep_fs=10.0)
    assert sum(c.share for c in cs) == pytest.approx(1.0)
    assert share_weight(cs[0].predicted, 10.0) == pytest.approx(1.0)
    assert share_weight(cs[1].predicted, 10.0) == pytest.approx(0.05)  # occupancy floor 0.05
    assert share_weight(cs[2].predicted, 10.0) == pytest.approx(0.3)  # fallback 1: occupancy
    assert share_weight(cs[3].predicted, 10.0) == pytest.approx(4.0)  # fallback 2: lifetime / dt
    assert cs[3].share == pytest.approx(4.0 / 5.35)


def test_pruning_keeps_rank_one_and_renormalises():
    cs = [cand(4, "A", 0, count=1.0, occ=1.0), cand(4, "B", 0, count=0.001, occ=0.05), cand(5, "C", 0, count=0.0001, occ=0.05), cand(5, "D", 0, count=0.00001, occ=0.05)]
    assign_shares(cs, 10.0)
    assert cs[2].share < 0.02
    kept, removed = prune_by_share(cs, 0.02, 10.0)
    assert {c.label for c in kept} == {"A", "C"}  # C is below the threshold but rank 1 of its size
    assert {c.label for c in removed} == {"B", "D"}
    assert sum(c.share for c in kept) == pytest.approx(1.0)
    assert [c.node_count for c in kept] == [5, 4]  # ordered by size descending
    assert all(c.rank == 1 for c in kept)
    kept_all, removed_none = prune_by_share(cs, 0.0, 10.0)
    assert len(kept_all) == 4 and not removed_none


def test_tail_anchoring_known_answer_and_cap():
    rows = [row("Pb", {"Pb": 1}, 2.0, 1.0), row("Pb2I", {"Pb": 2, "I": 1}, 0.5, 0.4), row("Pb3I2", {"Pb": 3, "I": 2}, 0.2, 0.2)]
    # T = {1: 2.0, 2: 0.2, 3: 0.04}; r = (0.1, 0.2); decay = median = 0.15
    m = tail_anchored_mass(rows, [4, 5])
    assert m["mass_by_size"] == pytest.approx({1: 2.0, 2: 0.2, 3: 0.04})
    assert m["decay"] == pytest.approx(0.15)
    assert m["expected"] == pytest.approx(0.04 * 0.15 + 0.04 * 0.15**2)
    assert m["weight"] == pytest.approx(m["expected"])
    # growing tail: decay is clipped at 0.9 and the mass is capped at T_L
    grow = [row("Pb", {"Pb": 1}, 0.1, 0.1), row("Pb2I", {"Pb": 2, "I": 1}, 1.0, 1.0)]
    g = tail_anchored_mass(grow, [3, 4, 5])
    assert g["decay"] == pytest.approx(0.9)
    assert g["expected"] == pytest.approx(0.9 + 0.81 + 0.729)
    assert g["weight"] == pytest.approx(1.0)  # min(E, T_L)
    # steep drop: clipped at 0.05; nothing observed: fallbacks
    steep = [row("Pb", {"Pb": 1}, 10.0, 1.0), row("Pb2I", {"Pb": 2, "I": 1}, 0.001, 0.05)]
    assert tail_anchored_mass(steep, [3])["decay"] == pytest.approx(0.05)
    empty = [row("Pb", {"Pb": 1}, 0.0, 0.0), row("Pb2I", {"Pb": 2, "I": 1}, 0.0, 0.0)]
    assert tail_anchored_mass(empty, [3], [0.3, 0.2])["weight"] == pytest.approx(0.5)
    assert tail_anchored_mass(empty, [3])["weight"] == 1.0


def test_predicted_mass_never_exceeds_largest_observed_size_even_with_extreme_shares():
    rows = [row("Pb", {"Pb": 1}, 1e6, 1.0, 1000.0), row("Pb2I", {"Pb": 2, "I": 1}, 1e6, 0.98, 1000.0), row("Pb3I2", {"Pb": 3, "I": 2}, 0.5, 0.5)]
    model = ClusterPropertyModel(["Pb"], 10.0).fit(rows)
    out = predict_candidates(rows, model, TYPES, [4, 5], 10.0)
    total_pred = sum(c.weight for c in out["candidates"])
    assert total_pred <= out["mass"]["largest_mass"] + 1e-12
    obs_total = sum(r.observed_weight for r in rows)
    assert max(c.weight for c in out["candidates"]) / (obs_total + total_pred) < 0.5
    assert sum(c.share for c in out["candidates"]) == pytest.approx(1.0)


def test_candidate_record_exposes_builder_fields_and_round_trips():
    model = ClusterPropertyModel(["Pb"], 10.0).fit(CHAIN)
    out = predict_candidates(CHAIN, model, TYPES, [4], 10.0, share_threshold=0.0)
    c = out["candidates"][0]
    assert c.node_count == 4 and c.target_node_count == 4 and c.rank == 1
    assert sum(c.counts.values()) == c.atom_count
    assert c.predicted_radius_of_gyration >= 0.1 and c.predicted_max_radius >= 0.1
    assert len(c.predicted_semiaxes) == 3
    assert c.reference_label in {"Pb", "Pb2I", "Pb3I2"} and c.reference_path.endswith("a.xyz")
    assert Candidate.from_dict(c.to_dict()) == c
