"""Iterative traversal of a module tree.

``nn.Module.named_modules`` recurses (a generator per level) and fails near
1,000 levels; this walk keeps its own stack, so depth is bounded only by
memory. A module registered under two paths, or in a cycle, is visited once,
at the first path in registration order; the other paths are kept as aliases.

Paths are kept as names under parents and spelled out only when asked: a chain
``depth`` deep holds ``depth`` names, not ``depth²/2`` characters of dotted strings.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .names import qualified

__all__ = ["Alias", "Tree", "locate", "unique_parameters", "unwrap", "walk"]


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
    """A second registration of an already visited module: ``name`` under node ``parent``."""

    name: str
    parent: int  # index of the node that registers it
    target: int  # index of the node first visited for this module


@dataclass(frozen=True, slots=True)
class Tree:
    """Modules in pre-order. Node ``i``'s subtree is ``i .. end[i]-1``.

    A node's path is its ``names`` entry under its parent's path, spelled out only when asked
    (:meth:`path`): a chain ``depth`` deep holds ``depth`` names, not ``depth²/2`` characters.
    """

    names: list[str]  # each module's name under its parent ("" for the root)
    modules: list[nn.Module]
    parameters: list[dict[str, nn.Parameter | None]]  # each module's own registrations (its _parameters)
    buffers: list[dict[str, torch.Tensor | None]]  # and its _buffers, read while the walk holds the module
    depths: list[int]
    parents: list[int]  # -1 for the root
    ends: list[int]
    aliases: list[Alias]
    wrappers: list[tuple[str, str]]  # (path, label) of each rename-only wrapper looked through

    def __len__(self) -> int:
        return len(self.names)

    def path(self, i: int) -> str:
        """Node ``i``'s dotted path (``""`` for the root), spelled out now."""
        names, parents = self.names, self.parents
        parent = parents[i]
        if parent <= 0:  # the root, or a child of the root
            return names[i]
        if parents[parent] == 0:  # the common shallow case, without a list
            return f"{names[parent]}.{names[i]}"
        out = []
        while i > 0:
            out.append(names[i])
            i = parents[i]
        out.reverse()
        return ".".join(out)

    def alias_path(self, alias: Alias) -> str:
        """The path an alias registers its module at."""
        return qualified(self.path(alias.parent), alias.name)

    def locate(self, paths: Iterable[str]) -> dict[str, int]:
        """The node at each of ``paths`` that names a module of the tree (see :func:`locate`)."""
        return locate(self.names, self.parents, paths)

    def closest(self, path: str) -> list[str]:
        """Up to three module paths close to ``path`` (a typo's likely meaning), every path spelled out:
        for an error message, not a hot path."""
        return difflib.get_close_matches(path, [self.path(i) for i in range(len(self))], n=3, cutoff=0.5)


def locate(names: Sequence[str], parents: Sequence[int], paths: Iterable[str]) -> dict[str, int]:
    """In a tree given as each node's name under its parent (node 0 the root), the node at each of
    ``paths`` that names one; the others are left out.

    One pass over the tree, whatever its depth: paths are followed name by name, never spelled out.
    """
    wanted = set(paths)
    if not wanted:
        return {}
    child = {(parents[i], names[i]): i for i in range(1, len(names))}
    out: dict[str, int] = {}
    for path in wanted:
        i = 0
        for name in path.split(".") if path else ():
            i = child.get((i, name), -1)
            if i < 0:
                break
        if i >= 0:
            out[path] = i
    return out


def walk(root: nn.Module) -> Tree:
    """Visit ``root`` and every submodule once, in ``named_modules`` order."""
    names: list[str] = []
    modules: list[nn.Module] = []
    parameters: list[dict[str, nn.Parameter | None]] = []
    buffers: list[dict[str, torch.Tensor | None]] = []
    depths: list[int] = []
    parents: list[int] = []
    aliases: list[Alias] = []
    wrappers: list[tuple[str, str]] = []
    index_of: dict[int, int] = {}
    stack: list[tuple[str, nn.Module, int, int]] = [("", root, -1, 0)]
    push, pop = stack.append, stack.pop
    wrapper_class: dict[type, bool] = {}
    tree = Tree(names, modules, parameters, buffers, depths, parents, [], aliases, wrappers)
    while stack:
        name, module, parent, depth = pop()
        cls = type(module)
        is_wrapper = wrapper_class.get(cls)
        if is_wrapper is None:
            is_wrapper = wrapper_class[cls] = unwrap(module) is not None
        if is_wrapper:
            inner = unwrap(module)
            while inner is not None:  # seen through: the wrapped module takes the wrapper's place and path
                wrappers.append((qualified(tree.path(parent), name) if parent >= 0 else name, inner[0]))
                module = inner[1]
                inner = unwrap(module)
        i = len(names)
        seen = index_of.setdefault(id(module), i)
        if seen != i:
            aliases.append(Alias(name, parent, seen))
            continue
        names.append(name)
        modules.append(module)
        parameters.append(module._parameters)
        buffers.append(module._buffers)
        depths.append(depth)
        parents.append(parent)
        children = module._modules
        if children:
            for child_name, child in reversed(children.items()):
                if child is not None:
                    push((child_name, child, i, depth + 1))
    # Pre-order: a subtree ends where its last descendant's subtree ends.
    ends = tree.ends
    ends.extend(range(1, len(names) + 1))
    for i in range(len(names) - 1, 0, -1):
        if ends[i] > ends[parents[i]]:
            ends[parents[i]] = ends[i]
    return tree


def unique_parameters(tree: Tree) -> Iterator[tuple[str, str, torch.Tensor]]:
    """(module path, name, tensor) for every parameter, each tensor object once, in walk order."""
    seen: set[int] = set()
    for i, parameters in enumerate(tree.parameters):
        for name, p in parameters.items():
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                yield tree.path(i), name, p
