"""scripts/calibrate_model_error.py: k from validation files (known answer), the leave-one-out
check, and a file that is not a validation is refused naming it."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "calibrate_model_error", Path(__file__).resolve().parents[1] / "scripts" / "calibrate_model_error.py")
cme = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(cme)


def _validation(path, K, errors, rg_errors, clusters=100):
    """A validation file whose held-out size K + d is off by exp(errors[d - 1]) (count) and
    exp(rg_errors[d - 1]) (Rg), with a bootstrap interval of +-10 %."""
    sizes = []
    for d, (e, er) in enumerate(zip(errors, rg_errors), start=1):
        pred, prg = 0.5 / d, 4.0 + d
        sizes.append({"node_count": K + d, "observed_clusters": clusters,
                      "observed_count_per_frame": pred * math.exp(e), "predicted_count_per_frame": pred,
                      "predicted_count_p05": pred / 1.1, "predicted_count_p95": pred * 1.1,
                      "observed_rg": prg * math.exp(er), "predicted_rg": prg,
                      "predicted_rg_p05": prg / 1.1, "predicted_rg_p95": prg * 1.1})
    path.write_text(json.dumps({"train_max_node_count": K, "sizes": sizes}))
    return path


def test_k_is_the_rms_log_error_per_node_and_leave_one_out_is_reported(tmp_path, capsys):
    a = _validation(tmp_path / "a.json", 6, [0.1, 0.2, 0.3], [0.01, 0.02, 0.03])  # e/d = 0.1 and 0.01
    b = _validation(tmp_path / "b.json", 6, [-0.3, -0.6, -0.9], [0.0, 0.0, 0.0])  # e/d = 0.3 and 0
    _validation(tmp_path / "c.json", 6, [5.0], [5.0], clusters=10)  # too few clusters: left out
    assert cme.main([str(a), str(b), str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    k_count, k_rg = math.sqrt((3 * 0.1**2 + 3 * 0.3**2) / 6), math.sqrt(3 * 0.01**2 / 6)
    assert f"k_count = {k_count:.4f} per node from 6 held-out sizes of 3 files" in out
    assert f"k_rg = {k_rg:.4f} per node from 6" in out
    # leave-one-out: a is judged with b's k (0.3) and covered; b with a's k (0.1): |e| = 0.3 d > 1.645 x 0.1 d
    assert "a: count 3/3 (k 0.300)" in out and "b: count 0/3 (k 0.100)" in out and "c: count -, rg -" in out


def test_a_file_that_is_not_a_validation_is_refused(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text('{"sizes": 3}')
    assert cme.main([str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
