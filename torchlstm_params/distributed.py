"""Sharded models: this rank's share of DTensor parameters, and an opt-in gather of every rank's.

FSDP2 (``fully_shard``) and tensor parallelism (``distribute_tensor``,
``parallelize_module``) turn parameters into DTensors: ``numel()`` and ``shape``
are global, so ``summarize`` already reports global counts and cross-checks
global shapes, identically on every rank, with no communication.
``local_figures`` adds this rank's elements and bytes (``to_local()``), still
without communication; ``gather_ranks`` is the one function here that talks
to other ranks (``all_gather_object``), and only when called.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .names import qualified
from .walk import Tree, unique_parameters, walk

__all__ = ["LocalFigures", "ShardedTensor", "gather_ranks", "local_figures", "local_figures_of"]


@dataclass(frozen=True, slots=True)
class ShardedTensor:
    """One DTensor parameter: where its pieces live.

    Attributes:
        name: the parameter's full name.
        placements: its placements (``Shard(dim=0)``, ``Replicate()``).
        global_shape: its shape across every rank.
        local_shape: this rank's piece.
    """

    name: str
    placements: str  # e.g. "Shard(dim=0)" or "Replicate()"
    global_shape: tuple[int, ...]
    local_shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LocalFigures:
    """What this rank holds of the model's unique parameters.

    Attributes:
        rank: this process's rank in the default process group.
        world_size: the number of ranks.
        device: the device of this rank's first parameter.
        local_params: elements held here (a DTensor's local shard; a plain tensor whole).
        local_bytes: bytes of those elements.
        sharded: every DTensor, with its global and local shapes and placements.
    """

    rank: int
    world_size: int
    device: str
    local_params: int  # DTensors: this rank's shard; plain tensors: all of them
    local_bytes: int
    sharded: tuple[ShardedTensor, ...]


def _dtensor_class() -> type | None:
    """torch's DTensor class if it has been imported, else None (then no tensor can be a DTensor).

    Never imported here: importing ``torch.distributed.tensor`` adds a warnings filter, and a
    library call must leave the caller's warnings filters as they were.
    """
    module = sys.modules.get("torch.distributed.tensor")
    found = getattr(module, "DTensor", None)
    return found if isinstance(found, type) else None


def local_figures(model: nn.Module) -> LocalFigures:
    """This rank's elements and bytes of every unique parameter, no collective call."""
    return local_figures_of(walk(model))


def local_figures_of(tree: Tree) -> LocalFigures:
    """:func:`local_figures` of an already walked tree."""
    dtensor = _dtensor_class()
    elements = size = 0
    sharded: list[ShardedTensor] = []
    devices: set[str] = set()
    for path, name, p in unique_parameters(tree):
        local: torch.Tensor = p
        if dtensor is not None and isinstance(p, dtensor):
            shard: Any = p
            local = shard.to_local()
            placements = ", ".join(repr(pl) for pl in shard.placements)
            sharded.append(ShardedTensor(qualified(path, name), placements, tuple(p.shape), tuple(local.shape)))
        try:
            k = local.numel()
        except ValueError:  # UninitializedParameter
            continue
        elements += k
        size += k * local.element_size()
        devices.add(str(local.device))
    ready = dist.is_available() and dist.is_initialized()
    rank = dist.get_rank() if ready else 0
    world = dist.get_world_size() if ready else 1
    return LocalFigures(rank, world, ", ".join(sorted(devices)) or "none", elements, size, tuple(sharded))


def gather_ranks(model: nn.Module, group: dist.ProcessGroup | None = None) -> tuple[LocalFigures, ...]:
    """Every rank's :class:`LocalFigures`, ordered by rank, on every rank (one ``all_gather_object``).

    A collective: every rank of ``group`` must call it. Without an initialised
    process group it returns this process's figures alone.
    """
    mine = local_figures(model)
    if not (dist.is_available() and dist.is_initialized()):
        return (mine,)
    everyone: list[LocalFigures | None] = [None] * dist.get_world_size(group)
    dist.all_gather_object(everyone, mine, group=group)
    return tuple(sorted((f for f in everyone if f is not None), key=lambda f: f.rank))
