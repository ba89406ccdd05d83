"""matplotlib plumbing shared by the plot modules: pyplot on the Agg backend (imported when a
figure is drawn, never at package import) and saving one figure in several formats.

A run's ``[report] formats`` and ``dpi`` reach every figure writer through
:func:`figure_options`: inside ``with figure_options(formats=("png",), dpi=100):`` a
:func:`save_figure` call that does not name its formats or dpi uses these."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

DEFAULT_FORMATS = ("png", "svg")
DEFAULT_DPI = 150
_OPTIONS: ContextVar[tuple[tuple[str, ...], int]] = ContextVar("cdml_figure_options",
                                                                 default=(DEFAULT_FORMATS, DEFAULT_DPI))


@contextlib.contextmanager
def figure_options(formats=None, dpi: int | None = None) -> Iterator[None]:
    """Within the block, :func:`save_figure` writes ``formats`` (any of 'png', 'svg', 'pdf') at
    ``dpi`` (dots per inch) unless its call names them; None keeps the current setting."""
    cur_formats, cur_dpi = _OPTIONS.get()
    if isinstance(formats, str):
        formats = (formats,)
    token = _OPTIONS.set((tuple(formats) if formats is not None else cur_formats,
                          int(dpi) if dpi is not None else cur_dpi))
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive Agg backend (no display needed)."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, formats=None, dpi: int | None = None, bbox_inches=None) -> list[Path]:
    """Save ``fig`` as ``<path>.<fmt>`` for each format (a .png/.svg/.pdf suffix of ``path`` is
    replaced; parent folders are created). ``formats``: any of 'png', 'svg', 'pdf'; None takes
    the formats of the enclosing :func:`figure_options` (default PNG and SVG), and ``dpi`` None
    its dpi (default 150); ``bbox_inches='tight'`` crops to the drawn area. Drawn with the Agg
    canvas. Returns the files written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if formats is None:
        formats = _OPTIONS.get()[0]
    if dpi is None:
        dpi = _OPTIONS.get()[1]

    if isinstance(formats, str):
        formats = (formats,)
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise ValueError(f"formats must be a non-empty subset of ('png', 'svg', 'pdf'), got {formats!r}")
    if fig.canvas is None or type(fig.canvas).__name__ == "FigureCanvasBase":
        FigureCanvasAgg(fig)
    stem = Path(path)
    if stem.suffix.lower() in (".png", ".svg", ".pdf"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        target = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(target, format=fmt, dpi=dpi, bbox_inches=bbox_inches)
        out.append(target)
    return out
