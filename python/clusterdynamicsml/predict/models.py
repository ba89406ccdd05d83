"""Weighted ridge models of cluster properties (ref §4.3).

Feature vector of a composition with node elements N and non-node elements X_1..X_k
(sorted)::

    n     = max(sum of node counts, 1)
    N_tot = sum of all counts
    x     = [1, n, N_tot, X_1/n, ..., X_k/n]

One weighted ridge per target, with the intercept penalised as in the reference::

    (X^T W X + lambda I) beta = X^T W y',    lambda = 1e-6,  W = diag(stability weights)
    y' = log1p(clip(y, 0, inf)) for log1p targets, else y
    y_hat = clip(T^-1(x . beta), lower, upper)        T^-1 = expm1 for log1p targets

One training row gives a constant model (the transformed target); zero rows give the
``default`` value. Targets, transforms and bounds (units: counts per frame, fraction, fs,
1/ps, angstrom):

=============================  =========  ==================
target                         transform  bounds
=============================  =========  ==================
mean_count_per_frame           log1p      >= 0
occupancy_fraction             identity   [0, 1]
mean_lifetime_fs               log1p      >= dt (frame timestep, fs)
association_rate_per_ps        log1p      >= 0
dissociation_rate_per_ps       log1p      >= 0
mean_radius_of_gyration        log1p      >= 0.1
mean_max_radius                log1p      >= 0.1
mean_semiaxis_a/b/c            log1p      >= 0.05
count_<X> (each non-node el.)  identity   >= 0
=============================  =========  ==================
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

RIDGE_LAMBDA = 1e-6

#: (target, transform, lower, upper) of the property models; the lifetime lower bound is dt.
PROPERTY_TARGETS = (
    ("mean_count_per_frame", "log1p", 0.0, None),
    ("occupancy_fraction", "identity", 0.0, 1.0),
    ("mean_lifetime_fs", "log1p", "dt", None),
    ("association_rate_per_ps", "log1p", 0.0, None),
    ("dissociation_rate_per_ps", "log1p", 0.0, None),
    ("mean_radius_of_gyration", "log1p", 0.1, None),
    ("mean_max_radius", "log1p", 0.1, None),
    ("mean_semiaxis_a", "log1p", 0.05, None),
    ("mean_semiaxis_b", "log1p", 0.05, None),
    ("mean_semiaxis_c", "log1p", 0.05, None),
)


def feature_vector(counts: Mapping, node_elements: Sequence[str], non_node_elements: Sequence[str]) -> np.ndarray:
    """``[1, n, N_tot, X_1/n, ..., X_k/n]`` for one composition (float64, length 3 + k).

    Counts may be non-integer (the trend route evaluates fractional compositions).
    """
    n_raw = sum(float(counts.get(e, 0)) for e in node_elements)
    n = max(n_raw, 1.0)
    total = sum(float(v) for v in counts.values())
    return np.array([1.0, n, total] + [float(counts.get(e, 0)) / n for e in non_node_elements], dtype=np.float64)


class WeightedRidge:
    """Weighted ridge regression with an optional log1p target transform and output bounds.

    Parameters (stored unchanged; validated in ``fit``):
    alpha : ridge penalty lambda (>= 0), applied to every coefficient including the intercept.
    transform : "identity", "log1p" or "log" (``y' = log(clip(y, 0) + log_offset)``, an option
        beyond the reference for geometrically decaying populations).
    lower, upper : bounds applied to predictions in target units (None: unbounded).
    default : prediction when fitted on zero rows (None: fitting zero rows is an error).

    Fitted attributes: ``coef_`` (n_features,) or None, ``constant_`` (transformed value of the
    constant model) or None, ``mode_`` ("ridge", "constant" or "default"), ``n_train_``.
    """

    def __init__(self, alpha: float = RIDGE_LAMBDA, transform: str = "identity", lower=None, upper=None, default=None, log_offset: float = 1e-4):
        self.alpha = alpha
        self.transform = transform
        self.lower = lower
        self.upper = upper
        self.default = default
        self.log_offset = log_offset

    def _forward(self, y):
        if self.transform == "log1p":
            return np.log1p(np.clip(y, 0.0, None))
        if self.transform == "log":
            return np.log(np.clip(y, 0.0, None) + float(self.log_offset))
        return y

    def _inverse(self, z):
        if self.transform == "log1p":
            return np.expm1(z)
        if self.transform == "log":
            return np.exp(z) - float(self.log_offset)
        return z

    def fit(self, X, y, sample_weight=None) -> WeightedRidge:
        if self.transform not in ("identity", "log1p", "log"):
            raise ValueError(f"transform must be 'identity', 'log1p' or 'log', got {self.transform!r}")
        if self.transform == "log" and not (isinstance(self.log_offset, (int, float)) and math.isfinite(self.log_offset) and self.log_offset > 0):
            raise ValueError(f"log_offset must be a positive number for transform='log', got {self.log_offset!r}")
        try:
            alpha = float(self.alpha)
        except (TypeError, ValueError):
            raise ValueError(f"alpha must be a non-negative number, got {self.alpha!r}") from None
        if not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        if self.lower is not None and self.upper is not None and float(self.lower) > float(self.upper):
            raise ValueError(f"lower bound must not exceed upper bound, got lower={self.lower!r}, upper={self.upper!r}")
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D feature matrix (rows, features), got shape {X.shape}")
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X and y must have the same number of rows, got {X.shape[0]} and {y.shape[0]}")
        if sample_weight is None:
            w = np.ones(y.shape[0])
        else:
            w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if w.shape[0] != y.shape[0]:
                raise ValueError(f"sample_weight must have one value per row ({y.shape[0]}), got {w.shape[0]}")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y)) and np.all(np.isfinite(w))):
            raise ValueError("X, y and sample_weight must be finite (no NaN or infinity)")
        w = np.clip(w, 1e-9, None)
        self.n_train_ = int(y.shape[0])
        self.n_features_in_ = int(X.shape[1])
        self.coef_ = None
        self.constant_ = None
        if self.n_train_ == 0:
            if self.default is None:
                raise ValueError("cannot fit a model on zero rows without a default value")
            self.mode_ = "default"
            return self
        z = self._forward(y)
        if self.n_train_ == 1:
            self.mode_ = "constant"
            self.constant_ = float(z[0])
            return self
        A = X.T @ (w[:, None] * X) + alpha * np.eye(X.shape[1])
        b = X.T @ (w * z)
        try:
            coef = np.linalg.solve(A, b)
            if not np.all(np.isfinite(coef)):
                raise np.linalg.LinAlgError("non-finite solution")
        except np.linalg.LinAlgError:
            coef = np.linalg.pinv(A) @ b
        self.coef_ = coef
        self.mode_ = "ridge"
        return self

    def _check_fitted(self):
        if not hasattr(self, "mode_"):
            raise ValueError("this WeightedRidge is not fitted yet; call fit(X, y, sample_weight) first")

    def predict_transformed(self, X) -> np.ndarray:
        """``x . beta`` in the transformed space (no bounds)."""
        self._check_fitted()
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if self.mode_ == "default":
            return np.full(X.shape[0], np.nan)
        if self.mode_ == "constant":
            return np.full(X.shape[0], self.constant_)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have {self.n_features_in_} features, got {X.shape[1]}")
        return X @ self.coef_

    def predict(self, X) -> np.ndarray:
        """Predictions in target units, clipped to [lower, upper]."""
        self._check_fitted()
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if self.mode_ == "default":
            out = np.full(X.shape[0], float(self.default))
        else:
            out = self._inverse(self.predict_transformed(X))
        if self.lower is not None or self.upper is not None:
            out = np.clip(out, self.lower, self.upper)
        return out


def _weighted_mean(values, weights, fallback=0.0) -> float:
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if v.size == 0 or w.sum() <= 0:
        return float(fallback)
    return float(np.sum(v * w) / np.sum(w))


class ClusterPropertyModel:
    """All property models of ref §4.3, fitted on training rows.

    Parameters (stored unchanged; validated in ``fit``):
    node_elements : node element symbols.
    timestep_fs : frame timestep dt (fs), the lower bound of predicted lifetimes.
    alpha : ridge penalty (default 1e-6).
    population_transform : transform of mean_count_per_frame and occupancy_fraction:
        "reference" (log1p and identity, ref §4.3) or "log" (``log(y + 1e-4)`` for both, an
        option beyond the reference: populations that decay geometrically with size
        extrapolate to small positive values instead of being clipped to 0; bounds unchanged).

    ``fit(rows)`` takes ``TrainingRow`` objects (or anything with ``element_counts``,
    ``stability_weight`` and the target attributes). Fitted attributes: ``node_elements_``,
    ``non_node_elements_`` (sorted non-node elements seen in training), ``models_``
    ({target: WeightedRidge}; count models are keyed ``count_<El>``), ``default_lifetime_fs_``.
    """

    def __init__(self, node_elements, timestep_fs: float = 0.5, alpha: float = RIDGE_LAMBDA, population_transform: str = "reference"):
        self.node_elements = node_elements
        self.timestep_fs = timestep_fs
        self.alpha = alpha
        self.population_transform = population_transform

    def fit(self, rows) -> ClusterPropertyModel:
        rows = list(rows)
        if isinstance(self.node_elements, str) or not self.node_elements:
            raise ValueError(f"node_elements must be a non-empty list of element symbols, got {self.node_elements!r}")
        try:
            dt = float(self.timestep_fs)
        except (TypeError, ValueError):
            raise ValueError(f"timestep_fs must be a positive number (fs), got {self.timestep_fs!r}") from None
        if not math.isfinite(dt) or dt <= 0:
            raise ValueError(f"timestep_fs must be a positive number (fs), got {self.timestep_fs!r}")
        if not rows:
            raise ValueError("at least one training row is needed, got 0")
        if self.population_transform not in ("reference", "log"):
            raise ValueError(f"population_transform must be 'reference' or 'log', got {self.population_transform!r}")
        self.node_elements_ = tuple(sorted(set(self.node_elements)))
        elements = set()
        for r in rows:
            elements.update(e for e, c in r.element_counts.items() if c > 0)
        self.non_node_elements_ = tuple(sorted(elements - set(self.node_elements_)))
        X = np.array([self.features(r.element_counts) for r in rows])
        w = np.array([r.stability_weight for r in rows], dtype=np.float64)
        lifetimes = [r.mean_lifetime_fs for r in rows if r.mean_lifetime_fs is not None and math.isfinite(r.mean_lifetime_fs)]
        self.default_lifetime_fs_ = float(np.mean(lifetimes)) if lifetimes else dt
        self.models_ = {}
        for name, transform, lower, upper in PROPERTY_TARGETS:
            if self.population_transform == "log" and name in ("mean_count_per_frame", "occupancy_fraction"):
                transform = "log"
            if name == "mean_lifetime_fs":
                y = np.array([r.mean_lifetime_fs if r.mean_lifetime_fs is not None else self.default_lifetime_fs_ for r in rows], dtype=np.float64)
                lower = dt
                default = max(self.default_lifetime_fs_, dt)
            else:
                y = np.array([getattr(r, name) for r in rows], dtype=np.float64)
                default = _weighted_mean(y, w)
            self.models_[name] = WeightedRidge(self.alpha, transform, lower, upper, default).fit(X, y, w)
        for el in self.non_node_elements_:
            y = np.array([float(r.element_counts.get(el, 0)) for r in rows])
            self.models_[f"count_{el}"] = WeightedRidge(self.alpha, "identity", 0.0, None, _weighted_mean(y, w)).fit(X, y, w)
        self.n_train_ = len(rows)
        return self

    def features(self, counts: Mapping) -> np.ndarray:
        """Feature vector of ``counts`` with this model's element order."""
        node = getattr(self, "node_elements_", None) or tuple(sorted(set(self.node_elements)))
        return feature_vector(counts, node, getattr(self, "non_node_elements_", ()))

    def _check_fitted(self):
        if not hasattr(self, "models_"):
            raise ValueError("this ClusterPropertyModel is not fitted yet; call fit(rows) first")

    def predict(self, counts: Mapping) -> dict:
        """All property targets for one composition, in target units (see the module table)."""
        self._check_fitted()
        x = self.features(counts)[None, :]
        return {name: float(m.predict(x)[0]) for name, m in self.models_.items() if not name.startswith("count_")}

    def predict_counts(self, counts: Mapping) -> dict:
        """Unrounded non-node element counts predicted from the features of ``counts``."""
        self._check_fitted()
        x = self.features(counts)[None, :]
        return {el: float(self.models_[f"count_{el}"].predict(x)[0]) for el in self.non_node_elements_}
