"""SAXS components of cluster types and their mixtures.

A component is the Debye trace I(q) (electrons^2, q in 1/angstrom) of one cluster label:
averaged over its library structures (ref 5.5), from one representative or predicted
structure with Debye-Waller damping, or, for a label with no stored structure whose composition
is a single atom (a free ion), the atom's self term f0(q)^2 (a single atom needs no structure).
A mixture is I_mix = sum_i w_i I_i / sum_i w_i with w_i the clusters per frame of label i
(:func:`mixture_weights`). :func:`compute_components` builds the complete mixture of a run:
every label of the dynamics table, node-free and node-only ones included.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .debye import _load, _pair_dict, debye_partials
from .ensemble import debye_partials_ensemble
from .formfactors import _as_q, form_factor

__all__ = [
    "MIXTURE_WEIGHTS",
    "ComponentSet",
    "SaxsComponent",
    "atom_component",
    "average_component",
    "compute_components",
    "farthest_point_sampling",
    "mix_components",
    "mixture_weights",
    "single_component",
    "structure_descriptors",
]

#: mixture weights: clusters per frame (default) or the reference tool's count x max(occupancy, 0.05)
MIXTURE_WEIGHTS = ("clusters_per_frame", "reference")


def structure_descriptors(structures) -> np.ndarray:
    """(N, 5) float64 descriptors per structure: Rg, max radius (from the centroid) and the three
    semiaxes sqrt(eigenvalues of the coordinate covariance), descending (angstrom; ref 4.1)."""
    from ..library.descriptors import descriptor_matrix

    return descriptor_matrix([_load(s, k)[1] for k, s in enumerate(structures)])


def farthest_point_sampling(descriptors, k: int) -> np.ndarray:
    """Indices (int64, (k,)) of a farthest-point-sampled subset of the rows of ``descriptors``.

    Columns are standardised (z-scores; constant columns ignored). The first point is the row
    nearest the mean; each next point maximises its distance to the selected set (ties: lowest
    index), so the result is deterministic.
    """
    X = np.asarray(descriptors, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"descriptors must be a non-empty 2-D array (N, d), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("descriptors contain NaN or infinity")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    n = X.shape[0]
    k = min(int(k), n)
    sd = X.std(axis=0)
    Z = np.where(sd > 0, (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)
    first = int(np.argmin(np.linalg.norm(Z, axis=1)))
    chosen = [first]
    dmin = np.linalg.norm(Z - Z[first], axis=1)
    for _ in range(k - 1):
        nxt = int(np.argmax(dmin))
        chosen.append(nxt)
        dmin = np.minimum(dmin, np.linalg.norm(Z - Z[nxt], axis=1))
    return np.array(chosen, dtype=np.int64)


# ----------------------------------------------------------------------------- components
@dataclass
class SaxsComponent:
    """A SAXS trace of one cluster label on a q grid (electrons^2).

    intensity/std/se : float64 (nq,): mean over the structures used, population std (ddof 0)
        and se = std / sqrt(n) (ref 5.5); std = se = 0 for a single structure.
    source : 'average', 'fps_average' or 'single'. n_structures used, n_library available.
    k : the FPS budget when sampled; sampling_error (nq,): estimated error of the sampled mean
        (std / sqrt(K) * sqrt((N - K) / (N - 1)), finite-population corrected), else zeros.
    partials : per-structure :class:`DebyePartials` (kept for single structures so the fit can
        rescale the Debye-Waller sigma); sigma, dw_pairs: the damping used.
    """

    label: str
    q: np.ndarray
    intensity: np.ndarray
    std: np.ndarray
    se: np.ndarray
    source: str = "average"
    n_structures: int = 1
    n_library: int = 1
    k: int | None = None
    sampling_error: np.ndarray | None = None
    weights: np.ndarray | None = None
    partials: list = field(default_factory=list, repr=False)
    sigma: dict | None = None
    dw_pairs: str = "all"

    def intensity_at(self, sigma_scale: float = 1.0) -> np.ndarray:
        """The trace with every Debye-Waller sigma multiplied by ``sigma_scale`` (single
        structures with partials and sigma); otherwise the stored mean."""
        if not self.partials or not self.sigma or self.source != "single":
            return self.intensity
        return self.partials[0].intensity(self.sigma, self.dw_pairs, sigma_scale=sigma_scale)


def single_component(label: str, structure, q, sigma=None, *, dw_pairs: str = "all", cutoffs=None,
                     shell_factor: float = 1.15, node_elements=None, method: str = "exact",
                     bin_width: float = 0.001, num_threads=None) -> SaxsComponent:
    """Component from one (representative or predicted) structure with Debye-Waller damping.

    structure : (symbols, positions), an object with .symbols/.positions, or a .xyz/.pdb path.
    """
    syms, pos = _load(structure, 0)
    parts = debye_partials(pos, syms, q, method=method, bin_width=bin_width,
                           cutoffs=cutoffs if dw_pairs == "first_shell" else None, shell_factor=shell_factor,
                           node_elements=node_elements, num_threads=num_threads)
    sg = _pair_dict(sigma, "sigma")
    I = parts.intensity(sg or None, dw_pairs)
    z = np.zeros_like(I)
    return SaxsComponent(label, parts.q, I, z, z.copy(), "single", 1, 1, None, z.copy(), None, [parts],
                         sg or None, dw_pairs)


def average_component(label: str, structures, q, *, max_structures: int | None = None, descriptors=None,
                      sigma=None, method: str = "exact", bin_width: float = 0.001,
                      num_threads=None) -> SaxsComponent:
    """Component averaged over a label's library structures (ref 5.5): mean, std (ddof 0), se.

    structures : sequence of (symbols, positions) / objects / file paths.
    max_structures : K. When the library holds more than K structures, only a farthest-point-
        sampled subset of K in descriptor space is computed (``descriptors`` (N, d), default
        :func:`structure_descriptors`); each sampled structure is weighted by the number of
        library structures nearest to it in that space, and the component records K and a
        sampling error estimate.
    sigma : optional damping applied to every structure (all pairs).
    The whole ensemble is one :func:`~clusterdynamicsml.saxs.ensemble.debye_partials_ensemble`
    call (with moments): the mean is the intensity of the weighted mean partials, which equals the
    weighted mean of the damped traces; the std comes from the covariance of the partials.
    """
    structs = list(structures)
    N = len(structs)
    if N == 0:
        raise ValueError(f"label {label!r}: no structures to average")
    qa = _as_q(q)
    idx = np.arange(N)
    weights = np.ones(N)
    source = "average"
    k_used = None
    if max_structures is not None:
        if isinstance(max_structures, bool) or not isinstance(max_structures, (int, np.integer)) or max_structures < 1:
            raise ValueError(f"max_structures must be a positive integer or None, got {max_structures!r}")
        if max_structures < N:
            D = structure_descriptors(structs) if descriptors is None else np.asarray(descriptors, dtype=np.float64)
            if D.shape[0] != N:
                raise ValueError(f"descriptors has {D.shape[0]} rows for {N} structures")
            idx = farthest_point_sampling(D, int(max_structures))
            sd = D.std(axis=0)
            Z = np.where(sd > 0, (D - D.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)
            nearest = np.argmin(np.linalg.norm(Z[:, None, :] - Z[idx][None, :, :], axis=2), axis=1)
            weights = np.bincount(nearest, minlength=len(idx)).astype(np.float64)
            source = "fps_average"
            k_used = int(max_structures)
    # one C++ call for the whole ensemble: weighted mean partials and their covariance, so
    # mean = the weighted mean of the damped traces, std = their weighted population std
    ens = debye_partials_ensemble([_load(structs[int(k)], int(k)) for k in idx], qa, method=method,
                                  bin_width=bin_width, weights=weights, moments=True, num_threads=num_threads)
    mean = ens.intensity(sigma)
    std = ens.intensity_std(sigma)
    n_used = len(idx)
    se = std / math.sqrt(n_used)
    if source == "fps_average":
        samp = std / math.sqrt(n_used) * math.sqrt((N - n_used) / (N - 1))
    else:
        samp = np.zeros_like(mean)
    return SaxsComponent(label, qa, mean, std, se, source, n_used, N, k_used, samp,
                         weights if source == "fps_average" else None, [], _pair_dict(sigma, "sigma") or None)


def mix_components(components, weights) -> tuple[np.ndarray, np.ndarray]:
    """Mixture I_mix(q) = sum_i w_i I_i(q) / sum_i w_i (ref 5.4). Returns (I_mix (nq,), omega (m,)).

    All components must share one q grid; weights are finite, >= 0, with a positive sum.
    """
    comps = list(components)
    if not comps:
        raise ValueError("mix_components needs at least one component")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(comps),):
        raise ValueError(f"weights must have shape ({len(comps)},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all zero, got {w.tolist()}")
    q0 = comps[0].q
    for c in comps[1:]:
        if c.q.shape != q0.shape or not np.allclose(c.q, q0, rtol=0, atol=1e-12):
            raise ValueError(f"component {c.label!r} is on a different q grid than {comps[0].label!r}")
    omega = w / w.sum()
    return omega @ np.array([c.intensity for c in comps]), omega



def atom_component(label: str, element: str, q) -> SaxsComponent:
    """Component of a lone atom or ion (a cluster type of one atom): I(q) = f0(q)^2 (electrons^2).

    No structure file is needed: the Debye sum of one atom is its self term."""
    qa = _as_q(q)
    f = form_factor(element, qa)
    I = np.array(f * f, dtype=np.float64)
    z = np.zeros_like(I)
    return SaxsComponent(label, qa, I, z, z.copy(), "atom", 1, 0, None, z.copy())


def mixture_weights(row, mode: str = "clusters_per_frame") -> float:
    """Mixture weight of one observed label from its dynamics-table row (``mean_count_per_frame``,
    ``occupancy_fraction``; an object or a dict).

    ``"clusters_per_frame"``: the mean number of clusters of that label per frame, so the mixture
    I_mix = sum_i n_i I_i / sum_i n_i is the scattering per cluster of the MD ensemble.
    ``"reference"``: the reference tool's count x max(occupancy, 0.05) (ref 4.9)."""
    if mode not in MIXTURE_WEIGHTS:
        raise ValueError(f"mixture weights must be one of {MIXTURE_WEIGHTS}, got {mode!r}")
    get = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    count = max(float(get("mean_count_per_frame", 0.0) or 0.0), 0.0)
    if mode == "clusters_per_frame":
        return count
    return count * max(float(get("occupancy_fraction", 0.0) or 0.0), 0.05)


@dataclass
class ComponentSet:
    """The complete mixture of a run (:func:`compute_components`).

    components : SaxsComponent per label that has a trace; rows : one dict per label of the
    dynamics table and per predicted candidate (label, source 'observed' | 'predicted', kind,
    weight used, both weight conventions, node_free, in_mixture, note); weights : (m,) the
    weights of ``components`` in the chosen convention; sources : 'observed' | 'predicted' per
    component; mode : the weight convention; warnings : what was left out and why.
    """

    q: np.ndarray
    components: list
    weights: np.ndarray
    sources: list
    rows: list
    mode: str
    warnings: list = field(default_factory=list)
    #: (row index, component) of the labels with a trace but zero weight (listed, not mixed)
    unmixed: list = field(default_factory=list)

    def indices(self, source: str | None = None) -> list:
        """Indices of the components from 'observed', 'predicted' or all (None)."""
        return [k for k, s in enumerate(self.sources) if source is None or s == source]


def _label_files(folder):
    from pathlib import Path

    from ..library.read import STRUCTURE_SUFFIXES

    p = Path(folder)
    if not p.is_dir():
        return []
    return sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in STRUCTURE_SUFFIXES)


def _observed_structures(label, library, library_dir):
    """(structures, representative or None) of a label: from the library, or read directly from
    ``library_dir/<label>/`` for labels the library reader leaves out (node-free clusters)."""
    try:
        structures = library.structures(label)
        obs = library[label]
    except (KeyError, TypeError, AttributeError):
        structures, obs = None, None
    if structures:
        files = [str(f) for f in getattr(obs, "files", [])]
        rep = getattr(obs, "representative_path", None)
        if rep is not None and str(rep) in files and len(files) == len(structures):
            return structures, structures[files.index(str(rep))]
        return structures, structures[0]
    if library_dir is None:
        return [], None
    from pathlib import Path

    from ..library.read import read_structure as read_tracked

    types = getattr(library, "types", None)
    out = []
    for f in _label_files(Path(library_dir) / label):
        try:
            out.append(read_tracked(f, types))
        except (OSError, ValueError):
            continue
    out = [s for s in out if len(s[0]) > 0]
    return out, (max(out, key=lambda s: len(s[0])) if out else None)


def _lifetime_rows(dynamics) -> list:
    rows = getattr(dynamics, "lifetime_by_label", None)
    if rows is None and isinstance(dynamics, dict):
        rows = dynamics.get("lifetime_by_label")
    out = []
    for r in rows or []:
        get = r.get if isinstance(r, dict) else (lambda k, d=None, r=r: getattr(r, k, d))
        if get("label") is not None:
            out.append(r)
    return out


def _observed_component(label, counts, library, library_dir, qa, observed_components, max_structures, sigma,
                        dw_pairs, cutoffs, nodes, method, bin_width):
    """SAXS component of one observed label: the average over its library structures, its
    representative with Debye-Waller damping ``sigma``, or the single atom of a one-atom
    label. None for a multi-atom label without a stored structure."""
    structures, rep = _observed_structures(label, library, library_dir)
    if structures and observed_components == "average":
        return average_component(label, structures, qa, max_structures=max_structures or None, method=method,
                                 bin_width=bin_width)
    if structures:
        return single_component(label, rep, qa, sigma=sigma, dw_pairs=dw_pairs, cutoffs=cutoffs,
                                node_elements=sorted(nodes) or None, method=method, bin_width=bin_width)
    if sum(counts.values()) == 1:
        return atom_component(label, next(iter(counts)), qa)
    return None


def compute_components(q, dynamics, library=None, *, library_dir=None, node_elements=(), prediction=None,
                       built_structures=(), weights: str = "clusters_per_frame",
                       observed_components: str = "average", max_structures: int | None = 50,
                       observed_sigma=None, predicted_sigma=None, dw_pairs: str = "all", cutoffs=None,
                       method: str = "exact", bin_width: float = 0.001, progress=None) -> ComponentSet:
    """Every cluster type of a run as a SAXS component, with its mixture weight.

    q : (nq,) 1/angstrom. dynamics : DynamicsResult (or dict) whose ``lifetime_by_label`` rows give
    each label's ``mean_count_per_frame`` and ``occupancy_fraction``; every label of it gets a
    component, node-free (free linker ions, free shell molecules) and node-only ones included.
    library : StructureLibrary (its labels with node atoms); ``library_dir`` : the library folder,
    read directly for labels the library reader leaves out. A label with no stored structure
    whose composition is one atom gets :func:`atom_component`; a multi-atom label without any
    structure is listed with a warning and left out of the mixture.
    prediction / built_structures : the prediction's candidates and the built structures
    ({"candidate", "structure", "path"}); a candidate without a built structure is listed and left
    out with a warning. Predicted weights: the candidate's predicted clusters per frame
    (``predicted["mean_count_per_frame"]``) or, for ``weights="reference"``, its reference weight.
    observed_components : 'average' (mean over up to ``max_structures`` library structures,
    farthest-point sampled) or 'representative' (one structure with Debye-Waller damping from
    ``observed_sigma`` {label: {(a, b): sigma}}). predicted_sigma : {(node count, rank, label): sigma}.
    progress : optional callable(step) called once per label.
    """
    from ..library.read import parse_label_counts

    if weights not in MIXTURE_WEIGHTS:
        raise ValueError(f"[saxs] mixture_weights must be one of {MIXTURE_WEIGHTS}, got {weights!r}")
    qa = _as_q(q)
    nodes = {str(e) for e in node_elements}
    comps, ws, sources, warnings, unmixed = [], [], [], [], []
    rows: list[dict] = []

    def place(row: dict, comp, w: float, source: str, zero_note: str) -> None:
        """Into the mixture when its weight is positive, else listed (``rows`` index) but unmixed."""
        if w > 0:
            comps.append(comp)
            ws.append(w)
            sources.append(source)
        else:
            row["note"] = zero_note
            unmixed.append((len(rows), comp))

    observed_sigma = observed_sigma or {}
    predicted_sigma = predicted_sigma or {}
    for r in _lifetime_rows(dynamics):
        get = r.get if isinstance(r, dict) else (lambda k, d=None, r=r: getattr(r, k, d))
        label = str(get("label"))
        try:
            counts = parse_label_counts(label)
        except ValueError:
            counts = {}
        node_free = bool(counts) and not any(e in nodes for e in counts) if nodes else None
        w_cpf, w_ref = mixture_weights(r, "clusters_per_frame"), mixture_weights(r, "reference")
        w = w_cpf if weights == "clusters_per_frame" else w_ref
        row = {"label": label, "source": "observed", "node_free": node_free, "weight": w,
               "clusters_per_frame": w_cpf, "reference_weight": w_ref,
               "occupancy_fraction": float(get("occupancy_fraction", 0.0) or 0.0)}
        comp = _observed_component(label, counts, library, library_dir, qa, observed_components, max_structures,
                                   observed_sigma.get(label), dw_pairs, cutoffs, nodes, method, bin_width)
        if comp is None:
            note = "no stored structure for a multi-atom label; left out of the mixture"
            warnings.append(f"label {label} ({w_cpf:.4g} clusters per frame): {note}")
            row.update(kind="missing", in_mixture=False, note=note)
        else:
            row.update(kind=comp.source, in_mixture=w > 0, n_structures=comp.n_structures, n_library=comp.n_library)
            place(row, comp, w, "observed", "zero weight")
        rows.append(row)
        if progress:
            progress(1)
    built = {}
    for b in built_structures or ():
        c = b["candidate"]
        built[(c.node_count, c.rank, c.label)] = b
    for c in (getattr(prediction, "candidates", None) or []) if prediction is not None else []:
        pred = getattr(c, "predicted", {}) or {}
        w_cpf = max(float(pred.get("mean_count_per_frame", 0.0) or 0.0), 0.0)
        w_ref = max(float(getattr(c, "weight", 0.0) or 0.0), 0.0)
        w = w_cpf if weights == "clusters_per_frame" else w_ref
        key = (c.node_count, c.rank, c.label)
        row = {"label": c.label, "source": "predicted", "node_free": False, "weight": w, "clusters_per_frame": w_cpf,
               "reference_weight": w_ref, "node_count": c.node_count, "rank": c.rank}
        b = built.get(key)
        if b is None or not b.get("valid", True):  # a structure that failed validation never enters
            note = ("no built structure" if b is None else "built structure is not a valid cluster (see the "
                    "structures step)") + "; left out of the mixture"
            if w > 0:
                warnings.append(f"predicted {c.label} (node count {c.node_count}): {note}")
            row.update(kind="missing", in_mixture=False, note=note)
        else:
            st = b["structure"]
            comp = single_component(c.label, (st.symbols, st.positions), qa, sigma=predicted_sigma.get(key),
                                    dw_pairs=dw_pairs, cutoffs=cutoffs, node_elements=sorted(nodes) or None,
                                    method=method, bin_width=bin_width)
            row.update(kind=comp.source, in_mixture=w > 0, n_structures=1, n_library=1, structure=b.get("path"))
            place(row, comp, w, "predicted", "zero predicted population")
        rows.append(row)
        if progress:
            progress(1)
    zero = [r["label"] for r in rows if r["source"] == "predicted" and r["kind"] != "missing" and r["weight"] <= 0]
    if zero:
        warnings.append(f"{len(zero)} predicted candidate(s) with zero predicted population "
                        f"({weights.replace('_', ' ')}) are listed but not mixed: {', '.join(zero)}")
    return ComponentSet(qa, comps, np.asarray(ws, dtype=np.float64), sources, rows, weights, warnings, unmixed)
