"""Iterative traversal of a module tree.

``nn.Module.named_modules`` recurses (a generator per level) and fails near
1,000 levels; this walk keeps its own stack, so depth is bounded only by
memory. A module registered under two paths, or in a cycle, is visited once,
at the first path in registration order; the other paths are kept as aliases.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["Alias", "Tree", "unique_parameters", "unwrap", "walk"]


def unwrap(module: nn.Module) -> tuple[str, nn.Module] | None:
    """(label, inner module) when ``module`` only wraps another under a new name, else None.

    ``torch.compile``'s ``OptimizedModule`` (``_orig_mod.``), ``nn.DataParallel`` and
    ``DistributedDataParallel`` (``module.``) add a prefix and nothing else.
    """
    if isinstance(module, nn.DataParallel | DistributedDataParallel):
        return type(module).__name__, module.module
    # torch._dynamo is imported on first use of torch.compile: before that no OptimizedModule exists.
    dynamo = sys.modules.get("torch._dynamo.eval_frame")
    if dynamo is not None and isinstance(module, dynamo.OptimizedModule):
        inner = module._orig_mod
        assert isinstance(inner, nn.Module)
        return "torch.compile (OptimizedModule)", inner
    return None


@dataclass(frozen=True, slots=True)
class Alias:
    """A second registration of an already visited module."""

    path: str
    parent: int  # index of the node that registers it
    target: int  # index of the node first visited for this module


@dataclass(frozen=True, slots=True)
class Tree:
    """Modules in pre-order. Node ``i``'s subtree is ``i .. end[i]-1``."""

    paths: list[str]
    modules: list[nn.Module]
    depths: list[int]
    parents: list[int]  # -1 for the root
    ends: list[int]
    aliases: list[Alias]
    wrappers: list[tuple[str, str]]  # (path, label) of each rename-only wrapper looked through

    def __len__(self) -> int:
        return len(self.paths)


def walk(root: nn.Module) -> Tree:
    """Visit ``root`` and every submodule once, in ``named_modules`` order."""
    paths: list[str] = []
    modules: list[nn.Module] = []
    depths: list[int] = []
    parents: list[int] = []
    aliases: list[Alias] = []
    wrappers: list[tuple[str, str]] = []
    index_of: dict[int, int] = {}
    stack: list[tuple[str, nn.Module, int, int]] = [("", root, 0, -1)]
    push, pop = stack.append, stack.pop
    wrapper_class: dict[type, bool] = {}
    while stack:
        path, module, depth, parent = pop()
        cls = type(module)
        is_wrapper = wrapper_class.get(cls)
        if is_wrapper is None:
            is_wrapper = wrapper_class[cls] = unwrap(module) is not None
        if is_wrapper:
            inner = unwrap(module)
            while inner is not None:  # seen through: the wrapped module takes the wrapper's place and path
                wrappers.append((path, inner[0]))
                module = inner[1]
                inner = unwrap(module)
        key = id(module)
        seen = index_of.get(key)
        if seen is not None:
            aliases.append(Alias(path, parent, seen))
            continue
        i = index_of[key] = len(paths)
        paths.append(path)
        modules.append(module)
        depths.append(depth)
        parents.append(parent)
        children = module._modules
        if children:
            prefix = path + "." if path else ""
            for name, child in reversed(children.items()):
                if child is not None:
                    push((prefix + name, child, depth + 1, i))
    # Pre-order: a subtree ends where its last descendant's subtree ends.
    ends = list(range(1, len(paths) + 1))
    for i in range(len(paths) - 1, 0, -1):
        if ends[i] > ends[parents[i]]:
            ends[parents[i]] = ends[i]
    return Tree(paths, modules, depths, parents, ends, aliases, wrappers)


def unique_parameters(tree: Tree) -> Iterator[tuple[str, str, torch.Tensor]]:
    """(module path, name, tensor) for every parameter, each tensor object once, in walk order."""
    seen: set[int] = set()
    for path, module in zip(tree.paths, tree.modules, strict=True):
        for name, p in module._parameters.items():
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                yield path, name, p
