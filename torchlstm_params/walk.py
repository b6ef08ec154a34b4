"""Iterative traversal of a module tree.

``nn.Module.named_modules`` recurses (a generator per level) and fails near
1,000 levels; this walk keeps its own stack, so depth is bounded only by
memory. A module registered under two paths, or in a cycle, is visited once,
at the first path in registration order; the other paths are kept as aliases.

Paths are kept as :class:`ModulePath` links (a name and the parent's link) and
spelled out only when asked: a chain ``depth`` deep holds ``depth`` links, not
``depth²/2`` characters of dotted strings.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["Alias", "ModulePath", "Tree", "unique_parameters", "unwrap", "walk"]


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


class ModulePath:
    """Where a module sits: its name under its parent and the parent's ``ModulePath``.

    ``str(path)`` spells the dotted path (``"encoder.layers.0"``; ``""`` for the root), built
    on each call from the links, so that the paths of a deep tree take memory linear in its
    depth. Two paths are equal when they spell the same; a path also equals its spelling
    as a ``str``.

    >>> root = ModulePath.root()
    >>> str(root.child("encoder").child("0")), root.child("encoder").depth
    ('encoder.0', 1)

    Attributes:
        depth: 0 for the root, 1 for its children, ...
        name: the module's name under its parent (``""`` for the root).
        parent: the parent's path (None for the root).
    """

    __slots__ = ("depth", "name", "parent")

    name: str
    parent: ModulePath | None
    depth: int

    def __init__(self, name: str, parent: ModulePath | None, depth: int) -> None:
        self.name, self.parent, self.depth = name, parent, depth

    @staticmethod
    def root() -> ModulePath:
        return ModulePath("", None, 0)

    @staticmethod
    def of(names: Iterable[str]) -> ModulePath:
        """The path whose names from the root's child down are ``names``."""
        path = ModulePath.root()
        for name in names:
            path = path.child(name)
        return path

    def child(self, name: str) -> ModulePath:
        return ModulePath(name, self, self.depth + 1)

    def names(self) -> list[str]:
        """The names from the root's child down to this module (``[]`` for the root)."""
        out = []
        node: ModulePath | None = self
        while node is not None and node.parent is not None:
            out.append(node.name)
            node = node.parent
        out.reverse()
        return out

    def __str__(self) -> str:
        parent = self.parent
        if parent is None or parent.parent is None:  # the root, or a child of the root
            return self.name
        if parent.parent.parent is None:  # the common shallow case, without a list
            return f"{parent.name}.{self.name}"
        return ".".join(self.names())

    def __repr__(self) -> str:
        return f"ModulePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return str(self) == other
        if not isinstance(other, ModulePath):
            return NotImplemented
        a: ModulePath | None = self
        b: ModulePath | None = other
        while a is not b:  # links shared from some ancestor up are equal without reading further
            if a is None or b is None or a.name != b.name or a.depth != b.depth:
                return False
            a, b = a.parent, b.parent
        return True

    def __hash__(self) -> int:
        return hash(str(self))

    def __reduce__(self) -> tuple[object, tuple[list[str]]]:
        # By names, not by links: pickle would recurse once per level on the links.
        return ModulePath.of, (self.names(),)


@dataclass(frozen=True, slots=True)
class Alias:
    """A second registration of an already visited module."""

    path: ModulePath
    parent: int  # index of the node that registers it
    target: int  # index of the node first visited for this module


@dataclass(frozen=True, slots=True)
class Tree:
    """Modules in pre-order. Node ``i``'s subtree is ``i .. end[i]-1``."""

    nodes: list[ModulePath]  # where each module sits; spelled out on demand by path(i)
    modules: list[nn.Module]
    depths: list[int]
    parents: list[int]  # -1 for the root
    ends: list[int]
    aliases: list[Alias]
    wrappers: list[tuple[ModulePath, str]]  # (where, label) of each rename-only wrapper looked through

    def __len__(self) -> int:
        return len(self.nodes)

    def path(self, i: int) -> str:
        """Node ``i``'s dotted path (``""`` for the root), spelled out now."""
        return str(self.nodes[i])

    def locate(self, paths: Iterable[str]) -> dict[str, int]:
        """The node at each of ``paths`` that names a module of the tree (the others are left out).

        One pass over the tree, whatever its depth: paths are followed name by name.
        """
        wanted = set(paths)
        if not wanted:
            return {}
        nodes, parents = self.nodes, self.parents
        child = {(parents[i], nodes[i].name): i for i in range(1, len(nodes))}
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
    nodes: list[ModulePath] = []
    modules: list[nn.Module] = []
    depths: list[int] = []
    parents: list[int] = []
    aliases: list[Alias] = []
    wrappers: list[tuple[ModulePath, str]] = []
    index_of: dict[int, int] = {}
    stack: list[tuple[ModulePath, nn.Module, int]] = [(ModulePath.root(), root, -1)]
    push, pop = stack.append, stack.pop
    wrapper_class: dict[type, bool] = {}
    while stack:
        node, module, parent = pop()
        cls = type(module)
        is_wrapper = wrapper_class.get(cls)
        if is_wrapper is None:
            is_wrapper = wrapper_class[cls] = unwrap(module) is not None
        if is_wrapper:
            inner = unwrap(module)
            while inner is not None:  # seen through: the wrapped module takes the wrapper's place and path
                wrappers.append((node, inner[0]))
                module = inner[1]
                inner = unwrap(module)
        key = id(module)
        seen = index_of.get(key)
        if seen is not None:
            aliases.append(Alias(node, parent, seen))
            continue
        i = index_of[key] = len(nodes)
        nodes.append(node)
        modules.append(module)
        depths.append(node.depth)
        parents.append(parent)
        children = module._modules
        if children:
            depth = node.depth + 1
            for name, child in reversed(children.items()):
                if child is not None:
                    push((ModulePath(name, node, depth), child, i))
    # Pre-order: a subtree ends where its last descendant's subtree ends.
    ends = list(range(1, len(nodes) + 1))
    for i in range(len(nodes) - 1, 0, -1):
        if ends[i] > ends[parents[i]]:
            ends[parents[i]] = ends[i]
    return Tree(nodes, modules, depths, parents, ends, aliases, wrappers)


def unique_parameters(tree: Tree) -> Iterator[tuple[str, str, torch.Tensor]]:
    """(module path, name, tensor) for every parameter, each tensor object once, in walk order."""
    seen: set[int] = set()
    for i, module in enumerate(tree.modules):
        for name, p in module._parameters.items():
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                yield tree.path(i), name, p
