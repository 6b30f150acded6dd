"""The report's neural-collapse section (paper §3.3, Fig. 5 and Fig. 11)."""

from __future__ import annotations

from hypbias.analysis.findings import collapse_finding
from hypbias.report.figures import space_sizes
from hypbias.report.figures_collapse import plot_collapse, plot_equality
from hypbias.report.html import Section
from hypbias.report.sections import RunContext, register_section


@register_section(20)
def neural_collapse(ctx: RunContext) -> Section | None:
    if not ctx.has_metric("nc1"):
        return None
    m = ctx.metrics
    split = m.loc[m.metric == "nc1", "split"].iloc[0]
    sec = Section("Neural collapse in hyponym, hypernym and random label spaces")
    finding = collapse_finding(m, split=split)
    if finding:
        sec.paragraphs.append(finding)
    sec.paragraphs.append(
        f"Measured on the {split} split from the penultimate features: NC1 = tr(Σ_W Σ_B†)/K "
        "(variability collapse), NC2 (equal norms and angles of class means and classifier rows), "
        "NC3 (self-duality of W and the means), NC4 (share of samples whose classifier decision differs "
        "from the nearest class mean). A superclass's mean weights its samples and its classifier row is "
        "the mean of its members' rows (Eq. 33–34); every space comes from the same fine statistics, so "
        "the whole table costs two passes over the data."
    )
    sizes = space_sizes(ctx.spaces, ctx.run.hierarchy.num_classes)
    for stem, fig, caption in (
        ("collapse", plot_collapse(m, split=split, sizes=sizes), "NC1 (log scale), NC3 and NC4 per "
         "epoch in each label space (paper Fig. 5); random spaces as mean ± sd over draws; NC1 divides "
         "by each space's own number of groups K."),
        ("collapse_equality", plot_equality(m, split=split, sizes=sizes), "Equality of norms and "
         "angles of class means and classifier rows, and the max-angle of the simplex ETF, "
         "avg |cos + 1/(K − 1)| (paper Fig. 11)."),
    ):
        if fig is not None:
            sec.figures.append((stem, fig, caption))
    return sec
