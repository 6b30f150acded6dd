"""Exponential moving average of a model's weights (App. B.1, used for MobileNet-V3).

After every optimiser step, ``update(model)`` sets ``θ_ema ← d · θ_ema + (1 − d) · θ`` for every
floating-point parameter and buffer: BatchNorm running statistics are averaged with the weights, so
the averaged weights come with matching normalisation statistics. Integer buffers (BatchNorm's
``num_batches_tracked``) are copied. The average is PyTorch's own
``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn(d)`` (``use_buffers=True``),
started from the model's weights at construction; it is evaluated by swapping it into the model
(:meth:`ModelEMA.swapped`), so hooks and wrappers on the model see the averaged weights.

Pass the unwrapped model (not a ``DistributedDataParallel`` or compiled wrapper) so that the names
stay the same however the model is run, and move or convert it (device, dtype, memory format)
before the average is made: the model's tensors are paired with the average's once.

:meth:`ModelEMA.update` applies the AveragedModel's averaging function to the same tensor pairs as
``AveragedModel.update_parameters`` does, one fused call per dtype, but without that method's
counter arithmetic: the counter lives on the host and is copied to the device at every call, a
host-device synchronisation per optimiser step on CUDA. The update never waits for the device.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def _ema_or_copy(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor], Any], None]:
    """``get_ema_multi_avg_fn(decay)`` for floating-point tensors; integer ones are copied.

    AveragedModel calls it once per (device, dtype) group, so each list has one dtype. (The
    torch function would blend integer counters and truncate the result.)
    """
    ema = get_ema_multi_avg_fn(decay)

    def average(averaged: list[torch.Tensor], current: list[torch.Tensor], count: Any) -> None:
        if averaged[0].is_floating_point():
            ema(averaged, current, count)
        else:
            torch._foreach_copy_(averaged, current)

    return average


def _names(model: nn.Module) -> list[str]:
    """Parameter then buffer names, in the order AveragedModel pairs them."""
    return [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]


class ModelEMA:
    """Moving average of a model's parameters and buffers, kept on the model's device.

    Parameters
    ----------
    model : the module to average; the average starts from its current weights
    decay : d in [0, 1), the weight of the old average at each update

    Attributes
    ----------
    averaged : the ``torch.optim.swa_utils.AveragedModel`` holding the average
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not (isinstance(decay, numbers.Real) and not isinstance(decay, bool)
                and 0.0 <= decay < 1.0):
            raise ValueError("The 'decay' parameter of ModelEMA must be a float in [0, 1). "
                             f"Got {decay!r} instead.")
        self.decay = float(decay)
        self.averaged = AveragedModel(model, multi_avg_fn=_ema_or_copy(self.decay), use_buffers=True)
        for p in self.averaged.parameters():
            p.requires_grad_(False)
            p.grad = None
        self.averaged.update_parameters(model)  # the first call copies: the average starts at θ_0
        self._names = _names(model)
        self._model = model
        self._groups = self._pair(model)

    @property
    def shadow(self) -> dict[str, torch.Tensor]:
        """The averaged ``state_dict`` (tensors shared with :attr:`averaged`)."""
        return self.averaged.module.state_dict()

    @property
    def num_updates(self) -> int:
        """Updates folded in since construction."""
        return int(self.averaged.n_averaged) - 1

    def _pair(self, model: nn.Module) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
        """The average's tensors and ``model``'s, paired as AveragedModel pairs them and grouped by
        the average's (device, dtype): one averaging call per group. A ValueError when the model's
        parameter and buffer names are not the average's."""
        names = _names(model)
        if names != self._names:
            differ = sorted(set(names) ^ set(self._names)) or names
            raise ValueError(f"ModelEMA: the model's state_dict keys differ from the average's: "
                             f"{differ[:5]}")
        averaged = [*self.averaged.module.parameters(), *self.averaged.module.buffers()]
        current = [*model.parameters(), *model.buffers()]
        groups: dict[tuple[torch.device, torch.dtype], tuple[list, list]] = {}
        for avg, cur in zip(averaged, current, strict=True):
            pair = groups.setdefault((avg.device, avg.dtype), ([], []))
            pair[0].append(avg)
            pair[1].append(cur)
        return list(groups.values())

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average (call after each optimiser step).

        The tensors of the model the average was made from are paired once, at construction;
        another module is checked and paired when first passed.
        """
        if model is not self._model:
            self._groups, self._model = self._pair(model), model
        for avg_list, cur_list in self._groups:
            self.averaged.multi_avg_fn(avg_list, cur_list, None)
        self.averaged.n_averaged += 1

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
        """Decay, update count and averaged tensors (``shadow``: a state_dict), for checkpoints."""
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": dict(self.shadow)}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; tensors are copied onto the average's devices."""
        if state["shadow"].keys() != self.shadow.keys():
            raise ValueError("ModelEMA.load_state_dict: the saved keys differ from the model's")
        self.decay = float(state["decay"])
        self.averaged.multi_avg_fn = _ema_or_copy(self.decay)
        self.averaged.module.load_state_dict(state["shadow"])
        self.averaged.n_averaged.fill_(int(state["num_updates"]) + 1)
