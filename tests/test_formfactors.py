"""Waasmaier-Kirfel form factors through xraydb: values, caching, unknown elements."""
from __future__ import annotations

import numpy as np
import pytest

import clusterdynamicsml as cdml
from clusterdynamicsml.saxs.formfactors import form_factor, normalize_element


def test_forward_value_is_close_to_atomic_number():
    ff = cdml.saxs.form_factors(["Pb", "I", "O", "H"], np.array([0.0]))
    for el, z in (("Pb", 82), ("I", 53), ("O", 8), ("H", 1)):
        assert ff[el][0] == pytest.approx(z, abs=0.2)


def test_matches_xraydb_with_s_equal_q_over_4pi():
    import xraydb

    q = np.linspace(0, 4, 31)
    np.testing.assert_array_equal(form_factor("Pb", q), np.asarray(xraydb.f0("Pb", q / (4 * np.pi))))


def test_monotone_decay_and_cache_returns_same_object():
    q = np.linspace(0, 2, 50)
    a = form_factor("I", q)
    assert np.all(np.diff(a) < 0)
    assert form_factor("i", q.copy()) is a  # normalised name, same grid -> cached array
    assert not a.flags.writeable


def test_normalisation_and_unknown_elements():
    assert normalize_element("PB") == "Pb" and normalize_element(" o ") == "O"
    with pytest.raises(ValueError, match="no Waasmaier-Kirfel form factor for element 'Qq'"):
        cdml.saxs.form_factors(["Pb", "Qq"], [0.1])
    with pytest.raises(ValueError, match="non-empty string"):
        cdml.saxs.form_factors([""], [0.1])
    with pytest.raises(ValueError, match="q must be finite"):
        cdml.saxs.form_factors(["Pb"], [np.nan])
