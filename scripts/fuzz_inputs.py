#!/usr/bin/env python3
"""Bounded, seeded fuzzing of every input reader, the run file, saved datasets and the CLI.

Each case takes a valid input (multi-frame XYZ, extended XYZ, CP2K pos file, PDB, a folder of
one-frame files, a structure file, a CP2K .ener file, an experimental SAXS file, a run file, a
saved dataset, a command line), mutates it with a seeded random generator (byte flips, cut
lines, duplicated lines, tokens such as nan, 1e400, -0, huge integers, unicode, NUL) and reads
it with the package. Frames that are read are also clustered and their Debye intensity
computed, so the C++ kernels see the fuzzed coordinates.

A case passes when it succeeds, or fails with a ValueError / OSError whose message names the
input (file name, or run-file key, or command-line flag). Anything else (TypeError, KeyError,
IndexError, OverflowError, a bare message) is counted as a traceback. The cases run in worker
processes; a worker killed by a signal is an extension crash, recorded with its seed, and the
run goes on after it.

    python scripts/fuzz_inputs.py --cases 2000 --seed 0 [--workers 2] [--verbose]

Exit code 0 when there are no tracebacks and no crashes. ``run_cases`` is the in-process entry
point the test suite uses for a small slice.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import numpy as np

KINDS = ("xyz", "extxyz", "cp2k", "pdb", "folder", "structure", "ener", "saxs", "runfile", "dataset", "cli")

TOKENS = ["nan", "NaN", "inf", "-inf", "1e400", "-1e400", "1e20", "1e300", "-0", "0", "999999999999999999999999",
          "-1", "x", "", " ", "\t", "\x00", "\u00e4", "N\u00e4", "N_a", "Pb", "I", "O", "Xx", "../../etc", "1.5.6",
          "0x10", "1_000", "\"", "'", "[", "]", "{", "=", "#", "time=", "Lattice=\"1 0 0\"", "ATOM", "END"]


# ---------------------------------------------------------------------------------------
# valid inputs
# ---------------------------------------------------------------------------------------
def _frames_text(rng, n_frames=3, ext=False, cp2k=False):
    out = []
    for k in range(n_frames):
        pos = rng.uniform(0, 10, size=(5, 3))
        out.append("5")
        if cp2k:
            out.append(f" i =     {k:5d}, time =     {0.5 * k:9.3f}, E =   -123.456")
        elif ext:
            out.append(f'Lattice="12 0 0 0 12 0 0 0 12" Properties=species:S:1:pos:R:3 time={0.5 * k}')
        else:
            out.append(f"frame {k}")
        for el, p in zip(["Pb", "I", "I", "O", "O"], pos):
            out.append(f"{el} {p[0]:.4f} {p[1]:.4f} {p[2]:.4f}")
    return "\n".join(out) + "\n"


def _pdb_text(rng, n_frames=2):
    lines = ["CRYST1   12.000   12.000   12.000  90.00  90.00  90.00 P 1           1"]
    for m in range(n_frames):
        lines.append(f"MODEL     {m + 1:4d}")
        for i, (name, res, el) in enumerate([("PB", "PB", "Pb"), ("I", "I", "I"), ("O", "DMF", "O")]):
            x, y, z = rng.uniform(0, 10, 3)
            lines.append(f"HETATM{i + 1:5d} {name:<4s} {res:>3s} A{i + 1:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00"
                         f"          {el:>2s}")
        lines.append("ENDMDL")
    lines.append("END")
    return "\n".join(lines) + "\n"


def _ener_text(rng):
    rows = ["#     Step Nr.          Time[fs]        Kin.[a.u.]          Temp[K]            Pot.[a.u.]"
            "        Cons Qty[a.u.]        UsedTime[s]"]
    for k in range(5):
        rows.append(f"{10 * k:10d} {20.0 * k:17.6f} {0.13 + 0.01 * rng.random():20.12f} {300 + rng.random():17.6f} "
                    f"{-0.5 - 0.01 * rng.random():20.12f} {-0.37:20.12f} {0.0:20.6f}")
    return "\n".join(rows) + "\n"


def _saxs_text(rng):
    q = np.linspace(0.02, 1.0, 25)
    return "# q(1/A) I sigma\n" + "".join(f"{a:.5f} {np.exp(-a) + 0.01 * rng.random():.6f} 0.01\n" for a in q)


RUNFILE = """[run]
name = "fz"
output_dir = "out"
threads = 1
progress = false
seed = 0

[frames]
path = "frames.xyz"
timestep_fs = 0.5
box = [12.0, 12.0, 12.0]
element_map = ["D=H"]

[clusters]
node = ["Pb"]
linker = ["I"]
shell = ["O"]
cutoffs = { "Pb-I" = 3.36, "Pb-O" = { 0 = 3.36, 1 = 5.0 } }

[dynamics]
frames_per_bin = 2
chunk_size = 4

[predict]
candidates_per_size = 3
target_node_counts = [3, 4]

[saxs]
q_min = 0.02
q_max = 1.2
q_points = 50
experimental = ["exp.dat"]

[report]
formats = ["png"]
dpi = 100
color_quantiles = [0.05, 0.95]
"""


def _dataset_payload():
    return {"format": "clusterdynamicsml.run", "version": 1,
            "settings": {"run": {"name": "fz"}, "clusters": {"node": ["Pb"], "linker": ["I"],
                                                             "cutoffs": {"Pb-I": 3.36}}},
            "environment": {"versions": {"clusterdynamicsml": "0"}}, "steps": [{"name": "frames", "status": "done",
                                                                              "seconds": 0.1, "message": "3 frames"}],
            "warnings": [], "outputs": {}, "summary": {"frames": 3},
            "prediction": {"predictions": [{"target_node_count": 4, "rank": 1, "label": "Pb4I8"}]},
            "saxs": {"q": [0.1, 0.2], "components": [{"label": "PbI2", "intensity": [1.0, 0.5], "std": [0, 0],
                                                      "se": [0, 0]}]}}


# ---------------------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------------------
def _mutate_text(rng, text: str) -> str:
    lines = text.split("\n")
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(0, 8))
        k = int(rng.integers(0, max(len(lines), 1)))
        if not lines:
            lines = [""]
        if op == 0:  # replace a token
            toks = lines[k].split(" ")
            j = int(rng.integers(0, len(toks)))
            toks[j] = TOKENS[int(rng.integers(0, len(TOKENS)))]
            lines[k] = " ".join(toks)
        elif op == 1:  # delete a line
            del lines[k]
        elif op == 2:  # duplicate a line
            lines.insert(k, lines[k])
        elif op == 3:  # cut a line short
            lines[k] = lines[k][: int(rng.integers(0, len(lines[k]) + 1))]
        elif op == 4:  # truncate the text
            lines = lines[:k]
        elif op == 5:  # insert a token line
            lines.insert(k, " ".join(TOKENS[int(i)] for i in rng.integers(0, len(TOKENS), 3)))
        elif op == 6:  # swap two lines
            j = int(rng.integers(0, len(lines)))
            lines[k], lines[j] = lines[j], lines[k]
        else:  # a number made huge or tiny
            toks = lines[k].split()
            if toks:
                j = int(rng.integers(0, len(toks)))
                toks[j] = rng.choice(["1e308", "-1e308", "1e-320", "12345678901234567890", "-99999999"])
                lines[k] = " ".join(toks)
    return "\n".join(lines)


def _mutate_bytes(rng, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        if not b:
            break
        k = int(rng.integers(0, len(b)))
        b[k] = int(rng.integers(0, 256))
    return bytes(b)


def _mutate(rng, text: str) -> bytes:
    if rng.random() < 0.75:
        return _mutate_text(rng, text).encode("utf-8", "surrogatepass")
    return _mutate_bytes(rng, text.encode())


def _mutate_obj(rng, obj, depth=0):
    """Randomly damage a JSON-like object (wrong types, missing keys, odd values)."""
    odd = [None, 1, -1, 1e308, "x", [], {}, [1, "a"], {"a": 1}, True, "../../x", "\x00"]
    if isinstance(obj, dict) and obj:
        obj = dict(obj)
        key = list(obj)[int(rng.integers(0, len(obj)))]
        r = rng.random()
        if r < 0.25:
            del obj[key]
        elif r < 0.55 or depth > 3:
            obj[key] = odd[int(rng.integers(0, len(odd)))]
        else:
            obj[key] = _mutate_obj(rng, obj[key], depth + 1)
        return obj
    if isinstance(obj, list) and obj:
        obj = list(obj)
        k = int(rng.integers(0, len(obj)))
        obj[k] = _mutate_obj(rng, obj[k], depth + 1) if rng.random() < 0.6 else odd[int(rng.integers(0, len(odd)))]
        return obj
    return odd[int(rng.integers(0, len(odd)))]


# ---------------------------------------------------------------------------------------
# one case
# ---------------------------------------------------------------------------------------
class Unnamed(Exception):
    """A clean error whose message names neither the file nor a key."""


def _exercise_frames(src) -> None:
    """Cluster and Debye the first frames: the C++ kernels see the fuzzed coordinates."""
    from clusterdynamicsml.clusters.extract import extract_clusters
    from clusterdynamicsml.rules import ClusterRules
    from clusterdynamicsml.saxs.debye import debye_intensity

    rules = ClusterRules(node=["Pb"], linker=["I"], shell=["O"], cutoffs={("Pb", "I"): 3.36, ("Pb", "O"): 3.36},
                         pbc=src[0].box is not None if len(src) else False)
    for k in range(min(len(src), 2)):
        fr = src[k]
        try:  # the pipeline names the file of a frame the kernels refuse; so does this harness
            extract_clusters(fr, rules, 1)
            if fr.n_atoms and fr.n_atoms < 50:
                debye_intensity(fr.positions, fr.symbols, np.linspace(0.05, 1.0, 5))
        except ValueError as exc:
            raise ValueError(f"{fr.source}: frame {k}: {exc}") from None


def _case(kind: str, seed: int, work: Path) -> None:
    """Build, mutate and read one input. Raises what the package raises."""
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    from clusterdynamicsml.io.frames import read_frames

    if kind in ("xyz", "extxyz", "cp2k"):
        name = {"xyz": "t.xyz", "extxyz": "t.extxyz", "cp2k": "t_pbc_12-pos-1.xyz"}[kind]
        p = work / name
        p.write_bytes(_mutate(rng, _frames_text(rng, ext=kind == "extxyz", cp2k=kind == "cp2k")))
        src = read_frames(str(p), timestep_fs=None if kind != "xyz" else 0.5)
        _exercise_frames(src)
    elif kind == "pdb":
        p = work / "t.pdb"
        p.write_bytes(_mutate(rng, _pdb_text(rng)))
        _exercise_frames(read_frames(str(p), timestep_fs=1.0))
    elif kind == "folder":
        d = work / "frames"
        d.mkdir()
        for k in range(3):
            text = _frames_text(rng, n_frames=1, ext=True)
            (d / f"frame_{k}.xyz").write_bytes(_mutate(rng, text) if k == 1 else text.encode())
        _exercise_frames(read_frames(str(d), timestep_fs=2.0))
    elif kind == "structure":
        from clusterdynamicsml.io.frames import read_structure

        p = work / ("s.pdb" if rng.random() < 0.4 else "s.xyz")
        p.write_bytes(_mutate(rng, _pdb_text(rng, 1) if p.suffix == ".pdb" else _frames_text(rng, 1)))
        fr = read_structure(str(p))
        from clusterdynamicsml.saxs.debye import debye_intensity

        try:
            debye_intensity(fr.positions, fr.symbols, np.linspace(0.05, 1.0, 5))
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from None
    elif kind == "ener":
        from clusterdynamicsml.io.energy import read_cp2k_ener

        p = work / "t.ener"
        p.write_bytes(_mutate(rng, _ener_text(rng)))
        read_cp2k_ener(str(p))
    elif kind == "saxs":
        from clusterdynamicsml.saxs.expdata import load_saxs_data

        p = work / "exp.dat"
        p.write_bytes(_mutate(rng, _saxs_text(rng)))
        load_saxs_data(str(p))
    elif kind == "runfile":
        from clusterdynamicsml.pipeline.checks import cluster_rules
        from clusterdynamicsml.pipeline.config import RunConfig

        (work / "frames.xyz").write_text(_frames_text(rng))
        (work / "exp.dat").write_text(_saxs_text(rng))
        p = work / "run.toml"
        p.write_bytes(_mutate(rng, RUNFILE))
        cfg = RunConfig.from_toml(p)
        cfg.check_paths()
        cfg.check_clusters()
        cluster_rules(cfg)
        cfg.to_toml(template=True)
    elif kind == "dataset":
        from clusterdynamicsml.pipeline.runs import load_run

        p = work / "fz_dataset.json"
        payload = _dataset_payload()
        for _ in range(int(rng.integers(1, 4))):
            payload = _mutate_obj(rng, payload)
        text = json.dumps(payload)
        p.write_bytes(_mutate(rng, text) if rng.random() < 0.2 else text.encode())
        load_run(p)
    elif kind == "cli":
        _cli_case(rng, work)


def _cli_case(rng, work: Path) -> None:
    """A random command line of cheap commands; it must end with exit code 0/1/2 and at most
    one stderr line without a traceback."""
    from clusterdynamicsml.pipeline.cli import main

    (work / "s.xyz").write_text("2\n\nPb 0 0 0\nI 3 0 0\n")
    (work / "r.toml").write_bytes(_mutate(rng, RUNFILE))
    values = ["1", "0", "-1", "2", "1e9", "nan", "inf", "x", "", "99999999999999999999", "s.xyz", "r.toml",
              "missing.xyz", "tcp://127.0.0.1:99999", "Pb-I=3", "Pb-I=x", "PbI", "3", "/", "..", "--", "-q"]
    commands = [["saxs", "s.xyz"], ["saxs", "r.toml"], ["runs", "list", "."], ["runs", "compare", ".", "."],
                ["report", "."], ["extract", "missing.xyz", "-o", "lib"], ["dynamics", "missing.xyz"],
                ["run", "missing.toml"], ["batch-run", "missing.toml"], ["saxs", "."]]
    flags = ["-j", "--q-min", "--q-max", "--q-points", "--timestep-fs", "--cutoff", "--box", "--node", "--workers",
             "--frames-per-bin", "--scheduler", "--formats", "-o", "--default-cutoff"]
    argv = list(commands[int(rng.integers(0, len(commands)))])
    for _ in range(int(rng.integers(0, 3))):
        argv += [flags[int(rng.integers(0, len(flags)))], values[int(rng.integers(0, len(values)))]]
    argv.append("-q")
    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(work)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(argv)
    finally:
        os.chdir(cwd)
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    if rc not in (0, 1, 2) or len(lines) > 1 or "Traceback" in err.getvalue():
        raise AssertionError(f"clusterdynamicsml {' '.join(argv)} -> rc {rc}, stderr {lines[:5]}")
    if rc == 1 and lines:
        bad = ("TypeError", "KeyError", "IndexError", "OverflowError", "AttributeError", "ZeroDivisionError")
        if any(b + ":" in lines[0] for b in bad):
            raise AssertionError(f"clusterdynamicsml {' '.join(argv)}: {lines[0]}")


def classify(kind: str, seed: int) -> tuple[str, str]:
    """('ok' | 'error' | 'unnamed' | 'traceback', detail) of one case."""
    with tempfile.TemporaryDirectory(prefix="cdml_fuzz_") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        work = Path(tmp)
        try:
            _case(kind, seed, work)
        except (ValueError, OSError) as exc:
            text = str(exc)
            names = ("t.xyz", "t.extxyz", "t_pbc_12", "t.pdb", "frames", "frame_", "s.xyz", "s.pdb", "t.ener",
                     "exp.dat", "run.toml", "fz_dataset.json")
            if not any(n in text for n in names):
                return "unnamed", f"{exc.__class__.__name__}: {text[:300]}"
            return "error", text.splitlines()[0][:200] if text else ""
        except AssertionError as exc:
            return "traceback", str(exc)[:500]
        except Exception:  # noqa: BLE001 - this is what the fuzzer looks for
            return "traceback", traceback.format_exc()[-1500:]
    return "ok", ""


def cases(n: int, seed: int):
    """(kind, seed) of case k: the kinds in turn, seeds from ``seed`` up."""
    return [(KINDS[k % len(KINDS)], seed + k) for k in range(n)]


def run_cases(selection) -> dict:
    """Run (kind, seed) cases in this process; returns counts and the failures."""
    out = {"ok": 0, "error": 0, "unnamed": 0, "traceback": 0, "failures": []}
    for kind, seed in selection:
        status, detail = classify(kind, seed)
        out[status] += 1
        if status in ("unnamed", "traceback"):
            out["failures"].append({"kind": kind, "seed": seed, "status": status, "detail": detail})
    return out


# ---------------------------------------------------------------------------------------
# driver: worker processes, crashes survive
# ---------------------------------------------------------------------------------------
def _worker(first: int, n: int, seed: int) -> None:
    """Print one JSON line per case (flushed), so a crash is pinned to its case."""
    for kind, s in cases(first + n, seed)[first:]:
        print(json.dumps({"start": [kind, s]}), flush=True)
        status, detail = classify(kind, s)
        print(json.dumps({"kind": kind, "seed": s, "status": status, "detail": detail}), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--_worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        _worker(args._worker[0], args._worker[1], args.seed)
        return 0
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    counts = {"ok": 0, "error": 0, "unnamed": 0, "traceback": 0, "crash": 0}
    per_kind = {k: {"ok": 0, "error": 0} for k in KINDS}
    failures = []
    todo = [(0, args.cases)]
    while todo:
        blocks, todo = todo, []
        size = max(1, (sum(n for _, n in blocks)) // max(args.workers, 1) + 1)
        jobs = []
        for first, n in blocks:
            for a in range(first, first + n, size):
                m = min(size, first + n - a)
                p = subprocess.Popen([sys.executable, __file__, "--seed", str(args.seed), "--_worker", str(a), str(m)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
                jobs.append((a, m, p))
        for a, m, p in jobs:
            done, started = 0, None
            for line in p.stdout:
                rec = json.loads(line)
                if "start" in rec:
                    started = rec["start"]
                    continue
                done += 1
                counts[rec["status"]] += 1
                if rec["status"] in ("ok", "error"):
                    per_kind[rec["kind"]][rec["status"]] += 1
                if rec["status"] in ("unnamed", "traceback"):
                    failures.append(rec)
            p.wait()
            if p.returncode != 0:  # killed by a signal (or died): the case it was on crashed
                counts["crash"] += 1
                failures.append({"kind": started[0] if started else "?", "seed": started[1] if started else a + done,
                                 "status": "crash", "detail": f"worker exit code {p.returncode}"})
                if a + done + 1 < a + m:
                    todo.append((a + done + 1, m - done - 1))
    total = sum(counts.values())
    print(f"fuzz: {total} cases (seed {args.seed}, kinds {', '.join(KINDS)}): {counts['ok']} read, "
          f"{counts['error']} clean errors naming the input, {counts['unnamed']} errors naming nothing, "
          f"{counts['traceback']} tracebacks, {counts['crash']} extension crashes")
    print("  per input (read / clean error): " + ", ".join(f"{k} {v['ok']}/{v['error']}" for k, v in per_kind.items()))
    for f in failures[: None if args.verbose else 20]:
        print(f"  {f['status']:9s} {f['kind']:9s} seed {f['seed']}: {f['detail'].strip().splitlines()[-1][:300]}")
    return 0 if counts["traceback"] == 0 and counts["crash"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
