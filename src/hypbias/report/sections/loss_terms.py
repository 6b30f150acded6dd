"""The report's section on the terms of the multi-level loss, present when the run logged them
(``loss_term`` rows of a run trained with ``loss: multilevel``)."""

from __future__ import annotations

from hypbias.analysis.findings import loss_terms_finding
from hypbias.report.figures import space_sizes
from hypbias.report.figures_loss import loss_term_table, plot_loss_terms
from hypbias.report.html import Section
from hypbias.report.sections import RunContext, register_section


@register_section(85)
def loss_terms(ctx: RunContext) -> Section | None:
    if not ctx.has_metric("loss_term"):
        return None
    table = loss_term_table(ctx.metrics)
    sec = Section("Terms of the multi-level loss")
    finding = loss_terms_finding(table)
    sec.paragraphs = [finding] if finding else []
    sec.paragraphs.append(
        "The multi-level loss adds to the fine cross-entropy (H) one term per hypernym space: the "
        "weighted negative log of the summed probability of the true class's superclass. Each "
        "curve is a term's mean over the epoch's training batches, weighted as in the loss, so the "
        "terms sum to the training loss. The paper (§5) remarks that such coarse terms matter "
        "mostly early in training, when the network learns superclasses first.")
    fig = plot_loss_terms(ctx.metrics, sizes=space_sizes(ctx.spaces, ctx.run.hierarchy.num_classes))
    sec.figures.append(("loss_terms", fig, "Each weighted term of the training loss per epoch "
                                           "(left) and its share of the loss (right)."))
    return sec
