"""The bundled example: a small synthetic PbI2/solvent trajectory and real PbI2/DMF SAXS data.

``clusterdynamicsml example -o DIR`` runs the whole job on it. ``example_config()`` returns
its run settings; ``generate.py`` is the (documented, numpy-only) generator of the trajectory.
"""
from __future__ import annotations

from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parent
RUN_FILE = EXAMPLE_DIR / "example.toml"


def example_config(output_dir=None):
    """The example's RunConfig; ``output_dir`` (if given) replaces [run] output_dir."""
    from ..pipeline.config import RunConfig

    cfg = RunConfig.from_toml(RUN_FILE)
    if output_dir is not None:
        cfg = cfg.replace("run", output_dir=str(Path(output_dir).resolve()))
    return cfg
