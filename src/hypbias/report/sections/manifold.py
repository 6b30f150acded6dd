"""The report's layer-wise manifold section (paper §3.2, §4.3, Table 6–7, Fig. 2 and 6)."""

from __future__ import annotations

from hypbias.analysis.findings import (
    ccc_table_finding,
    cover_spaces_finding,
    manifold_finding,
    probe_training_finding,
)
from hypbias.analysis.layer_tables import ccc_table, pick_epochs, probe_table
from hypbias.analysis.metric_names import metric_param
from hypbias.analysis.tables import layer_rows
from hypbias.report.figures_manifold import (
    plot_ccc_heatmap,
    plot_cover_curves,
    plot_cover_spaces,
    plot_probe_comparison,
    plot_probe_depth,
)
from hypbias.report.html import Section, frame_table
from hypbias.report.sections import RunContext, register_section

PROBE_METHODS = {"ridge": "closed-form ridge least squares on one-hot targets (Raghu et al. 2021)",
                 "logistic": "multinomial logistic regression fitted by L-BFGS"}


def _tables(ctx: RunContext, sec: Section) -> None:
    """Table 6 at a few measured epochs, and Table 7 for every space probes were trained in."""
    m = ctx.metrics
    measured = sorted(layer_rows(m, "ccc_cover").epoch.unique())
    table6 = ccc_table(m, sorted({measured[0], *pick_epochs(measured)}))  # initialisation too
    sec.paragraphs.append(ccc_table_finding(table6))
    sec.tables.append(frame_table(table6, caption=(
        "Table 6: CCC of the hierarchy's graph distances with example-pair distances (direct), "
        "class-mean distances and mutual-cover distances, per layer, with the mean over layers.")))
    if not m.metric.eq("probe_accuracy").any():
        return
    trained = sorted({space for name in m.metric.unique()
                      if (space := metric_param(name, "probe_accuracy", "trained")) is not None})
    epoch = int(m[m.metric == "probe_accuracy"].epoch.max())  # Table 7's: the last probed epoch
    for space in [s for s in ctx.spaces.hypernyms if s in trained]:
        table7 = probe_table(m, space, epoch)
        finding = probe_training_finding(table7, space, epoch,
                                         ctx.run.config["manifold"].get("probe_method", "logistic"))
        if finding:
            sec.paragraphs.append(finding)
        sec.tables.append(frame_table(table7, digits=1, caption=(
            f"Table 7: accuracy in {space} (%) of probes trained in {space} and in H, per layer, at "
            f"epoch {epoch}.")))
    if not trained:
        sec.paragraphs.append("Probes were trained in H only; manifold.probe_train_spaces: all also "
                              "trains them in every hypernym space (Table 7).")


@register_section(30)
def manifold(ctx: RunContext) -> Section | None:
    if not ctx.has_metric("ccc_cover"):
        return None
    m = ctx.metrics
    mf = ctx.run.config["manifold"]
    sec = Section("Layer-wise alignment of the feature manifold with the hierarchy")
    finding = manifold_finding(m)
    if finding:
        sec.paragraphs.append(finding)
    where = {"umap": "UMAP embeddings", "raw": "raw features",
             "both": "UMAP embeddings, and again on the raw features"}.get(mf["space"], mf["space"])
    method = mf.get("probe_method", "logistic")
    sec.paragraphs.append(
        f"For each layer, {mf['k']} query and {mf['k']} support examples per class (the same at every "
        f"epoch) are embedded ({where}, {mf['dim']} dimensions). The cover p(i, j) is the mean over "
        "queries of class i of max(0, 1 − d(u, V^j)/r_max), where d is the distance to the nearest "
        "support example of class j. D_F = 1 − (A + Aᵀ)/2 is then correlated with the hierarchy's graph "
        "distances (CCC, Eq. 17–18). Class-mean distances and example-pair distances give the two "
        "alternative CCCs of App. C.3. Linear probes (App. C.4.2) are trained on "
        f"{mf.get('probe_k', 10)} examples per class of the validation split and scored on the rest: "
        f"{method} probes, {PROBE_METHODS.get(method, method)}; a probe trained in H is scored in "
        "every space by mapping its fine predictions."
    )
    _tables(ctx, sec)
    covers = cover_spaces_finding(m)
    if covers:
        sec.paragraphs.append(covers)
    for stem, fig, caption in (
        ("manifold_ccc", plot_ccc_heatmap(m, "ccc_cover"),
         "Cophenetic correlation of mutual covers with the hierarchy, layer × epoch (Table 6, Fig. 6a); "
         "columns sit at their epochs."),
        ("manifold_ccc_means", plot_ccc_heatmap(m, "ccc_class_means"),
         "The same with distances between class means (App. C.3)."),
        ("manifold_ccc_direct", plot_ccc_heatmap(m, "ccc_direct") if ctx.has_metric("ccc_direct")
         else None, "The same with the distances of example pairs of different classes, correlated "
         "directly (App. C.3)."),
        ("manifold_covers", plot_cover_curves(m), "Mean self-cover and mutual cover per layer (Fig. 2)."),
        ("manifold_cover_spaces", plot_cover_spaces(m),
         "Covers of the top layer in the raw feature space (a) and in the UMAP embedding (b), as "
         "Fig. 2a–b: only in the embedding do self-covers pull away from mutual covers."),
        ("manifold_probes", plot_probe_depth(m, method=method) if ctx.has_metric("probe_accuracy")
         else None,
         f"Accuracy of few-shot {method} probes against normalised depth, per label space "
         "(Fig. 6b–c, 15)."),
        ("manifold_probe_types", plot_probe_comparison(m),
         "Few-shot probes against probes fitted on many training examples per class with large, "
         "medium and small pooling windows (small, balanced and large probes), at the last "
         "compared epoch (Fig. 14)."),
    ):
        if fig is not None:
            sec.figures.append((stem, fig, caption))
    return sec
