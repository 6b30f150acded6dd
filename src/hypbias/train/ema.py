"""Exponential moving average of a model's weights (App. B.1, used for MobileNet-V3).

After every optimiser step, ``update(model)`` sets ``θ_ema ← d · θ_ema + (1 − d) · θ`` for every
floating-point entry of the model's ``state_dict``: parameters and BatchNorm running statistics
alike, so the averaged weights come with matching normalisation statistics. Integer buffers
(BatchNorm's ``num_batches_tracked``) are copied. The averaged weights are evaluated by swapping
them into the model (:meth:`ModelEMA.swapped`) rather than keeping a second model.

Pass the unwrapped model (not a ``DistributedDataParallel`` or compiled wrapper) so that the keys
stay the same however the model is run. The update launches a few fused kernels and never
synchronises with the device.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """Moving average of ``model.state_dict()``, kept on the model's device.

    Parameters
    ----------
    model : the module to average; the average starts from its current weights
    decay : d in [0, 1), the weight of the old average at each update
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not (isinstance(decay, numbers.Real) and not isinstance(decay, bool)
                and 0.0 <= decay < 1.0):
            raise ValueError("The 'decay' parameter of ModelEMA must be a float in [0, 1). "
                             f"Got {decay!r} instead.")
        self.decay = float(decay)
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.num_updates = 0

    def _split(self, model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                                  list[torch.Tensor], list[torch.Tensor]]:
        """(averaged, current) tensors that are floating point, then the same for the rest."""
        current = model.state_dict()
        if current.keys() != self.shadow.keys():
            missing = sorted(set(self.shadow) ^ set(current))
            raise ValueError(f"ModelEMA: the model's state_dict keys differ from the average's: "
                             f"{missing[:5]}")
        avg_f, cur_f, avg_o, cur_o = [], [], [], []
        for key, avg in self.shadow.items():
            if avg.is_floating_point():
                avg_f.append(avg)
                cur_f.append(current[key].detach())
            else:
                avg_o.append(avg)
                cur_o.append(current[key])
        return avg_f, cur_f, avg_o, cur_o

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average (call after each optimiser step)."""
        avg_f, cur_f, avg_o, cur_o = self._split(model)
        if avg_f:
            torch._foreach_lerp_(avg_f, cur_f, 1.0 - self.decay)
        for avg, cur in zip(avg_o, cur_o, strict=True):
            avg.copy_(cur)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's weights and buffers with the average."""
        current = model.state_dict()
        for key, avg in self.shadow.items():
            current[key].copy_(avg)

    @contextmanager
    def swapped(self, model: nn.Module) -> Iterator[nn.Module]:
        """Evaluate with the averaged weights inside the block; the model's own come back after.

        >>> model = nn.Linear(2, 1)
        >>> ema = ModelEMA(model, decay=0.9)
        >>> with ema.swapped(model):
        ...     pass  # evaluate here
        """
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                current = model.state_dict()
                for key, saved in backup.items():
                    current[key].copy_(saved)

    def state_dict(self) -> dict[str, Any]:
        """Decay, update count and averaged tensors, for checkpoints."""
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": dict(self.shadow)}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; tensors are copied onto the average's devices."""
        if state["shadow"].keys() != self.shadow.keys():
            raise ValueError("ModelEMA.load_state_dict: the saved keys differ from the model's")
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        for key, avg in self.shadow.items():
            avg.copy_(state["shadow"][key])
