#!/usr/bin/env python3
"""Regenerate the bundled example of clusterdynamicsml.

    python scripts/make_example.py [--saxs-dir ../shared/data/saxs_pbi2_dmf_aps5idd]

Writes into python/clusterdynamicsml/example/data/:
  pbi2_solvent_langevin.xyz   200-frame extended XYZ of a Langevin simulation (numpy only,
                              fixed seed) of Pb2+, I- and solvent O sites; see
                              clusterdynamicsml/example/generate.py for the model and equations
  pbi2_solvent_langevin.ener  CP2K-style energy file of the same run
  saxs/pbi2_dmf2_bseries_hs10{2,3,4}_389.txt   real experimental SAXS/MAXS/WAXS of PbI2 in DMF
                              (APS 5-ID-D; BSD-3-Clause, from KWWyatt/SAXSShell), copied unchanged
  example_model.json          the simulation parameters
The run file example.toml next to the data is written by hand and kept in git.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from clusterdynamicsml.example.generate import ExampleModel, write_example  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--saxs-dir", default=str(REPO.parent / "shared" / "data" / "saxs_pbi2_dmf_aps5idd"),
                    help="folder with pbi2_dmf2_bseries_hs10{2,3,4}_389.txt")
    ap.add_argument("--out", default=str(REPO / "python" / "clusterdynamicsml" / "example" / "data"))
    args = ap.parse_args()
    out = Path(args.out)
    info = write_example(out, ExampleModel())
    print(f"wrote {info['xyz']} and {info['ener']}: {info['n_atoms']} atoms x {info['n_frames']} frames "
          f"in {info['seconds']:.1f} s")
    (out / "example_model.json").write_text(json.dumps(info["model"], indent=2) + "\n")
    saxs_src = Path(args.saxs_dir)
    saxs_out = out / "saxs"
    saxs_out.mkdir(exist_ok=True)
    for name in ("pbi2_dmf2_bseries_hs102_389.txt", "pbi2_dmf2_bseries_hs103_389.txt",
                 "pbi2_dmf2_bseries_hs104_389.txt"):
        src = saxs_src / name
        if not src.is_file():
            print(f"error: {src} not found (give --saxs-dir)", file=sys.stderr)
            return 1
        shutil.copyfile(src, saxs_out / name)
    print(f"copied the experimental SAXS files into {saxs_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
