"""Assemble ``report.html``: sections of prose, tables and figures in one self-contained page.

Figures are saved under ``figures/`` as PNG (embedded in the page, base64, so the report can be
mailed or attached on its own) and as PDF next to it, vector graphics for papers.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from hypbias.io import atomic_write, atomic_write_text


@dataclass
class Section:
    """A report section: a title, paragraphs (plain text), optional HTML tables and figures."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    figures: list[tuple[str, Figure, str]] = field(default_factory=list)
    """(file stem, figure, caption)"""


def _render(fig: Figure, fmt: str, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    return buffer.getvalue()


def figure_png(fig: Figure, path: Path | None = None, dpi: int = 110) -> bytes:
    """Render a figure to PNG bytes, then close it; with ``path`` (``<stem>.png``) also write the
    PNG there and a PDF beside it (``<stem>.pdf``)."""
    data = _render(fig, "png", dpi)
    if path is not None:
        pdf = _render(fig, "pdf", dpi)
        atomic_write(path, lambda fh: fh.write(data))
        atomic_write(path.with_suffix(".pdf"), lambda fh: fh.write(pdf))
    plt.close(fig)
    return data


def frame_table(frame: pd.DataFrame, digits: int = 2, caption: str | None = None) -> str:
    """An HTML table of a DataFrame (index and column levels kept), numbers to ``digits`` places,
    missing values as a dash, with an optional caption."""
    text = frame.to_html(float_format=lambda v: f"{v:.{digits}f}", na_rep="—", border=0)
    if caption:
        text = text.replace(">", f"><caption>{html.escape(caption)}</caption>", 1)
    return text


_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
p.finding { background: #f3f7ff; border-left: 4px solid #3b6fd8; padding: .6em .9em; }
figure { display: inline-block; margin: .6em; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; max-width: 640px; }
table { border-collapse: collapse; font-size: .9em; margin: .8em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f6f6f6; } td:first-child, th:first-child { text-align: left; }
code { background: #f4f4f4; padding: 0 .2em; }
caption { caption-side: top; text-align: left; font-size: .9em; color: #444; padding-bottom: .3em; }
"""


def render_page(title: str, intro: list[str], sections: list[Section], figure_dir: Path) -> str:
    """The HTML page; each figure is also written to ``figure_dir/<stem>.png``."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{html.escape(p)}</p>" for p in intro]
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        for i, p in enumerate(sec.paragraphs):
            cls = " class='finding'" if i == 0 else ""
            parts.append(f"<p{cls}>{html.escape(p)}</p>")
        parts.extend(sec.tables)
        for stem, fig, caption in sec.figures:
            png = figure_png(fig, figure_dir / f"{stem}.png")
            data = base64.b64encode(png).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(stem)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_page(path: Path, text: str) -> None:
    atomic_write_text(path, text)

