"""Experimental SAXS loader (headers, sigma, q-unit check) and multi-detector stitching."""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml.saxs.expdata import load_saxs_data, stitch_saxs

APS = "saxs_pbi2_dmf_aps5idd"


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_loader_reads_header_names_commas_and_sigma(tmp_path):
    p = write(tmp_path, "a.csv", "# comment\nsigma, q, intensity\n0.1, 0.30, 5\n0.2, 0.10, 7\n0.3, 0.20, 6\n")
    d = load_saxs_data(p)
    np.testing.assert_array_equal(d.q, [0.1, 0.2, 0.3])  # sorted by q
    np.testing.assert_array_equal(d.intensity, [7, 6, 5])
    np.testing.assert_array_equal(d.sigma, [0.2, 0.3, 0.1])


def test_loader_without_sigma_and_tabs(tmp_path):
    d = load_saxs_data(write(tmp_path, "b.dat", "0.1\t3\n0.2\t2\n0.3\t1\n"))
    assert d.sigma is None and d.q.tolist() == [0.1, 0.2, 0.3]


def test_nm_units_rejected_unless_given(tmp_path):
    body = "".join(f"{q:.3f} {10 - q:.3f} 0.1\n" for q in np.linspace(0.1, 30, 20))
    p = write(tmp_path, "nm.dat", body)
    with pytest.raises(ValueError, match="looks like nm\\^-1"):
        load_saxs_data(p)
    d = load_saxs_data(p, q_unit="nm^-1")
    assert d.q[-1] == pytest.approx(3.0)
    d2 = load_saxs_data(write(tmp_path, "nm2.dat", "# q (1/nm)  I  sigma\n" + body))
    assert d2.q[-1] == pytest.approx(3.0) and "nm^-1" in d2.notes[0]
    assert load_saxs_data(p, q_unit="A^-1").q[-1] == pytest.approx(30.0)
    with pytest.raises(ValueError, match="q_unit must be"):
        load_saxs_data(p, q_unit="furlongs")


def test_bad_files_name_file_and_line(tmp_path):
    with pytest.raises(ValueError, match=r"bad\.dat, line 3: expected numbers"):
        load_saxs_data(write(tmp_path, "bad.dat", "0.1 1 0.1\n0.2 1 0.1\n0.3 x 0.1\n"))
    with pytest.raises(ValueError, match=r"zero\.dat, line 2: sigma must be > 0"):
        load_saxs_data(write(tmp_path, "zero.dat", "0.1 1 0.1\n0.2 1 0\n0.3 1 0.1\n"))
    with pytest.raises(ValueError, match="need at least 3"):
        load_saxs_data(write(tmp_path, "short.dat", "# only\n0.1 1\n"))
    with pytest.raises(ValueError, match="cannot read"):
        load_saxs_data(tmp_path / "missing.dat")


def test_stitch_recovers_known_scale_factors():
    q1 = np.linspace(0.01, 0.2, 60)
    q2 = np.linspace(0.15, 1.0, 80)
    q3 = np.linspace(0.9, 3.0, 90)
    f = lambda q: 1.0 / (1 + (3 * q) ** 2) + 0.05  # noqa: E731
    from clusterdynamicsml.saxs.expdata import SaxsData

    parts = [SaxsData(q, f(q) * s, 0.01 * f(q) * s, f"d{k}") for k, (q, s) in enumerate([(q1, 1.0), (q2, 0.5), (q3, 4.0)])]
    st = stitch_saxs([parts[2], parts[0], parts[1]])  # any input order
    np.testing.assert_allclose(st.scale_factors, [0.25, 1.0, 2.0], rtol=1e-3)
    assert np.all(np.diff(st.q) > 0)
    np.testing.assert_allclose(st.intensity, f(st.q), rtol=2e-3)
    st2 = stitch_saxs(parts, reference=1)
    np.testing.assert_allclose(st2.intensity, 0.5 * f(st2.q), rtol=2e-3)
    with pytest.raises(ValueError, match="overlap in 0 points"):
        stitch_saxs([parts[0], parts[2]])


@pytest.mark.shared_data
def test_real_aps_files_load_and_stitch(shared_data):
    files = sorted((shared_data / APS).glob("*.txt"))
    assert len(files) == 3
    sets = [load_saxs_data(f) for f in files]
    sizes = {d.source[-13:-8]: len(d) for d in sets}
    assert sizes == {"hs102": 1006, "hs103": 394, "hs104": 502}
    assert all(d.sigma is not None and np.all(d.sigma > 0) for d in sets)  # '#' header skipped, sigma read
    st = stitch_saxs(files)
    assert st.q[0] == pytest.approx(0.0025405) and st.q[-1] == pytest.approx(4.4578)
    assert len(st) > 1000 and np.all(np.diff(st.q) > 0)
    # SAXS detector is the reference; MAXS and WAXS are brought up by ~1.2 at the overlaps
    f = dict(zip([d.source[-13:-8] for d in sets], st.scale_factors))
    assert f["hs104"] == 1.0 and 1.1 < f["hs103"] < 1.35 and 1.1 < f["hs102"] < 1.35
    # continuity across the joins: neighbouring points agree to a few percent
    for cut in (0.135, 0.71):
        k = int(np.searchsorted(st.q, cut))
        assert abs(st.intensity[k] / st.intensity[k - 1] - 1) < 0.05


def test_comment_header_names_columns(tmp_path):
    d = load_saxs_data(write(tmp_path, "c.dat", "# made by hand\n# sigma I q\n0.1 5 0.3\n0.2 7 0.1\n0.3 6 0.2\n"))
    np.testing.assert_array_equal(d.q, [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(d.sigma, [0.2, 0.3, 0.1])
    d2 = load_saxs_data(write(tmp_path, "d.dat", "0.1 5 0.3\n0.2 7 0.1\n0.3 6 0.2\n"), columns=(2, 1, None))
    assert d2.sigma is None and d2.q.tolist() == [0.1, 0.2, 0.3]
