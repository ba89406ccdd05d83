"""The PowerPoint report of a run (python-pptx, imported when used): a title slide with the
settings and summary, one slide per table and one per figure."""
from __future__ import annotations

from pathlib import Path

from .._io import atomic_path
from .figures import FIGURES
from .outputs import file_entries, files_line, listing_of
from .tables import _figures_of, _fmt, _settings_rows, _tables

__all__ = ["write_pptx_report"]


def _pptx_title(slide, text, size=28):
    from pptx.util import Inches, Pt

    tb = slide.shapes.add_textbox(Inches(0.5), Inches(0.3), Inches(12.3), Inches(0.9))
    tb.text_frame.text = text
    tb.text_frame.paragraphs[0].runs[0].font.size = Pt(size)
    tb.text_frame.paragraphs[0].runs[0].font.bold = True


def _pptx_text(slide, lines, top=1.3, size=14):
    from pptx.util import Inches, Pt

    tb = slide.shapes.add_textbox(Inches(0.6), Inches(top), Inches(12.1), Inches(7.5 - top - 0.3))
    tf = tb.text_frame
    tf.word_wrap = True
    for k, line in enumerate(lines):
        p = tf.paragraphs[0] if k == 0 else tf.add_paragraph()
        p.text = line
        for r in p.runs:
            r.font.size = Pt(size)


def _pptx_table(prs, blank, title, rows, cols, max_rows=14):
    """Table slides of ``rows`` (``max_rows`` a slide) on the ``blank`` layout."""
    from pptx.util import Inches, Pt

    for start in range(0, max(len(rows), 1), max_rows):
        chunk = rows[start:start + max_rows]
        slide = prs.slides.add_slide(blank)
        _pptx_title(slide, title if start == 0 else f"{title} (continued)", 22)
        shape = slide.shapes.add_table(len(chunk) + 1, len(cols), Inches(0.4), Inches(1.3), Inches(12.5),
                                       Inches(0.35 * (len(chunk) + 1)))
        tbl = shape.table
        for j, c in enumerate(cols):
            tbl.cell(0, j).text = c.replace("_", " ")
        for i, r in enumerate(chunk, start=1):
            for j, c in enumerate(cols):
                tbl.cell(i, j).text = _fmt(r.get(c))
        for i in range(len(chunk) + 1):
            for j in range(len(cols)):
                for p in tbl.cell(i, j).text_frame.paragraphs:
                    for run in p.runs:
                        run.font.size = Pt(10)


def write_pptx_report(result, path) -> Path:
    """PowerPoint deck: cover, settings, summary, one slide per figure, tables."""
    try:
        from pptx import Presentation
        from pptx.util import Inches, Pt
    except ImportError:  # pragma: no cover
        raise RuntimeError("the PowerPoint report needs python-pptx: pip install python-pptx") from None

    cfg = result.config
    info = result.info or {}
    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    blank = prs.slide_layouts[6]

    slide = prs.slides.add_slide(blank)
    _pptx_title(slide, f"clusterdynamicsml: {cfg.run.name}", 36)
    versions = info.get("versions", {})
    _pptx_text(slide, [
        f"Run folder: {result.run_dir}",
        f"Frames: {cfg.frames.path}",
        f"clusterdynamicsml {versions.get('clusterdynamicsml')}, OpenMP {'on' if info.get('openmp') else 'off'}, "
        f"{info.get('threads')} threads",
        f"Started {info.get('started', '')}, wall time {info.get('wall_seconds', '')} s",
        "Units: angstrom, fs, rates per ps, q in 1/angstrom",
    ], top=1.6, size=18)

    slide = prs.slides.add_slide(blank)
    _pptx_title(slide, "Summary")
    listing = listing_of(result)  # the count and list summary.txt and the HTML report state too
    _pptx_text(slide, [f"{s.name}: {s.status} ({s.seconds:.2f} s) {s.message}" for s in result.steps]
               + [files_line(listing)] + [f"warning: {w}" for w in result.warnings[:8]], size=14)

    settings = _settings_rows(cfg)
    half = (len(settings) + 1) // 2
    slide = prs.slides.add_slide(blank)
    _pptx_title(slide, "Settings")
    for col, chunk in enumerate((settings[:half], settings[half:])):
        tb = slide.shapes.add_textbox(Inches(0.4 + 6.4 * col), Inches(1.2), Inches(6.2), Inches(6))
        tf = tb.text_frame
        tf.word_wrap = True
        for k, (key, value) in enumerate(chunk):
            p = tf.paragraphs[0] if k == 0 else tf.add_paragraph()
            p.text = f"{key} = {value}"
            for r in p.runs:
                r.font.size = Pt(8)

    figs = _figures_of(result)
    for key, (_, _, title) in FIGURES.items():
        png = next((p for p in figs.get(key, []) if p.endswith(".png") and Path(p).is_file()), None)
        if png is None:
            continue
        slide = prs.slides.add_slide(blank)
        _pptx_title(slide, title, 24)
        from PIL import Image

        with Image.open(png) as im:
            w, h = im.size
        max_w, max_h = 12.3, 5.9
        scale = min(max_w / w, max_h / h)
        slide.shapes.add_picture(png, Inches(0.5 + (max_w - w * scale) / 2), Inches(1.3),
                                 width=Inches(w * scale), height=Inches(h * scale))
    for title, rows, cols in _tables(result):
        _pptx_table(prs, blank, title, rows, cols)
    _pptx_table(prs, blank, f"Files ({listing['count']} written)",
                [{"output": files_line(listing)}] + [{"output": e} for e in file_entries(listing)], ["output"],
                max_rows=16)
    with atomic_path(path) as tmp:
        prs.save(str(tmp))
    return Path(path)


# ---------------------------------------------------------------------------------------
# report from a saved dataset
# ---------------------------------------------------------------------------------------
