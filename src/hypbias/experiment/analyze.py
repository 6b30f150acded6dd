"""``hypbias analyze RUN_DIR``: the layer-wise manifold analysis of a run's saved checkpoints.

The tracker's manifold component (:class:`ManifoldTracker`) measures every checkpoint, on the
samples it draws from the run's seed during training, so the rows agree with those tracked then,
and the 2-D pictures of the same samples are drawn at every checkpoint (``manifold.npz``). With
``probe_types`` the last checkpoint's layers are also probed with few-shot and trained probes
(Fig. 14).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from hypbias.analysis.metric_names import split_metric
from hypbias.analysis.probe_comparison import probe_comparison
from hypbias.analysis.sampling import probe_split
from hypbias.data.base import split_labels
from hypbias.errors import ConfigError, DataError
from hypbias.experiment.base import component_context, open_run, replace_rows
from hypbias.metrics.rows import MetricRow
from hypbias.rundir import RunDir
from hypbias.train.checkpoint import check_config, checkpoints, load_evaluated_weights, read_checkpoint
from hypbias.train.components import ComponentContext
from hypbias.train.components.manifold import ManifoldInputs, ManifoldTracker, labelled, manifold_inputs
from hypbias.train.config import apply_overrides
from hypbias.train.config.files import parse_override
from hypbias.train.head import find_head
from hypbias.train.loop import build_bundle, build_model

MANIFOLD_METRICS = ("ccc_cover", "ccc_class_means", "ccc_direct", "self_cover", "mutual_cover",
                    "probe_accuracy")
"""Base names of the rows ``hypbias analyze`` replaces, with their parameterised forms
(``self_cover@space=raw``, ``probe_accuracy@trained=S4``)."""

PROBE_TYPES = "probe"
"""The parameter of Fig. 14's rows (``probe_accuracy@probe=<kind>``), replaced only when measured."""

ANALYSIS_SECTIONS = ("manifold",)
"""The sections ``hypbias analyze --set`` may change: the only ones the analysis reads that do not
describe how the checkpoints were made."""


def analyzed_metric(name: str, probe_types: bool) -> bool:
    """Whether ``hypbias analyze`` replaces rows of metric ``name``: the manifold rows, and Fig. 14's
    probe-type rows only when it measures them again (``probe_types``)."""
    base, params = split_metric(name)
    return base in MANIFOLD_METRICS and (probe_types or PROBE_TYPES not in params)


def analyze_checkpoints(run_dir: str | Path, overrides: Sequence[str] = (), *,
                        progress: bool = True, report: bool = True,
                        probe_types: int | None = None) -> RunDir:
    """Layer-wise manifold analysis of every saved checkpoint of a run (``hypbias analyze``).

    ``overrides`` may change ``manifold.*`` only; a checkpoint made with another config than the
    run's is refused. Earlier manifold rows are replaced, and ``manifold.npz`` with the pictures
    of every checkpoint; the rest of ``metrics.csv`` is kept and the accuracy metrics are
    re-derived from ``confusion.npz``. ``probe_types``: examples per class of the train split that
    Fig. 14's trained probes are fitted on, at the last checkpoint (None: no such probes).
    """
    from tqdm.auto import tqdm

    _check_overrides(overrides)
    run, config = open_run(run_dir)
    analysed = apply_overrides(config, overrides, source=str(run.file("config.yaml")))
    found = checkpoints(run.checkpoints)
    if not found:
        raise DataError(f"{run.checkpoints}: no epoch_XXX.pt checkpoints to analyse "
                        "(train the run with --set train.save_every=K)")
    bundle = build_bundle(analysed)
    ctx = component_context(analysed, bundle, run.spaces, progress)
    mf = analysed.components["manifold"]
    inputs = manifold_inputs(mf, ctx)
    model = build_model(analysed.model, bundle, analysed.origins)
    tracker = ManifoldTracker(mf, ctx, inputs, epochs=set())  # measures each checkpoint it is given
    tracker.bind(model, find_head(model)[1])
    rows: list[MetricRow] = []
    for path in tqdm(found, desc="checkpoints", disable=not progress):
        payload = read_checkpoint(path)
        check_config(payload, path, config)
        epoch = load_evaluated_weights(payload, model)
        rows += tracker.end_epoch(epoch, model)
    if probe_types is not None:
        rows += probe_type_rows(model, tracker.layers, inputs, ctx, probe_types, epoch,
                                few_k=mf.probe_k)
    replace_rows(run, config, lambda name: analyzed_metric(name, probe_types is not None), rows)
    run.write_npz("manifold.npz", tracker.artifacts())
    run.write_json("analysis.json", {"layers": tracker.layers, "pictures": tracker.picture_layers,
                                     "checkpoints": [p.name for p in found],
                                     "probe_types_per_class": probe_types,
                                     "settings": inputs.settings.as_dict(), "manifold": mf.as_dict()})
    if report:
        from hypbias.report import write_report

        write_report(run)
    return run


def _check_overrides(overrides: Sequence[str]) -> None:
    for item in overrides:
        dotted, _ = parse_override(item)
        if dotted.split(".")[0] not in ANALYSIS_SECTIONS:
            raise ConfigError(f"--set {item}: analyze reads only the manifold.* settings; the others "
                              "describe how the checkpoints were made")


def probe_type_rows(model: torch.nn.Module, layers: list[str], inputs: ManifoldInputs,
                    ctx: ComponentContext, per_class: int, epoch: int, *,
                    few_k: int = 10) -> list[MetricRow]:
    """Fig. 14 on the loaded checkpoint: few-shot probes on the manifold's probe sample of the val
    split (``few_k`` per class, drawn as the tracker draws it) against probes fitted on
    ``per_class`` train examples per class, scored on the rest of the val split
    (:func:`probe_comparison`)."""
    bundle, seed, c = ctx.bundle, ctx.seed, ctx.num_classes
    if inputs.probe_train is None or inputs.probe_test is None:
        few, test = probe_split(split_labels(bundle.val), k=few_k, seed=seed, num_classes=c,
                                allow_fewer=True)
        few_x, test_x = labelled(bundle.val, few), labelled(bundle.val, test)
    else:
        few_x, test_x = inputs.probe_train, inputs.probe_test
    many, _ = probe_split(split_labels(bundle.train), k=per_class, seed=seed, num_classes=c,
                          allow_fewer=True)
    return probe_comparison(model, layers, labelled(bundle.train, many), few_x, test_x,
                            inputs.spaces, c, epoch=epoch, token=inputs.settings.token,
                            batch_size=inputs.settings.batch_size)


__all__ = ["ANALYSIS_SECTIONS", "MANIFOLD_METRICS", "analyze_checkpoints", "analyzed_metric",
           "probe_type_rows"]
