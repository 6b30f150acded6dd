"""Experiments, one module per command: ``hypbias run`` (:mod:`.run`: train, analyse, report),
``hypbias analyze`` (:mod:`.analyze`: the manifold analysis of saved checkpoints),
``hypbias blur`` (:mod:`.blur`: the frequency analysis of saved checkpoints) and
``hypbias analyze-checkpoints`` (:mod:`.series`: checkpoints trained elsewhere); :mod:`.base` holds
what they share."""

from hypbias.experiment.analyze import analyze_checkpoints
from hypbias.experiment.base import component_context, open_run, replace_rows
from hypbias.experiment.blur import blur_checkpoints
from hypbias.experiment.run import config_text, prepare_run, run_experiment

__all__ = ["analyze_checkpoints", "blur_checkpoints", "component_context", "config_text",
           "open_run", "prepare_run", "replace_rows", "run_experiment"]
