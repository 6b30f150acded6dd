"""The report's UMAP pictures (paper Fig. 1b, 12 and 13): how a layer's features cluster by the
hierarchy, at an early, a middle and the last measured epoch."""

from __future__ import annotations

import numpy as np

from hypbias.analysis.findings import picture_finding
from hypbias.analysis.layer_tables import pick_epochs
from hypbias.analysis.umap_pictures import (
    anchor_distances,
    anchor_index,
    centre_agreement,
    read_pictures,
)
from hypbias.report.figures_umap import plot_umap_pictures
from hypbias.report.html import Section
from hypbias.report.sections import RunContext, register_section


@register_section(15)
def pictures(ctx: RunContext) -> Section | None:
    path = ctx.run.file("manifold.npz")
    if not path.exists():
        return None
    with np.load(path) as data:
        found = read_pictures({k: data[k] for k in data.files if k.startswith("umap2d:")})
    if not found:
        return None
    hierarchy, spaces = ctx.run.hierarchy, ctx.spaces
    anchor = anchor_index(ctx.run.config.get("manifold", {}).get("anchor"), hierarchy.classes)
    distances = anchor_distances(hierarchy.graph_distance_matrix(), anchor)
    group_name, groups = next(iter(spaces.hypernyms.items()), (None, None))
    sec = Section("The feature manifold in pictures: UMAP embeddings coloured by the hierarchy")
    findings, notes = [], []
    for layer, by_epoch in found.items():
        epochs = pick_epochs(list(by_epoch))
        shown = {e: by_epoch[e] for e in epochs}
        if groups is not None:
            agreement = {e: centre_agreement(p.centres, groups.t) for e, p in by_epoch.items()}
            findings.append(picture_finding(layer, group_name, agreement,
                                            classes=hierarchy.num_classes))
        n_points = len(next(iter(shown.values())).labels)
        notes.append(f"{layer}: {n_points} examples")
        sec.figures.append((
            f"umap_{layer}",
            plot_umap_pictures(shown, distances, anchor=anchor, class_names=hierarchy.classes,
                               groups=groups, group_name=group_name),
            f"Layer {layer} at epochs {', '.join(map(str, epochs))}: 2-D UMAP of the manifold "
            f"samples coloured by graph distance to {hierarchy.classes[anchor]} (Fig. 1b, 12) and "
            f"by {group_name or 'superclass'}, and of the class means (Fig. 13)."))
    sec.paragraphs = findings or ["Pictures of the analysed layers."]
    sec.paragraphs.append(
        "Each picture embeds the same examples of the manifold analysis (query and support, "
        f"{'; '.join(notes)}) into two dimensions with UMAP (seeded), and separately the mean "
        "feature of each class. Colour: the hierarchy's graph distance of a class to the anchor "
        "class, near classes red and drawn on top. The sentence above counts, in the class-mean "
        "picture, the classes whose nearest other class mean lies in their own superclass.")
    return sec
