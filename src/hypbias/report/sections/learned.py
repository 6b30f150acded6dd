"""The report's learned-hierarchy section: the hierarchy clustered from the run's own statistics
(``hypbias hierarchy learn RUN_DIR --attach``), compared with the given one, and hypernym bias under
it (the paper's closing motivation for data-driven hierarchies)."""

from __future__ import annotations

import html
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from hypbias.analysis.findings import learned_finding
from hypbias.analysis.learned_hierarchy import (
    HIERARCHY_FILE,
    LearnedFrom,
    bias_comparison,
    bias_gap,
    read_learned,
)
from hypbias.report.html import Section
from hypbias.report.sections import RunContext, register_section


def _cell(value: Any, sd: float | None = None) -> str:
    if value is None:
        return "never"
    return f"{value:.1f}" + ("" if sd is None else f" ± {sd:.1f}")


def learned_table(analysis: dict[str, Any]) -> str:
    """One row per compared cut: ARI and, for the run's hypernym spaces, τ under both trees."""
    taus = {row["space"]: row for row in analysis["convergence"]["spaces"]}
    head = ("space", "groups", "ARI", "learned group sizes", "τ S given", "τ R given",
            "τ S learned", "τ R learned", "τ(R) − τ(S) given", "τ(R) − τ(S) learned",
            "bias under the learned tree")
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for cut in analysis["cuts"]:
        t = taus.get(cut["space"])
        sizes = ", ".join(map(str, sorted(cut["learned_sizes"], reverse=True)))
        cells = [html.escape(cut["space"]), str(cut["groups"]), f"{cut['ari']:.2f}", sizes]
        if t is None:
            cells += [""] * 7
        else:
            cells += [_cell(t["given"]), _cell(t["random_given"], t["random_given_sd"]),
                      _cell(t["learned"]), _cell(t["random_learned"], t["random_learned_sd"]),
                      _cell(bias_gap(t["given"], t["random_given"])),
                      _cell(bias_gap(t["learned"], t["random_learned"])), bias_comparison(t)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    rows.append("</table>")
    return "".join(rows)


def plot_learned(analysis: dict[str, Any]) -> Figure:
    """(a) τ_q against the number of groups for S given, S learned and their random draws (mean ±
    sd); (b) ARI of the learned cut against the given one, with the CCC in the title."""
    conv = analysis["convergence"]
    fig, (ax_tau, ax_ari) = plt.subplots(1, 2, figsize=(10, 3.8))
    rows = conv["spaces"]
    nan = float("nan")
    # the learned points are shifted right a little so that equal values stay visible
    dodge = 0.01 * max(r["groups"] for r in rows)
    for kind, color, marker, shift in (("given", "tab:blue", "o", -dodge),
                                       ("learned", "tab:orange", "s", dodge)):
        groups = [r["groups"] + shift for r in rows]
        ax_tau.plot(groups, [nan if r[kind] is None else r[kind] for r in rows], color=color,
                    marker=marker, lw=2, label=f"S {kind}")
        ax_tau.errorbar(groups, [nan if r[f"random_{kind}"] is None else r[f"random_{kind}"]
                                 for r in rows],
                        yerr=[r[f"random_{kind}_sd"] or 0.0 for r in rows], color=color,
                        marker=marker, mfc="white", ls="--", capsize=3,
                        label=f"R {kind} ({conv['draws']} draws, mean ± sd)")
    if conv["H"] is not None:
        ax_tau.axhline(conv["H"], color="black", lw=1, ls=":", label="H")
    ax_tau.set_xlabel("number of groups")
    ax_tau.set_ylabel(f"τ{conv['q']:g} (epoch)")
    ax_tau.set_title(f"Convergence on {analysis['learned_from']['evaluated']}")
    ax_tau.legend(fontsize=7)
    cuts = analysis["cuts"]
    ax_ari.plot([c["groups"] for c in cuts], [c["ari"] for c in cuts], color="tab:green",
                marker="o", lw=2)
    for c in cuts:
        ax_ari.annotate(c["space"], (c["groups"], c["ari"]), textcoords="offset points",
                        xytext=(3, 4), fontsize=7)
    ax_ari.set_ylim(min(0.0, *(c["ari"] for c in cuts)) - 0.05, 1.05)
    ax_ari.set_xlabel("number of groups")
    ax_ari.set_ylabel("adjusted Rand index")
    ax_ari.set_title(f"Learned vs given cuts (CCC {analysis['ccc']:.2f})")
    fig.tight_layout()
    return fig


@register_section(40)
def learned_hierarchy(ctx: RunContext) -> Section | None:
    analysis = read_learned(ctx.run)
    if analysis is None:
        return None
    origin = analysis["learned_from"]
    sec = Section("Learned hierarchy: compared with the given one, and hypernym bias under it")
    sec.paragraphs.append(learned_finding(analysis))
    circular = ("the same split, so the comparison favours the learned tree" if origin["circular"]
                else "another split, so the learned tree is not fitted to the errors it is "
                     "evaluated on")
    sec.paragraphs.append(
        f"{HIERARCHY_FILE} was clustered from {LearnedFrom.from_dict(origin).describe()}; τ is "
        f"measured on the {origin['evaluated']} split's confusion matrices: {circular}. The CCC "
        "correlates the two trees' LCA heights over class pairs. The learned tree is binary; its n "
        "groups lie below its n − 1 highest merges, and the adjusted Rand index compares them with "
        "the given partition of n groups (1 = the same, 0 = chance). The learned spaces' random "
        "draws keep their group sizes."
    )
    sec.tables.append(learned_table(analysis))
    sec.figures.append(("learned_hierarchy", plot_learned(analysis),
                        "Left: epoch of convergence against the number of groups under the given and "
                        "the learned hierarchy, random draws as mean ± sd (paper Fig. 4). Right: "
                        "agreement of the learned cuts with the given ones."))
    return sec
