"""Command-line interface: ``clusterdynamicsml`` (also ``python -m clusterdynamicsml``).

``main(argv) -> int`` is the testable entry point; errors go to stderr with a non-zero
exit code and no traceback unless ``--debug`` is given.
"""
from __future__ import annotations

import argparse
import sys


def _version_text() -> str:
    from . import __version__, get_num_threads, openmp_enabled

    return (
        f"clusterdynamicsml {__version__} (OpenMP {'on' if openmp_enabled() else 'off'}, "
        f"{get_num_threads()} threads)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clusterdynamicsml",
        description="Clusters, cluster dynamics, predicted larger clusters and Debye SAXS from MD frames.",
    )
    parser.add_argument("--version", action="store_true", help="print version, OpenMP status and threads")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("-j", "--threads", type=int, default=None, help="threads for the C++ kernels")
    parser.add_argument("command", nargs="?", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.version:
        print(_version_text())
        return 0
    parser.print_help()
    return 0 if args.command is None else 2


def entry_point() -> None:
    sys.exit(main())
