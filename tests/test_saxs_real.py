"""Issue 13 on real data: the PbI2 example and the molten-NaCl mixture (the README's run) fitted to
the stitched APS PbI2/DMF curve (q <= 0.8, quadratic background). The evidence must not rate the
wrong system (NaCl) as supported above the right one, and free linker ions are components."""
from __future__ import annotations

import csv
import json

import pytest

from clusterdynamicsml.pipeline import workflow


def _run(cfg):
    cfg = cfg.replace("run", progress=False).replace("report", figures=False, pptx=False, html=False)
    res = workflow.run(cfg)
    assert res.step("saxs").status == "done", (res.step("saxs").message, res.warnings)
    d = res.run_dir
    fit = json.loads((d / res.outputs["saxs_fit_json"]).read_text())
    with open(d / res.outputs["saxs_components_csv"]) as fh:
        rows = list(csv.DictReader(fh))
    return res, fit, rows


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    from clusterdynamicsml.example import example_config
    from clusterdynamicsml.pipeline.config import RunConfig

    out = tmp_path_factory.mktemp("saxs_real")
    saxs_files = [str(p) for p in sorted((shared_data / "saxs_pbi2_dmf_aps5idd").glob("*.txt"))]
    ex = example_config(out).replace("predict", bootstrap=5).replace(
        "saxs", experimental=saxs_files, fit_q_max=0.8, background_degree=2, max_structures_per_label=8)
    toml = out / "nacl.toml"
    toml.write_text(f"""
[run]
name = "nacl"
output_dir = "{out}"
[frames]
path = "{shared_data / 'nacl_molten_1400K_zincware' / 'NaCl_1400K_0.extxyz'}"
timestep_fs = 1.0
stride = 2
[clusters]
node = ["Na"]
linker = ["Cl"]
shell = []
cutoffs = {{ "Na-Cl" = 2.6 }}
[dynamics]
frames_per_bin = 10
[library]
max_files_per_label = 40
[predict]
population_transform = "log"
[saxs]
experimental = {json.dumps(saxs_files)}
fit_q_max = 0.8
background_degree = 2
max_structures_per_label = 8
""")
    return _run(ex), _run(RunConfig.from_toml(toml))


@pytest.mark.shared_data
def test_wrong_system_is_not_rated_supported_above_the_right_one(runs):
    (ex_res, ex, _), (na_res, na, _) = runs
    for fit in (ex, na):
        assert fit["noise"]["used"] == "estimate" and fit["noise"]["file_sigma_over_estimate"] > 2
        assert set(fit["models"]) >= {"background", "generic", "observed", "combined", "reweighted", "pearson"}
        assert {"q_min", "q_mid", "q_max"} <= set(fit["background_share"])
        assert fit["evidence"]["reason"]
    e_ex, e_na = ex["evidence"], na["evidence"]
    # NaCl (wrong system) is never supported unless PbI2 (right system) is too, and then with a smaller margin
    assert not (e_na["supported"] and not e_ex["supported"])
    if e_na["supported"]:
        assert e_na["delta_bic_vs_generic"] < e_ex["delta_bic_vs_generic"]
    # the verdict is in the summary (the SAXS step's message)
    for res, fit in ((ex_res, ex), (na_res, na)):
        assert fit["verdict"] in res.step("saxs").message
        assert fit["verdict"] in res.summary_text()


@pytest.mark.shared_data
def test_free_linker_ions_are_components(runs):
    (_, _, ex_rows), (_, _, na_rows) = runs
    for rows, ion in ((ex_rows, "I"), (na_rows, "Cl")):
        row = next(r for r in rows if r["label"] == ion)
        assert row["node_free"] == "True" and row["in_mixture"] == "True" and float(row["weight"]) > 0
        assert row["source"] == "observed"
    # every label of the dynamics table is listed
    assert {"Na", "Cl", "NaCl"} <= {r["label"] for r in na_rows}
