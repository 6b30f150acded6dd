"""Hooks into the tools researchers already train with; each an optional extra.

* :mod:`hypbias.integrations.lightning`: ``HypbiasCallback`` for PyTorch Lightning (``[lightning]``);
* :mod:`hypbias.integrations.transformers`: ``HypbiasCallback`` for the Hugging Face ``Trainer``
  (``[transformers]``);
* :mod:`hypbias.integrations.checkpoints`: a series of state dicts saved by another training script.

Both callbacks measure every epoch, epoch 0 (before training) included, with a
:class:`~hypbias.train.tracker.Tracker`, and write the run directory of ``hypbias run`` with its
report when training ends.
"""
