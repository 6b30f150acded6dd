"""The :class:`Accumulator` base: declared state, and every lifecycle method written once.

A subclass declares its state tensors as a class attribute and implements ``update`` and
``compute``; ``reset``, ``merge``, ``all_reduce``, ``state_dict``/``load_state_dict``, ``to`` and
pickling follow from the declaration (the habit of torchmetrics' ``add_state``)::

    class Count(Accumulator):
        states = (State("hits", ("num_classes",), torch.int64),)   # reduce="sum" by default

        def __init__(self, num_classes):
            self.num_classes = num_classes
            super().__init__()                                      # allocates the state

A shape entry is an int or the name of an int attribute set before ``super().__init__()``. Every
state is allocated at :meth:`Accumulator.reset`, never lazily, so a process that saw no batch
takes part in :meth:`Accumulator.all_reduce` with its zeros (or its declared ``initial`` value).

Reductions: ``"sum"``, ``"max"`` and ``"min"`` merge element-wise; ``"custom"`` states are merged
by the subclass's :meth:`Accumulator.merge_custom`, for state that is not a plain sum (means and
centred moments). Across processes, plain states are reduced in place (one collective per
reduction and dtype); an accumulator with custom states gathers every process's state and merges
them in rank order, so that every process ends with the same bits.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.distributed as dist

from hypbias.metrics._inputs import as_tensor

REDUCTIONS = ("sum", "max", "min", "custom")


@dataclass(frozen=True)
class State:
    """Declaration of one state tensor of an :class:`Accumulator`.

    Attributes
    ----------
    name : str
        Attribute name of the tensor, and its key in ``state_dict()``.
    shape : tuple of int or str
        Each entry an int or the name of an int attribute of the accumulator (e.g. ``"num_classes"``).
    dtype : torch.dtype
    reduce : str
        ``"sum"``, ``"max"``, ``"min"`` or ``"custom"`` (see the module docstring).
    initial : float
        Value after :meth:`Accumulator.reset` (0; e.g. -inf for a ``"max"`` state).
    """

    name: str
    shape: tuple[int | str, ...]
    dtype: torch.dtype = torch.float64
    reduce: str = "sum"
    initial: float = 0.0

    def __post_init__(self) -> None:
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"State {self.name!r}: reduce must be one of {REDUCTIONS}. "
                             f"Got {self.reduce!r} instead.")


_ELEMENTWISE = {"sum": torch.add, "max": torch.maximum, "min": torch.minimum}


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _collective_device() -> torch.device:
    """Where collective buffers live: the current CUDA device under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class Accumulator:
    """Base class of streaming metrics whose state merges exactly across batches and processes.

    Subclasses set ``states`` (a tuple of :class:`State`) and, optionally, ``buffers`` (names of
    tensors that are not reduced, such as a distance matrix, but move with the state), set the
    attributes the shapes name, then call ``super().__init__(device)``. Their ``update`` begins with
    :meth:`_device_for` (the state follows the first batch's device unless a device was given or
    :meth:`to` was called); their :meth:`signature` says which accumulators can merge. Those the
    tracker feeds split ``update`` into its checks and ``_add``, the unchecked rest, which the
    tracker calls with batches it has validated once.

    Parameters
    ----------
    device : torch.device or str, optional
        Where the state lives. Default: the device of the first buffer (the CPU without buffers)
        until the first batch, then that batch's device.
    """

    states: ClassVar[tuple[State, ...]] = ()
    buffers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, device: torch.device | str | None = None) -> None:
        self._follow = device is None
        if device is None:  # where the buffers are, until the first batch
            device = getattr(self, self.buffers[0]).device if self.buffers else "cpu"
        self._device = torch.device(device)
        for name in self.buffers:
            setattr(self, name, getattr(self, name).to(self._device))
        self.reset()

    # ------------------------------------------------------------------ discovery
    @classmethod
    def registered(cls) -> list[type[Accumulator]]:
        """Every concrete subclass defined so far (imported modules only), depth first."""
        found: list[type[Accumulator]] = []
        for sub in cls.__subclasses__():
            if sub.states:
                found.append(sub)
            found.extend(sub.registered())
        return found

    # ------------------------------------------------------------------ to implement
    def update(self, *args: Any, **kwargs: Any) -> None:
        """Add a batch."""
        raise NotImplementedError

    def compute(self) -> Any:
        """The metric from the current state."""
        raise NotImplementedError

    def signature(self) -> dict[str, Any]:
        """Settings that must agree for two accumulators to merge (e.g. ``{"num_classes": C}``)."""
        return {}

    def merge_custom(self, other: Accumulator) -> None:
        """Merge the ``"custom"`` states of ``other`` into this one's.

        Called by :meth:`merge` before the plain states are combined, so both accumulators still
        hold their own plain states (e.g. the counts that weight a merge of means).
        """
        raise NotImplementedError(f"{type(self).__name__} declares custom states but no merge_custom")

    # ------------------------------------------------------------------ state
    def state_shape(self, state: State) -> tuple[int, ...]:
        """The shape of ``state`` for this accumulator's settings."""
        return tuple(d if isinstance(d, int) else int(getattr(self, d)) for d in state.shape)

    def reset(self) -> None:
        """Forget every batch: each state back to its initial value (the device is kept)."""
        for s in self.states:
            setattr(self, s.name, torch.full(self.state_shape(s), s.initial, dtype=s.dtype,
                                             device=self._device))
        self._fresh = True

    @property
    def device(self) -> torch.device:
        """The device of the state."""
        return self._device

    def to(self, device: torch.device | str) -> Accumulator:
        """Move the state (and buffers) to ``device``; later batches are moved there. Returns ``self``."""
        self._follow = False
        self._move(torch.device(device))
        return self

    def _move(self, device: torch.device) -> None:
        self._device = device
        for name in (*(s.name for s in self.states), *self.buffers):
            setattr(self, name, getattr(self, name).to(device))

    def _device_for(self, device: torch.device) -> torch.device:
        """Called by ``update`` with the batch's device: the device to accumulate on.

        Before the first batch (and unless pinned by ``device=`` or :meth:`to`), the state moves to
        the batch's device.
        """
        if self._fresh and self._follow and device != self._device:
            self._move(device)
        self._fresh = False
        return self._device

    # ------------------------------------------------------------------ merging
    def _check_mergeable(self, other: Any) -> None:
        mine = self.signature()
        if type(other) is type(self) and other.signature() == mine:
            return
        want = ", ".join(f"{k}={v!r}" for k, v in mine.items())
        got = (", ".join(f"{k}={v!r}" for k, v in other.signature().items())
               if type(other) is type(self) else f"a {type(other).__name__}")
        name = type(self).__name__
        raise ValueError(
            f"The 'other' parameter of {name}.merge must be a {name}"
            f"{' with ' + want if want else ''}. Got {got} instead."
        )

    def merge(self, other: Accumulator) -> Accumulator:
        """Add the batches of ``other`` (another shard of the same data) into this one; returns self."""
        self._check_mergeable(other)
        if not other._fresh:
            self._device_for(other.device)
        if any(s.reduce == "custom" for s in self.states):
            self.merge_custom(other)
        for s in self.states:
            if s.reduce != "custom":
                combine = _ELEMENTWISE[s.reduce]
                setattr(self, s.name, combine(getattr(self, s.name),
                                              getattr(other, s.name).to(self._device)))
        return self

    def all_reduce(self) -> None:
        """Combine the state over all ``torch.distributed`` processes; a no-op without a process group.

        Every process must call it, also those that saw no batch. Buffers live on the process
        group's device (the current CUDA device under NCCL, the CPU under gloo); the state stays on
        its own device.
        """
        if not _distributed():
            return
        if any(s.reduce == "custom" for s in self.states):
            self._gather_and_merge(_collective_device())
        else:
            self._reduce_in_place(_collective_device())
        self._fresh = False

    def _groups(self, states: tuple[State, ...]) -> dict[tuple[str, torch.dtype], list[State]]:
        groups: dict[tuple[str, torch.dtype], list[State]] = {}
        for s in states:
            groups.setdefault((s.reduce, s.dtype), []).append(s)
        return groups

    def _flat(self, states: list[State], device: torch.device) -> torch.Tensor:
        return torch.cat([getattr(self, s.name).reshape(-1).to(device) for s in states])

    def _unflatten(self, states: list[State], flat: torch.Tensor) -> dict[str, torch.Tensor]:
        out, start = {}, 0
        for s in states:
            shape = self.state_shape(s)
            size = int(np.prod(shape, dtype=np.int64))
            out[s.name] = flat[start:start + size].view(shape).to(self._device)
            start += size
        return out

    def _reduce_in_place(self, device: torch.device) -> None:
        ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
        for (reduce, _), states in self._groups(self.states).items():
            flat = self._flat(states, device)
            dist.all_reduce(flat, op=ops[reduce])
            for name, value in self._unflatten(states, flat).items():
                setattr(self, name, value)

    def _gather_and_merge(self, device: torch.device) -> None:
        world = dist.get_world_size()
        peers = [copy.copy(self) for _ in range(world)]
        for states in self._groups(self.states).values():
            flat = self._flat(states, device)
            gathered = [torch.empty_like(flat) for _ in range(world)]
            dist.all_gather(gathered, flat)
            for peer, part in zip(peers, gathered, strict=True):
                for name, value in peer._unflatten(states, part).items():
                    setattr(peer, name, value)
        for name in (s.name for s in self.states):
            setattr(self, name, getattr(peers[0], name))
        for peer in peers[1:]:
            self.merge(peer)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every declared state as a CPU tensor (a copy), keyed by its name."""
        return {s.name: getattr(self, s.name).detach().cpu().clone() for s in self.states}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the state by ``state`` (as written by :meth:`state_dict`; arrays accepted).

        Keys must be exactly the declared names and shapes must match; values are converted to the
        declared dtypes and moved to the state's device.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        names = [s.name for s in self.states]
        missing = [n for n in names if n not in state]
        unknown = sorted(set(state) - set(names))
        if missing or unknown:
            problem = f"lacks the key '{missing[0]}'" if missing else f"has the unknown key '{unknown[0]}'"
            raise ValueError(f"The 'state' parameter of {owner} {problem}. "
                             f"Got keys {sorted(state)} instead.")
        loaded = {}
        for s in self.states:
            value = as_tensor(state[s.name], s.name, owner)
            shape = self.state_shape(s)
            if tuple(value.shape) != shape:
                raise ValueError(f"The '{s.name}' entry of {owner} must have shape {shape}. "
                                 f"Got {tuple(value.shape)} instead.")
            loaded[s.name] = value.detach().to(self._device, s.dtype).clone()
        for name, value in loaded.items():
            setattr(self, name, value)
        self._fresh = False
