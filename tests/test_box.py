"""Box: construction forms, parameters round trip, wrap, exact minimum image, bad input."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import clusterdynamicsml as cdml
from clusterdynamicsml.geometry.box import Box


def brute_minimum_image(d: np.ndarray, h: np.ndarray, reach: int = 4) -> np.ndarray:
    """Shortest image of each displacement by trying every shift in [-reach, reach]^3 (no rounding)."""
    shifts = np.array(list(itertools.product(range(-reach, reach + 1), repeat=3)), dtype=float) @ h
    s = d @ np.linalg.inv(h)
    base = (s - np.floor(s)) @ h  # into the cell first, then the explicit search
    cand = base[:, None, :] + shifts[None, :, :]
    best = np.argmin((cand * cand).sum(-1), axis=1)
    return cand[np.arange(len(d)), best]


PARAMS = [
    (10.0, 11.0, 12.0, 90.0, 90.0, 90.0),
    (10.0, 11.0, 12.0, 60.0, 65.0, 70.0),
    (12.0, 12.0, 12.0, 60.0, 60.0, 60.0),
    (9.0, 15.0, 11.0, 110.0, 80.0, 120.0),
    (20.0, 7.0, 13.0, 75.0, 100.0, 65.0),
]


@pytest.mark.parametrize("params", PARAMS)
def test_from_parameters_round_trip(params):
    box = Box.from_parameters(*params)
    np.testing.assert_allclose(box.lengths, params[:3], rtol=1e-12)
    np.testing.assert_allclose(box.angles, params[3:], atol=1e-9)
    m = box.matrix
    assert m.shape == (3, 3) and m.dtype == np.float64
    assert m[0, 1] == 0.0 and m[0, 2] == 0.0 and m[1, 2] == 0.0  # a along x, b in the xy plane
    np.testing.assert_allclose(box.volume, abs(np.linalg.det(m)), rtol=1e-12)
    assert box.is_orthorhombic == (params[3:] == (90.0, 90.0, 90.0))
    back = Box.from_parameters(*box.lengths, *box.angles)
    np.testing.assert_allclose(back.matrix, m, atol=1e-9)


def test_heights_are_perpendicular_face_distances():
    box = Box.from_matrix([[10.0, 0.0, 0.0], [4.0, 9.0, 0.0], [-3.0, 2.0, 8.0]])
    a, b, c = box.matrix
    for k, (u, v, w) in enumerate([(b, c, a), (c, a, b), (a, b, c)]):
        nrm = np.cross(u, v)
        assert box.heights[k] == pytest.approx(abs(np.dot(w, nrm)) / np.linalg.norm(nrm), rel=1e-12)
    assert Box([3.0, 4.0, 5.0]).heights.tolist() == [3.0, 4.0, 5.0]


def test_coerce_forms():
    assert Box.coerce(None) is None
    b = Box([10.0, 11.0, 12.0])
    assert Box.coerce(b) is b
    assert Box.coerce([10, 11, 12]) == b
    assert Box.coerce((10, 11, 12, 90, 90, 90)) == b
    assert Box.coerce(np.diag([10.0, 11.0, 12.0])) == b
    t = Box.coerce([10, 11, 12, 70, 80, 60])
    np.testing.assert_allclose(t.angles, [70, 80, 60])
    assert hash(Box.coerce([10, 11, 12])) == hash(b)
    assert "Box(" in repr(b) and "from_matrix" in repr(t)


@pytest.mark.parametrize("params", PARAMS)
def test_wrap_lands_in_cell_and_keeps_images(params):
    box = Box.from_parameters(*params)
    rng = np.random.default_rng(0)
    pos = rng.uniform(-5, 5, size=(500, 3)) @ box.matrix
    pos[:5] = [[0, 0, 0], box.matrix[0], -box.matrix[1], box.matrix.sum(0), -1e-17 * box.matrix[2]]
    w = box.wrap(pos)
    s = box.to_fractional(w)
    assert np.all(s >= -1e-12) and np.all(s < 1.0), f"fractional range {s.min()}..{s.max()}"
    shift = box.to_fractional(pos - w)
    np.testing.assert_allclose(shift, np.round(shift), atol=1e-9)


@pytest.mark.parametrize("params", PARAMS)
def test_minimum_image_exact_against_brute_force(params):
    box = Box.from_parameters(*params)
    rng = np.random.default_rng(1)
    d = rng.uniform(-3, 3, size=(2000, 3)) @ box.matrix
    got = box.minimum_image(d)
    ref = brute_minimum_image(d, box.matrix)
    gl, rl = np.linalg.norm(got, axis=1), np.linalg.norm(ref, axis=1)
    bad = np.flatnonzero(np.abs(gl - rl) > 1e-9)
    assert bad.size == 0, f"params={params}: first wrong rows {bad[:5]}: got {gl[bad[:3]]}, want {rl[bad[:3]]}"
    # the result is an image of the input
    k = box.to_fractional(got - d)
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)


def test_minimum_image_of_very_skewed_cell():
    """A cell that is not reduced (c nearly along a + b): rounding alone is not enough."""
    m = np.array([[10.0, 0.0, 0.0], [9.0, 3.0, 0.0], [17.0, 2.5, 2.0]])
    box = Box.from_matrix(m)
    rng = np.random.default_rng(2)
    d = rng.uniform(-2, 2, size=(3000, 3)) @ m
    got = np.linalg.norm(box.minimum_image(d), axis=1)
    ref = np.linalg.norm(brute_minimum_image(d, m, reach=6), axis=1)
    bad = np.flatnonzero(np.abs(got - ref) > 1e-9)
    assert bad.size == 0, f"first wrong rows {bad[:5]}: got {got[bad[:3]]}, want {ref[bad[:3]]}"


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Box([10.0, 10.0]), "3 edge lengths"),
        (lambda: Box([10.0, -1.0, 10.0]), "positive"),
        (lambda: Box([10.0, np.nan, 10.0]), "finite"),
        (lambda: Box("abc"), "edge lengths"),
        (lambda: Box.from_matrix(np.zeros((3, 3))), "singular"),
        (lambda: Box.from_matrix([[1, 0, 0], [0, 1, 0], [1, 1, 0]]), "singular"),
        (lambda: Box.from_matrix(np.eye(2)), r"shape \(3, 3\)"),
        (lambda: Box.from_matrix([[1, 0, 0], [0, np.inf, 0], [0, 0, 1]]), "finite"),
        (lambda: Box.from_parameters(10, 10, 10, 90, 90, 190), r"\(0, 180\)"),
        (lambda: Box.from_parameters(10, 10, 10, 10, 10, 100), "valid cell"),
        (lambda: Box.from_parameters(10, 0, 10), "positive"),
        (lambda: Box.coerce([1, 2, 3, 4]), "box must be"),
        (lambda: Box.coerce("cubic"), "box must be"),
        (lambda: Box([10, 10, 10]).wrap(np.zeros((2, 2))), r"shape \(n, 3\)"),
        (lambda: Box([10, 10, 10]).minimum_image([[np.nan, 0, 0]]), "NaN"),
    ],
)
def test_bad_boxes_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_matrix_is_read_only():
    b = cdml.Box([10.0, 10.0, 10.0])
    with pytest.raises(ValueError):
        b.matrix[0, 0] = 5.0
