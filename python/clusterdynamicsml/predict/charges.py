"""Charge plausibility of predicted compositions.

Ionic clusters stay close to neutrality: in a melt or a solution a cluster that carries many
excess charges is rare, and the clusters of a trajectory show how far from neutral they go.
A predicted composition is *charge-plausible* when its net formal charge lies within the range
of the observed clusters with at least two node atoms, widened by one linker charge on each
side (the next composition outward)::

    q(label) = sum_e counts_e z_e          (node and linker elements; shells are neutral molecules)
    plausible:  min_obs q - |z_linker| <= q <= max_obs q + |z_linker|

``z`` are the usual formal charges of monatomic ions (``FORMAL_CHARGES``: alkali metals +1,
alkaline-earth metals, Zn, Cd and Pb +2, halides -1), in units of e. When a node or linker
element has no entry, the same test is made on the linker excess ``m - rho n`` (``rho`` the
linker-per-node ratio of the observed clusters with >= 2 nodes), which needs no charges.

A candidate outside the range keeps its numbers (the reference ridge is kept for comparison
with the reference tool); a note is added to the candidate and a warning is returned.
"""
from __future__ import annotations

from ..chem import parse_label

#: formal charges (e) of monatomic ions whose charge in ionic melts and halide solutions is
#: unambiguous; used only for the plausibility check above
FORMAL_CHARGES = {
    **dict.fromkeys(("Li", "Na", "K", "Rb", "Cs"), 1),
    **dict.fromkeys(("Mg", "Ca", "Sr", "Ba", "Zn", "Cd", "Pb"), 2),
    **dict.fromkeys(("F", "Cl", "Br", "I"), -1),
}
#: observed labels with fewer node atoms are left out of the range (free ions and single
#: complexes carry the ion's own charge, which says nothing about clusters)
MIN_NODES = 2


def _charge_model(types):
    """(charge function, unit word, step) for the node and linker elements of ``types``."""
    elements = list(types.node_elements) + list(types.linker_elements)
    if elements and all(e in FORMAL_CHARGES for e in elements):
        step = max(abs(FORMAL_CHARGES[e]) for e in types.linker_elements) if types.linker_elements else 1
        return (lambda counts: float(sum(v * FORMAL_CHARGES.get(e, 0) for e, v in counts.items()))), "e", step
    return None, "linker excess", 1


def _nodes_links(counts, types) -> tuple[int, int]:
    nodes = sum(v for e, v in counts.items() if e in types.node_elements)
    links = sum(v for e, v in counts.items() if e in types.linker_elements)
    return nodes, links


def check_candidate_charges(candidates, observed_labels, types) -> list[str]:
    """Flag candidates whose net charge lies outside the observed range (module docs).

    candidates : ``Candidate`` records (``counts``, ``label``, ``node_count``, ``notes``).
    observed_labels : the observed labels (strings).
    types : ``AtomTypes`` (node and linker elements).
    Returns one warning sentence per implausible candidate; each also gets a note.
    """
    charge, unit, step = _charge_model(types)
    obs = []
    for label in observed_labels:
        counts = parse_label(label)
        if _nodes_links(counts, types)[0] >= MIN_NODES:
            obs.append(counts)
    if not obs:
        return []
    if charge is None:
        pairs = [_nodes_links(c, types) for c in obs]
        rho = sum(m for _, m in pairs) / sum(n for n, _ in pairs)

        def charge(counts):
            n, m = _nodes_links(counts, types)
            return m - rho * n

    values = [charge(c) for c in obs]
    lo, hi = min(values) - step, max(values) + step
    out = []
    for c in candidates:
        q = charge(c.counts)
        if lo - 1e-9 <= q <= hi + 1e-9:
            continue
        what = f"net charge {q:+.0f} e" if unit == "e" else f"linker excess {q:+.2f}"
        note = (
            f"charge-implausible: {what}, outside the observed clusters' range [{lo + step:+.3g}, {hi - step:+.3g}] "
            f"widened by one linker to [{lo:+.3g}, {hi:+.3g}]"
        )
        c.notes = "; ".join(([c.notes] if c.notes else []) + [note])
        out.append(f"predicted {c.label} (n = {c.node_count}): {note}")
    return out
