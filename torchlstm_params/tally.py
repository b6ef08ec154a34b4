"""One pass over every registered tensor: unique counts per subtree, dtypes, sharing.

This is the hot loop of ``summarize``: each tensor's metadata is read once
(``numel``, ``requires_grad``, ``dtype``; ``shape`` only inside recurrent
modules, where it is checked against the formula on the way and gives the
element count for free). No tensor data is read.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate, compress, repeat
from operator import attrgetter, getitem, sub

import torch

from .formulas import Formula
from .names import qualified
from .walk import Tree

__all__ = ["Tally", "tally"]


@dataclass(slots=True)
class Tally:
    """Per-node subtree sums (shared tensors once) and model-wide facts."""

    params: list[int]
    trainable: list[int]
    lazy: list[int]
    uninitialized: list[str] = field(default_factory=list)
    by_dtype: dict[torch.dtype, int] = field(default_factory=dict)
    trainable_by_dtype: dict[torch.dtype, int] = field(default_factory=dict)
    shared_names: list[tuple[list[str], torch.Tensor]] = field(default_factory=list)
    exact: set[int] = field(default_factory=set)  # recurrent nodes whose tensors are the formula's
    buffer_count: int = 0  # unique buffers, lazy ones included
    buffer_elements: int = 0
    buffer_bytes: int = 0
    direct: list[int] = field(default_factory=list)  # per node: what it registers itself (a shared tensor: first site)
    direct_trainable: list[int] = field(default_factory=list)
    first_site: list[int] = field(
        default_factory=list
    )  # per node: its subtree's, a shared tensor at its first site only
    orig_nodes: list[int] = field(default_factory=list)  # nodes with a parameter named *_orig (torch's prune)


_metadata = attrgetter("shape", "requires_grad", "dtype")


def _value(tensor: torch.Tensor) -> tuple[int, int, int]:
    """(elements, trainable elements, lazy tensors) that one tensor adds to a count."""
    try:
        k = tensor.numel()
    except ValueError:  # UninitializedParameter
        return 0, 0, 1
    return k, k if tensor.requires_grad else 0, 0


def tally(tree: Tree, formulas: dict[int, Formula]) -> Tally:
    """Count ``tree``'s parameters; ``formulas`` maps recurrent nodes to what they should hold."""
    n = len(tree)
    modules = tree.modules
    own = [0] * n
    own_train = [0] * n
    own_lazy = [0] * n
    result = Tally(own, own_train, own_lazy)
    # Every registration's id(tensor), in order; node i's start in it. Tensors are assumed
    # unique on the way (a dict per tensor would cost more than the rest of the loop) and
    # the rare repeats are taken back out afterwards.
    ids: list[int] = []
    push, extend = ids.append, ids.extend
    starts = [0] * n
    by_dtype: dict[torch.dtype | None, int] = {}
    train_by_dtype: dict[torch.dtype | None, int] = {}
    run_dtype: torch.dtype | None = None
    run = run_train = 0
    buffers_seen: set[int] = set()
    exact = result.exact
    # Per formula: the metadata of its tensors when every one trains, in the dtype of the first module
    # that has it; how many modules matched it exactly (their sums are added once, at the end).
    typical_of: dict[int, list[tuple[tuple[int, ...], bool, torch.dtype]]] = {}
    typical_hits: dict[int, tuple[Formula, torch.dtype, list[int]]] = {}

    for i, (params, buffers) in enumerate(zip(tree.parameters, tree.buffers, strict=True)):
        if buffers:
            _add_buffers(result, buffers.values(), buffers_seen)
        starts[i] = len(ids)
        f = formulas.get(i)
        if f is not None and tuple(params.keys()) == f.names:
            # The formula's names: one read of each tensor's shape, flag and dtype decides
            # whether its shapes are the formula's too, and then the sizes are known.
            values = params.values()
            try:
                meta = list(map(_metadata, values))
            except (AttributeError, RuntimeError):  # a None slot; an UninitializedParameter has no shape
                meta = []
            if meta:
                typical = typical_of.get(id(f))
                if typical is None:  # every tensor trainable, one dtype: the common case, one comparison
                    dtype = meta[0][2]
                    typical = typical_of[id(f)] = [(shape, True, dtype) for shape in f.shapes]
                    typical_hits[id(f)] = (f, dtype, [])
                if meta == typical:
                    exact.add(i)
                    extend(map(id, values))
                    own[i] = own_train[i] = f.params
                    typical_hits[id(f)][2].append(i)
                    continue
                shapes, flags, dtypes = zip(*meta, strict=True)
                if shapes == f.shapes:
                    exact.add(i)
                    extend(map(id, values))
                    own[i] = f.params
                    own_train[i] = sum(compress(f.numels, flags))
                    for dt, k, flag in zip(dtypes, f.numels, flags, strict=True):
                        by_dtype[dt] = by_dtype.get(dt, 0) + k
                        if flag:
                            train_by_dtype[dt] = train_by_dtype.get(dt, 0) + k
                    continue
        if not params:
            continue
        acc = acc_train = 0
        orig = False
        for name, p in params.items():
            if p is None:
                continue
            if name.endswith("_orig"):
                orig = True
            push(id(p))
            try:
                k = p.numel()
            except ValueError:  # UninitializedParameter: shape unknown until the first forward
                own_lazy[i] += 1
                result.uninitialized.append(qualified(tree.path(i), name))
                continue
            if p.dtype is not run_dtype:  # dtypes come in long runs: one dict update per run
                by_dtype[run_dtype] = by_dtype.get(run_dtype, 0) + run
                train_by_dtype[run_dtype] = train_by_dtype.get(run_dtype, 0) + run_train
                run_dtype, run, run_train = p.dtype, 0, 0
            acc += k
            run += k
            if p.requires_grad:
                acc_train += k
                run_train += k
        own[i] = acc
        own_train[i] = acc_train
        if orig:
            result.orig_nodes.append(i)
    by_dtype[run_dtype] = by_dtype.get(run_dtype, 0) + run
    train_by_dtype[run_dtype] = train_by_dtype.get(run_dtype, 0) + run_train
    for f, dtype, hits in typical_hits.values():
        by_dtype[dtype] = by_dtype.get(dtype, 0) + f.params * len(hits)
        train_by_dtype[dtype] = train_by_dtype.get(dtype, 0) + f.params * len(hits)
    result.buffer_count = len(buffers_seen)

    first: dict[int, int] = {}  # id(tensor) -> node of its first registration, for shared tensors
    sites: dict[int, list[int]] = {}  # id(tensor) -> further nodes that hold it
    tensors: dict[int, torch.Tensor] = {}
    if len(set(ids)) != len(ids):
        _take_back_repeats(tree, result, ids, starts, (by_dtype, train_by_dtype), first, sites, tensors)
    result.by_dtype = {dt: k for dt, k in by_dtype.items() if dt is not None}
    result.trainable_by_dtype = {dt: train_by_dtype.get(dt, 0) for dt in result.by_dtype}

    # A module registered twice adds a site, its parent, for every tensor it reaches: those of its
    # subtree and, through the aliases inside that subtree, of theirs (transitively).
    if tree.aliases:
        node_of: dict[int, int] = {}
        for pos, key in enumerate(ids):
            if key not in node_of:
                node_of[key] = _node_at(starts, pos)
        reach = _AliasReach(tree)
        for alias in tree.aliases:
            for j in reach.nodes(alias.target):
                for p in modules[j]._parameters.values():
                    if p is not None:
                        tensors[id(p)] = p
                        first.setdefault(id(p), node_of[id(p)])
                        sites.setdefault(id(p), []).append(alias.parent)
    result.direct, result.direct_trainable = result.params, result.trainable  # _sum_subtrees makes new lists
    _sum_subtrees(tree, result, first, sites, tensors)
    return result


class _AliasReach:
    """The nodes a module reaches: its subtree, and what the aliases registered inside it reach (cycles included)."""

    def __init__(self, tree: Tree) -> None:
        self._ends = tree.ends
        by_parent = sorted(tree.aliases, key=attrgetter("parent"))
        self._parents = [a.parent for a in by_parent]
        self._targets = [a.target for a in by_parent]
        self._memo: dict[int, Iterable[int]] = {}

    def nodes(self, target: int) -> Iterable[int]:
        found = self._memo.get(target)
        if found is None:
            found = self._memo[target] = self._reach(target)
        return found

    def _reach(self, target: int) -> Iterable[int]:
        ends, parents, targets = self._ends, self._parents, self._targets
        seen = {target}
        stack = [target]
        ranges: list[range] = []
        while stack:
            top = stack.pop()
            ranges.append(range(top, ends[top]))
            # aliases whose registering node lies in top's subtree (top .. ends[top]-1)
            for k in range(bisect.bisect_left(parents, top), bisect.bisect_left(parents, ends[top])):
                if targets[k] not in seen:
                    seen.add(targets[k])
                    stack.append(targets[k])
        if len(ranges) == 1:
            return ranges[0]
        return sorted({j for r in ranges for j in r})  # subtrees may nest: each node once


def _node_at(starts: list[int], pos: int) -> int:
    """The node whose registrations include position ``pos`` of the id list."""
    return bisect.bisect_right(starts, pos) - 1


def _take_back_repeats(
    tree: Tree,
    result: Tally,
    ids: list[int],
    starts: list[int],
    dtype_sums: tuple[dict[torch.dtype | None, int], dict[torch.dtype | None, int]],
    first: dict[int, int],
    sites: dict[int, list[int]],
    tensors: dict[int, torch.Tensor],
) -> None:
    """Remove the second and later registrations of a tensor from the node counts; keep them as sites."""
    modules = tree.modules
    first_pos: dict[int, int] = {}
    names: dict[int, list[str]] = {}
    for pos, key in enumerate(ids):
        earlier = first_pos.setdefault(key, pos)
        if earlier == pos:
            continue
        node = _node_at(starts, pos)
        name, p = _registration(modules[node], key, pos - starts[node])
        if key not in names:
            first_node = first[key] = _node_at(starts, earlier)
            first_name, _ = _registration(modules[first_node], key, earlier - starts[first_node])
            names[key] = [qualified(tree.path(first_node), first_name)]
            tensors[key] = p
        names[key].append(qualified(tree.path(node), name))
        sites.setdefault(key, []).append(node)
        k, k_train, lazy = _value(p)
        result.params[node] -= k
        result.trainable[node] -= k_train
        result.lazy[node] -= lazy
        if lazy:
            result.uninitialized.remove(qualified(tree.path(node), name))
        else:
            dtype_sums[0][p.dtype] -= k
            dtype_sums[1][p.dtype] = dtype_sums[1].get(p.dtype, 0) - k_train
    result.shared_names = [(v, tensors[key]) for key, v in names.items()]


def _registration(module: torch.nn.Module, key: int, index: int) -> tuple[str, torch.Tensor]:
    """The ``index``-th non-None parameter of ``module``, which has id ``key``."""
    registered = [(name, p) for name, p in module._parameters.items() if p is not None]
    name, p = registered[index]
    assert id(p) == key, "parameters changed while the model was being summarized"
    return name, p


def _sum_subtrees(
    tree: Tree, result: Tally, first: dict[int, int], sites: dict[int, list[int]], tensors: dict[int, torch.Tensor]
) -> None:
    """Turn per-node counts into subtree counts, each shared tensor once per subtree."""
    parents, ends = tree.parents, tree.ends
    # Pre-order: node i's subtree is i .. ends[i]-1, so its sum is a difference of prefix sums.
    result.params, result.trainable, result.lazy = (
        _subtree_sums(result.params, ends),
        _subtree_sums(result.trainable, ends),
        _subtree_sums(result.lazy, ends),
    )
    # Before further sites are added, the subtree sums count each tensor at its first registration only.
    result.first_site = list(result.params) if sites else result.params
    own, own_train, own_lazy = result.params, result.trainable, result.lazy
    # A shared tensor is in the sums of its first site's ancestors; add it once to the
    # ancestors of its further sites that do not hold it yet.
    for key, further in sites.items():
        k, k_train, lazy = _value(tensors[key])
        covered: set[int] = set()
        node = first[key]
        while node != -1:
            covered.add(node)
            node = parents[node]
        for node in further:
            while node != -1 and node not in covered:
                covered.add(node)
                own[node] += k
                own_train[node] += k_train
                own_lazy[node] += lazy
                node = parents[node]


def _subtree_sums(own: list[int], ends: list[int]) -> list[int]:
    """Per node, the sum of ``own`` over its subtree (pre-order: ``i .. ends[i]-1``)."""
    prefix = [0, *accumulate(own)]
    return list(map(sub, map(getitem, repeat(prefix), ends), prefix[:-1]))


def _add_buffers(result: Tally, buffers: Iterable[torch.Tensor | None], seen: set[int]) -> None:
    for b in buffers:
        if b is None or id(b) in seen:
            continue
        seen.add(id(b))
        try:
            k = b.numel()
        except ValueError:  # UninitializedBuffer: counted as a buffer, no elements yet
            continue
        result.buffer_elements += k
        result.buffer_bytes += k * b.element_size()
