"""Test doubles for the stage steps of the workflow (used by test_workflow.py and test_cli.py).

They replace ``workflow._STEP_FUNCS`` so tests of the wiring (run folders, saved settings,
reload, history, CLI) do not depend on the stage modules.
"""
from __future__ import annotations

from pathlib import Path

from clusterdynamicsml.pipeline import workflow

#: the [clusters] section of the test run files (there are no default elements or cutoffs)
PBI = '[clusters]\nnode = ["Pb"]\nlinker = ["I"]\nshell = ["O"]\ncutoffs = { "Pb-I" = 3.36, "Pb-O" = 3.36 }\n'


def fake_steps(monkeypatch, fail_at: str | None = None):
    def frames(ctx):
        text = Path(ctx.cfg.resolve_path(ctx.cfg.frames.path)).read_text().splitlines()
        ctx.data["frames"] = [0] * int(text[0])
        return "ok"

    def dynamics(ctx):
        if fail_at == "dynamics":
            raise ValueError("frames.xyz, line 3: bad coordinate 'x'")
        ctx.data["dynamics"] = {"labels": ["PbI2", "PbI"], "bin_edges_fs": [0.0, 10.0, 20.0],
                                "lifetime_by_label": [{"label": "PbI2", "cluster_size": 3, "mean_lifetime_fs": 15.0},
                                                      {"label": "PbI", "cluster_size": 2, "mean_lifetime_fs": None}]}
        return "2 labels"

    def predict(ctx):
        n = ctx.cfg.predict.candidates_per_size
        ctx.data["prediction"] = {"predictions": [
            {"target_node_count": 4, "rank": r + 1, "label": f"Pb4I{8 + r}", "predicted_population_share": 0.5 / (r + 1),
             "predicted_mean_lifetime_fs": 40.0} for r in range(n)]}
        return f"{n} predicted candidates"

    def unavailable(ctx):
        raise workflow._Skip("not part of these tests")

    steps = dict(workflow._STEP_FUNCS)
    steps.update(frames=frames, dynamics=dynamics, library=lambda ctx: "skipped here", predict=predict,
                 structures=unavailable, saxs=unavailable, figures=lambda ctx: "no figures")
    monkeypatch.setattr(workflow, "_STEP_FUNCS", steps)
