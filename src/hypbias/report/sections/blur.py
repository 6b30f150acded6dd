"""The report's frequency-analysis section (paper App. C.5, Fig. 17–18), present once the run's
checkpoints were evaluated on blurred images (``blur_*@sigma=<σ>`` rows)."""

from __future__ import annotations

from hypbias.analysis.blur import TRUNCATE, blur_table
from hypbias.analysis.findings import blur_finding
from hypbias.report.figures import space_sizes
from hypbias.report.figures_blur import plot_blur
from hypbias.report.html import Section, frame_table
from hypbias.report.sections import RunContext, register_section


@register_section(60)
def blur(ctx: RunContext) -> Section | None:
    table = blur_table(ctx.metrics)
    if table.empty:
        return None
    sec = Section("Frequency analysis: accuracy on blurred images")
    finding = blur_finding(table)
    sec.paragraphs = [finding] if finding else []
    sec.paragraphs.append(
        "Each evaluated checkpoint classifies the evaluation images blurred with a Gaussian of σ "
        f"pixels (kernel radius ⌊{TRUNCATE:g}σ + ½⌋, borders replicated). Relative accuracy is "
        "A_σ / A_0 and the relative gain G = (A_σ − B) / (A_0 − B), B the chance accuracy with set "
        "imbalance, both against the unblurred accuracy A_0 of the same checkpoint. If hypernyms "
        "were recognised from low frequencies learned first, the early checkpoint would keep more "
        "of its accuracy under blur than the late one.")
    rel = table[table.metric == "blur_relative_accuracy"]
    wide = rel.pivot_table(index=["epoch", "space"], columns="sigma", values="value")
    wide.columns = [f"σ = {s:g}" for s in wide.columns]
    sec.tables.append(frame_table(wide, caption="A_σ / A_0 per checkpoint and label space."))
    fig = plot_blur(ctx.metrics, sizes=space_sizes(ctx.spaces, ctx.run.hierarchy.num_classes))
    if fig is not None:
        sec.figures.append(("blur", fig, "Accuracy, relative accuracy and relative gain against σ, one "
                                         "line per checkpoint (paper Fig. 17–18)."))
    return sec
