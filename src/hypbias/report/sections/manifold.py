"""The report's layer-wise manifold section (paper §3.2, §4.3, Table 6–7, Fig. 2 and 6)."""

from __future__ import annotations

from hypbias.analysis.findings import manifold_finding
from hypbias.report.figures_manifold import (
    plot_ccc_heatmap,
    plot_cover_curves,
    plot_probe_depth,
)
from hypbias.report.html import Section
from hypbias.report.sections import RunContext, register_section


@register_section(30)
def manifold(ctx: RunContext) -> Section | None:
    if not ctx.has_metric("ccc_cover"):
        return None
    m = ctx.metrics
    mf = ctx.run.config["manifold"]
    sec = Section("Layer-wise alignment of the feature manifold with the hierarchy")
    sec.paragraphs.append(manifold_finding(m))
    where = "UMAP embeddings" if mf["space"] == "umap" else "raw features"
    sec.paragraphs.append(
        f"For each layer, {mf['k']} query and {mf['k']} support examples per class (the same at every "
        f"epoch) are embedded ({where}, {mf['dim']} dimensions). The cover p(i, j) is the mean over "
        "queries of class i of max(0, 1 − d(u, V^j)/r_max), where d is the distance to the nearest "
        "support example of class j. D_F = 1 − (A + Aᵀ)/2 is then correlated with the hierarchy's graph "
        "distances (CCC, Eq. 17–18). Class-mean distances and example-pair distances give the two "
        "alternative CCCs of App. C.3. Linear probes are trained on the fine classes and scored in every "
        "space (App. C.4)."
    )
    for stem, fig, caption in (
        ("manifold_ccc", plot_ccc_heatmap(m, "ccc_cover"),
         "Cophenetic correlation of mutual covers with the hierarchy, layer × epoch (Table 6, Fig. 6a)."),
        ("manifold_ccc_means", plot_ccc_heatmap(m, "ccc_class_means"),
         "The same with distances between class means (App. C.3)."),
        ("manifold_covers", plot_cover_curves(m), "Mean self-cover and mutual cover per layer (Fig. 2)."),
        ("manifold_probes", plot_probe_depth(m),
         "Linear-probe accuracy against normalised depth, per label space (Fig. 6b–c)."),
    ):
        if fig is not None:
            sec.figures.append((stem, fig, caption))
    return sec
