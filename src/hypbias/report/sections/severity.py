"""The report's mistake-severity section: how far in the hierarchy a run's mistakes fall (Bertinetto
et al. 2020; the course report's §3), per epoch."""

from __future__ import annotations

from hypbias.analysis.findings import chance_severity, severity_finding
from hypbias.hierarchy.tree import LCA_CONVENTIONS
from hypbias.report.figures_compare import plot_severity_overlay
from hypbias.report.html import Section
from hypbias.report.sections import RunContext, register_section


@register_section(50)
def severity(ctx: RunContext) -> Section | None:
    if not ctx.has_metric("mistake_severity"):
        return None
    split, m = ctx.split, ctx.metrics
    sec = Section("Mistake severity and hierarchical distances")
    lca = ctx.run.config.get("mistakes", {}).get("lca", LCA_CONVENTIONS[0])
    chance = chance_severity(ctx.run.hierarchy.lca_distance_matrix(lca))
    finding = severity_finding(m, split, chance)
    sec.paragraphs = [finding] if finding else []
    sec.paragraphs.append(
        "Mistake severity is the mean LCA distance between the true class and the predicted one over "
        "top-1 mistakes; the hierarchical top-k distance is the mean LCA distance between the true "
        "class and each of the k most likely classes, mistakes or not. The LCA distance is "
        + ("H − depth(LCA), H the height of the tree, the convention of the published numbers"
           if lca == "depth" else "the LCA's height above its deepest leaf (mistakes.lca: height)")
        + "; a uniformly random wrong class is the chance level of the severity.")
    fig = plot_severity_overlay({ctx.run.path.name: m}, split)
    if fig is not None:
        sec.figures.append(("severity", fig, f"Mistake severity (left) and hierarchical top-k "
                                             f"distances (right) per epoch ({split})."))
    return sec
