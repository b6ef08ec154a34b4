"""Tensors pruned with ``torch.nn.utils.prune``: their full size and what their masks keep.

``prune`` replaces a parameter ``weight`` by ``weight_orig`` (a Parameter, full size) and a
buffer ``weight_mask``, and recomputes ``weight = weight_orig * weight_mask`` in a forward
pre-hook. ``parameters()`` therefore still counts every element; the effective count is the
number of non-zero mask entries. Finding the pruned tensors reads only the hooks; counting the
kept entries reads the mask's values, which is skipped on the ``meta`` device (no values there).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import compress
from operator import attrgetter

import torch
from torch.nn.utils.prune import BasePruningMethod

from .walk import Tree

__all__ = ["Pruned", "pruned_tensors"]

_PRE_HOOKS = attrgetter("_forward_pre_hooks")


@dataclass(frozen=True, slots=True)
class Pruned:
    """One pruned tensor: ``node`` and ``name`` (``weight``), its elements and the mask's non-zero entries."""

    node: int
    name: str
    params: int
    kept: int | None  # None where the mask has no values to read (meta device)


def pruned_tensors(tree: Tree, nodes: Iterable[int] | None = None) -> list[Pruned]:
    """Every tensor of ``tree`` under a ``torch.nn.utils.prune`` method, in walk order.

    ``nodes``: the only nodes that can hold one, in walk order (a pruned tensor ``weight`` is kept as
    the parameter ``weight_orig``: the tally names the nodes with such a parameter on its way, so
    that the hooks of the others are never read); ``None``: every node.
    """
    out: list[Pruned] = []
    candidates = range(len(tree)) if nodes is None else nodes
    hooked = compress(candidates, map(_PRE_HOOKS, map(tree.modules.__getitem__, candidates)))
    for i in hooked:
        module = tree.modules[i]
        for hook in module._forward_pre_hooks.values():
            if not isinstance(hook, BasePruningMethod):
                continue
            name = hook._tensor_name
            orig = module._parameters.get(f"{name}_orig")
            mask = module._buffers.get(f"{name}_mask")
            if orig is None or mask is None:
                continue
            kept = None
            if not mask.is_meta:
                with torch.no_grad():
                    kept = int(torch.count_nonzero(mask))
            out.append(Pruned(i, name, orig.numel(), kept))
    return out
