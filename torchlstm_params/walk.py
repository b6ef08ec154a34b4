"""Iterative traversal of a module tree.

``nn.Module.named_modules`` recurses (a generator per level) and fails near
1,000 levels; this walk keeps its own stack, so depth is bounded only by
memory. A module registered under two paths, or in a cycle, is visited once,
at the first path in registration order; the other paths are kept as aliases.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["Alias", "Tree", "walk"]


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

    def __len__(self) -> int:
        return len(self.paths)


def walk(root: nn.Module) -> Tree:
    """Visit ``root`` and every submodule once, in ``named_modules`` order."""
    paths: list[str] = []
    modules: list[nn.Module] = []
    depths: list[int] = []
    parents: list[int] = []
    aliases: list[Alias] = []
    index_of: dict[int, int] = {}
    stack: list[tuple[str, nn.Module, int, int]] = [("", root, 0, -1)]
    push, pop = stack.append, stack.pop
    while stack:
        path, module, depth, parent = pop()
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
    return Tree(paths, modules, depths, parents, ends, aliases)
