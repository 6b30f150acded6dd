"""The HTML report of a run directory."""

from __future__ import annotations

from pathlib import Path

from hypbias.report.html import render_page, write_page
from hypbias.report.sections import RunContext, build_sections
from hypbias.rundir import RunDir


def write_report(run: RunDir | str | Path) -> Path:
    """Write ``report.html`` (and ``figures/*.png``) for a run directory; returns the page's path."""
    run = run if isinstance(run, RunDir) else RunDir(Path(run))
    ctx = RunContext(run)
    cfg = run.config
    data = cfg["data"]["name"]
    model = cfg["model"]["name"]
    intro = [
        f"Run {run.path.name}: model {model} on {data} ({run.hierarchy.num_classes} classes, "
        f"hierarchy height {run.hierarchy.height}), {cfg['train']['epochs']} epochs, seed {cfg['seed']}.",
    ]
    page = render_page("hypbias report", intro, build_sections(ctx), run.figures)
    out = run.file("report.html")
    write_page(out, page)
    return out


__all__ = ["write_report"]
