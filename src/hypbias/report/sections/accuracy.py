"""The report's label-space sections: hypernym bias in greedy accuracy (paper §4.1–4.2)."""

from __future__ import annotations

import html

from hypbias.analysis.findings import convergence_finding
from hypbias.analysis.layer_tables import pick_epochs
from hypbias.report import figures as F
from hypbias.report.html import Section
from hypbias.report.sections import RunContext, register_section


def _tau_table(ctx: RunContext, groups: dict[str, int]) -> str:
    """τ and final accuracy per space and split; ``groups``: each space's number of groups
    (:func:`F.space_sizes`)."""
    summary = ctx.run.summary
    final = summary.get("final_accuracy", {})
    rows = ["<table><tr><th>space</th><th>groups</th><th>split</th><th>τ (epochs)</th>"
            "<th>final accuracy (%)</th></tr>"]
    for split, taus in summary["tau"].items():
        sd = summary["tau_sd"].get(split, {})
        for name, value in taus.items():
            if "#" in name:
                continue
            shown = "never" if value is None else f"{value:.1f}"
            if name in sd:
                shown += f" ± {sd[name]:.1f}"
            acc = final.get(split, {}).get(name)
            acc_s = "" if acc is None else f"{acc:.2f}"
            rows.append(f"<tr><td>{html.escape(name)}</td><td>{groups.get(name, '')}</td>"
                        f"<td>{split}</td><td>{shown}</td><td>{acc_s}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


@register_section(10)
def hypernym_bias(ctx: RunContext) -> Section | None:
    if not ctx.has_metric("relative_accuracy"):
        return None
    split, spaces, m = ctx.split, ctx.spaces, ctx.metrics
    q = ctx.run.summary["q"]
    sec = Section("Hypernym bias: greedy accuracy in hypernym and random label spaces")
    finding = convergence_finding(ctx.run.summary, spaces, split)
    sec.paragraphs = [finding or "The run has no hypernym space with random draws to compare."]
    sec.paragraphs.append(
        "A fine prediction counts as correct in a label space when it falls in the true class's group "
        "(greedy classification, Eq. 3–7), so every curve comes from the stored fine confusion matrices. "
        f"τ is the first epoch whose accuracy reaches {100 * q:.0f}% of the space's best (Fig. 4); "
        "random spaces R keep the group sizes of S and assign classes at random."
    )
    sizes = F.space_sizes(spaces, ctx.run.hierarchy.num_classes)
    sec.tables.append(_tau_table(ctx, sizes))
    sec.figures = [
        ("relative_accuracy", F.plot_relative_accuracy(m, split, sizes),
         "Relative accuracy A(X, t) / max A(X) per epoch (paper Fig. 1a, Eq. 8); K = number of "
         "groups of each space."),
        ("relative_gain", F.plot_relative_gain(m, split, sizes),
         "Relative accuracy gain over chance with set imbalance (paper Fig. 3, Eq. 9)."),
        ("convergence", F.plot_convergence(ctx.run.summary, spaces, ctx.run.hierarchy.num_classes, split),
         f"Epoch of {100 * q:.0f}% convergence against the number of superclasses (paper Fig. 4)."),
        ("theoretical_accuracy", F.plot_theoretical_accuracy(m, spaces, split),
         "Measured accuracy of random label spaces against Eq. 22, P_R = P_H + (1 − P_H) Σ P_r², "
         "and below their difference (paper Fig. 7)."),
        ("residual_error", F.plot_residual_error(m, split, sizes),
         "Residual relative error E_R + 1 on a log scale (paper Fig. 9, Eq. 35)."),
    ]
    confusion = ctx.run.confusion()
    if split in confusion and spaces.hypernyms:
        stack = confusion[split]
        epochs = pick_epochs(range(stack.shape[0]))
        name, space = next(iter(spaces.hypernyms.items()))
        sec.figures.append((
            "confusion", F.plot_confusions(stack, ctx.run.hierarchy.dfs_order(), epochs, space, name),
            f"{split} confusion matrices at epochs {', '.join(map(str, epochs))}, classes in "
            f"depth-first order of the hierarchy, the blocks of {name} outlined (paper Fig. 8): "
            "mass inside the blocks means mistakes within a hypernym."))
    return sec


@register_section(90)
def training(ctx: RunContext) -> Section | None:
    log = ctx.run.log
    sec = Section("Training")
    acc_cols = [c for c in log.columns if c.startswith("acc_")]
    last = log.iloc[-1]
    finals = ", ".join(f"{c[4:]} {last[c]:.1f}%" for c in acc_cols)
    sec.paragraphs.append(
        f"{int(last.epoch)} epochs in {last.seconds:.1f} s; final fine accuracy: {finals}."
    )
    sec.figures.append(("training", F.plot_training_log(log), "Training loss and fine accuracy."))
    return sec


__all__ = ["hypernym_bias", "training"]
