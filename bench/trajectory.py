"""Trajectory throughput: frames per second and peak RSS of a whole dynamics pass, each case in a
fresh child process started by a small launcher (``measure_child``: it reads the child's own
peak RSS with ``os.wait4``, so nothing the measuring process or another case allocated is counted).

Workloads (``--mode``):

* ``read``     iterate ``read_frames(path)`` (frames/s, MB/s);
* ``api``      ``analyze_dynamics(path, rules)`` (serial, the default threads);
* ``cli``      ``python -m clusterdynamicsml dynamics PATH --node Pb --linker I --cutoff Pb-I=3.5``;
* ``mdanalysis``  a peer: ``MDAnalysis.Universe(path)`` iterating the same extended-XYZ frames
  (``MDAnalysis.coordinates.XYZ``), when installed;
* ``ase``      a peer: ``ase.io.iread(path)``, when installed.

Files come from ``bench/trajgen.py`` (Pb/I "ions" frames, one node and one linker type,
3.5 A cutoff; cached under ``$CDML_BENCH_DATA`` or /tmp/cdml_bench_data).

    python bench/trajectory.py --atoms 1000 10000 100000 --frames 1000 5000 --mode read api
    python bench/trajectory.py --atoms 1000 --frames 1000 20000 --mode api cli   # RSS flatness
    python bench/trajectory.py --atoms 10000 --frames 1000 --mode read api --compare /path/to/old/python

Frames per CPU-second (the child's own CPU time) is printed beside frames per second: on a
machine shared with other jobs it shows what one free core would do.

Compare only numbers of one run: the machine is shared. ``--json FILE`` keeps the rows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import trajgen  # noqa: E402

_CHILD = r"""
import json, sys, time
sys.path.insert(0, {here!r})
mode, path, n_frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0, c0 = time.perf_counter(), time.process_time()
if mode == "read":
    from clusterdynamicsml.io.frames import read_frames
    n = 0
    for f in read_frames(path):
        n += 1
    assert n == n_frames, n
elif mode == "api":
    import trajgen
    from clusterdynamicsml.dynamics.analyze import analyze_dynamics
    r = analyze_dynamics(path, trajgen.rules(), timestep_fs=trajgen.TIMESTEP_FS)
    assert r.n_frames == n_frames, r.n_frames
elif mode == "mdanalysis":
    import MDAnalysis as mda
    u = mda.Universe(path, format="XYZ", topology_format="XYZ")
    n = sum(1 for ts in u.trajectory)
    assert n == n_frames, n
elif mode == "ase":
    import ase.io
    n = sum(1 for a in ase.io.iread(path, format="extxyz"))
    assert n == n_frames, n
else:
    raise SystemExit("unknown mode " + mode)
print(json.dumps({{"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}}))
"""


# A small launcher between the measuring process and the workload. Linux keeps the peak RSS a
# process had before execve (and a child starts as a copy of its parent), so a workload started
# directly from a big process (pytest, a launcher that imported numpy) would report at least that
# process's peak. The launcher imports nothing heavy (python -S: no site-packages), starts the
# workload and reports the workload's own peak RSS and CPU time from os.wait4.
def measure_child(args: list[str], env: dict | None = None) -> tuple[str, str, float, float]:
    """Run ``args`` under the small launcher; return (stdout, stderr, peak RSS in kB, CPU seconds)
    of that process alone. Raises RuntimeError when it fails."""
    code = r"""
import json, os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
out = p.stdout.read()
err = p.stderr.read()
_, status, ru = os.wait4(p.pid, 0)
sys.stdout.write(json.dumps({"code": os.waitstatus_to_exitcode(status), "maxrss_kb": ru.ru_maxrss,
                             "cpu": ru.ru_utime + ru.ru_stime, "out": out.decode(), "err": err.decode()[-3000:]}))
"""
    done = subprocess.run([sys.executable, "-S", "-c", code, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"launcher failed: {done.stderr[-2000:]}")
    info = json.loads(done.stdout)
    if info["code"] != 0:
        raise RuntimeError(f"{' '.join(args[:4])} ... failed ({info['code']}):\n{info['err']}")
    return info["out"], info["err"], float(info["maxrss_kb"]), float(info["cpu"])


def run_case(mode: str, path: Path, n_frames: int, out_dir: Path, python_path: str | None = None) -> dict:
    """Run one workload in a fresh child; return seconds and CPU seconds (measured inside the
    child, after imports; for the CLI the wall time and the child's CPU time) and the child's
    peak RSS. ``python_path`` runs another build of the package (e.g. the previous revision)."""
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = python_path
    if mode == "cli":
        args = [sys.executable, "-m", "clusterdynamicsml", "dynamics", str(path), "--node", "Pb", "--linker", "I",
                "--shell", "", "--cutoff", f"Pb-I={trajgen.CUTOFF}", "--timestep-fs", str(trajgen.TIMESTEP_FS),
                "-q", "-o", str(out_dir)]
    else:
        args = [sys.executable, "-c", _CHILD.format(here=str(HERE)), mode, str(path), str(n_frames)]
    t0 = time.perf_counter()
    out, _err, maxrss_kb, child_cpu = measure_child(args, env)
    wall = time.perf_counter() - t0
    if mode == "cli":
        seconds, cpu = wall, child_cpu
    else:
        times = json.loads(out.strip().splitlines()[-1])
        seconds, cpu = times["seconds"], times["cpu_seconds"]
    return {"mode": mode, "file": path.name, "n_frames": n_frames, "seconds": seconds, "cpu_seconds": cpu,
            "frames_per_s": n_frames / seconds, "frames_per_cpu_s": n_frames / cpu,
            "mb_per_s": path.stat().st_size / seconds / 1e6, "peak_rss_mb": maxrss_kb / 1024.0}


def available(mode: str) -> bool:
    mod = {"mdanalysis": "MDAnalysis", "ase": "ase"}.get(mode)
    if mod is None:
        return True
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--atoms", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--frames", type=int, nargs="+", default=[1000])
    ap.add_argument("--mode", nargs="+", default=["read", "api"],
                    choices=["read", "api", "cli", "mdanalysis", "ase"])
    ap.add_argument("--kind", default="ions", choices=sorted(trajgen.KINDS))
    ap.add_argument("--repeat", type=int, default=1, help="runs per case (the rows keep every run)")
    ap.add_argument("--json", type=Path, help="write the rows to this file")
    ap.add_argument("--compare", metavar="PYTHONPATH",
                    help="also run every case with this PYTHONPATH (another build, e.g. the previous revision), "
                         "alternating with this one")
    args = ap.parse_args(argv)
    rows = []
    out_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "cdml_bench_cli"
    builds = [("this", None)] + ([("compare", args.compare)] if args.compare else [])
    print(f"{'build':>8} {'mode':>10} {'atoms':>7} {'frames':>7} {'seconds':>9} {'frames/s':>9} {'fr/CPU-s':>9} "
          f"{'MB/s':>7} {'peak RSS MB':>12}")
    for n_atoms in args.atoms:
        for n_frames in args.frames:
            path = trajgen.trajectory(n_atoms, n_frames, kind=args.kind)
            for _ in range(args.repeat):
                for mode in args.mode:
                    if not available(mode):
                        print(f"{mode:>10}: not installed, skipped")
                        continue
                    for build, pp in builds:
                        if build == "compare" and mode in ("mdanalysis", "ase"):
                            continue
                        r = run_case(mode, path, n_frames, out_dir, pp)
                        r.update(n_atoms=n_atoms, build=build)
                        rows.append(r)
                        print(f"{build:>8} {mode:>10} {n_atoms:>7} {n_frames:>7} {r['seconds']:>9.2f} "
                              f"{r['frames_per_s']:>9.1f} {r['frames_per_cpu_s']:>9.1f} {r['mb_per_s']:>7.1f} "
                              f"{r['peak_rss_mb']:>12.1f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
