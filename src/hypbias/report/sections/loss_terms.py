"""The report's section on the terms of the multi-level loss, present when the run logged them
(``loss_term`` rows of a run trained with ``loss: multilevel``)."""

from __future__ import annotations

from hypbias.labelspace.spaceset import FINE
from hypbias.report.figures import space_sizes
from hypbias.report.figures_loss import loss_term_table, plot_loss_terms
from hypbias.report.html import Section
from hypbias.report.sections import RunContext, register_section


def _shares(table, epoch: int) -> str:
    row = table.loc[epoch]
    coarse = row.drop(FINE, errors="ignore").sum()
    return f"{100 * coarse / row.sum():.0f}% at epoch {epoch}"


@register_section(85)
def loss_terms(ctx: RunContext) -> Section | None:
    if not ctx.has_metric("loss_term"):
        return None
    table = loss_term_table(ctx.metrics)
    first, last = int(table.index.min()), int(table.index.max())
    sec = Section("Terms of the multi-level loss")
    sec.paragraphs = [
        f"The coarse terms make up {_shares(table, first)} and {_shares(table, last)} of the "
        "training loss.",
        "The multi-level loss adds to the fine cross-entropy (H) one term per hypernym space: the "
        "weighted negative log of the summed probability of the true class's superclass. Each "
        "curve is a term's mean over the epoch's training batches, weighted as in the loss, so the "
        "terms sum to the training loss. The paper (§5) remarks that such coarse terms matter "
        "mostly early in training, when the network learns superclasses first.",
    ]
    fig = plot_loss_terms(ctx.metrics, sizes=space_sizes(ctx.spaces, ctx.run.hierarchy.num_classes))
    sec.figures.append(("loss_terms", fig, "Each weighted term of the training loss per epoch "
                                           "(left) and its share of the loss (right)."))
    return sec
