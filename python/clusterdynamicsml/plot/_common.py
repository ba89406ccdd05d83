"""matplotlib plumbing shared by the plot modules: pyplot on the Agg backend (imported when a
figure is drawn, never at package import) and saving one figure in several formats."""
from __future__ import annotations

from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive Agg backend (no display needed)."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, formats=("png", "svg"), dpi: int = 150, bbox_inches=None) -> list[Path]:
    """Save ``fig`` as ``<path>.png`` and ``<path>.svg`` (a .png/.svg/.pdf suffix of ``path`` is
    replaced; parent folders are created). ``formats``: any of 'png', 'svg', 'pdf';
    ``bbox_inches='tight'`` crops to the drawn area. Drawn with the Agg canvas. Returns the files
    written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

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
