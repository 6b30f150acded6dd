"""``torchrun`` support: process group set-up from the environment, DDP wrapping, reductions.

Everything here is a no-op in a single process, so the loop reads the same either way.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def setup() -> bool:
    """Join the process group that ``torchrun`` describes in the environment (once).

    NCCL when CUDA is available, gloo otherwise. Returns whether the run is distributed.
    """
    if active():
        return True
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend)
    return True


def teardown() -> None:
    if active():
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel`` around ``model`` (parameters broadcast from rank 0)."""
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def mean(value: float) -> float:
    """The mean of a Python float over processes."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64,
                     device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t)
    return float(t.item()) / world_size()


def barrier() -> None:
    if active():
        dist.barrier()
