"""Modules that look recurrent but that nothing recognises, with the registration that would cover them.

Precision over recall: a module is listed only when it holds what a gated recurrence
holds, read off its own tensors and its direct ``Linear`` children: an input matrix
``(g·h, in)`` and a recurrent matrix ``(g·h, h)`` with the same ``g·h`` rows, ``g`` 2 to
4, where ``h`` is its ``hidden_size`` (or ``hidden_dim``) attribute when it has one. A
matrix ``(h, g·h)`` back down to ``h`` (a feed-forward block's second layer) rules it
out, and so do torch's own classes (attention, transformer layers), modules that hold
a recognised recurrent module and modules inside one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from itertools import compress

from torch import nn

from .walk import Tree

__all__ = ["Hint", "find_hints"]

_GATES = (4, 3, 2)
_HIDDEN_ATTRIBUTES = ("hidden_size", "hidden_dim")


@dataclass(frozen=True, slots=True)
class Hint:
    """A module that looks recurrent and is not recognised: why, and the snippet that would register it.

    Attributes:
        path: the module's path (``""`` for the root).
        type: its class, qualified by its module.
        reason: the matrices that make it look recurrent.
        gates: the gate groups ``g`` read off them.
        hidden_size: the hidden size ``h`` read off them (or its ``hidden_size`` attribute).
        snippet: Python that registers the class with a description covering those matrices.
    """

    path: str
    type: str  # the class, qualified
    reason: str
    gates: int
    hidden_size: int
    snippet: str


@dataclass(frozen=True, slots=True)
class _Matrix:
    name: str  # relative to the module: "weight" or "x2g.weight"
    rows: int
    cols: int
    linear: str | None  # the direct Linear child that holds it


def _matrices(module: nn.Module) -> list[_Matrix]:
    found = []
    for name, p in module._parameters.items():
        if p is not None and p.dim() == 2:
            found.append(_Matrix(name, p.shape[0], p.shape[1], None))
    for child_name, child in module._modules.items():
        if isinstance(child, nn.Linear):
            found.append(_Matrix(f"{child_name}.weight", child.out_features, child.in_features, child_name))
    return found


def _hidden_attribute(module: nn.Module) -> int | None:
    for attribute in _HIDDEN_ATTRIBUTES:
        value = module.__dict__.get(attribute)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _evidence(module: nn.Module) -> tuple[int, int, _Matrix, _Matrix] | None:
    """(g, h, input matrix, recurrent matrix), or None when the module does not hold a gated recurrence."""
    matrices = _matrices(module)
    if len(matrices) < 2:
        return None
    attribute = _hidden_attribute(module)
    candidates = [attribute] if attribute is not None else sorted({m.cols for m in matrices}, reverse=True)
    for h in candidates:
        for g in _GATES:
            n = g * h
            recurrent = [m for m in matrices if (m.rows, m.cols) == (n, h)]
            if not recurrent:
                continue
            inputs = [m for m in matrices if m.rows == n and m is not recurrent[0]]
            down = any((m.rows, m.cols) == (h, n) for m in matrices)
            if inputs and not down:
                return g, h, inputs[0], recurrent[0]
    return None


def _biases(module: nn.Module, size: int) -> list[str]:
    names = [n for n, p in module._parameters.items() if p is not None and p.dim() == 1 and p.shape[0] == size]
    for child_name, child in module._modules.items():
        if isinstance(child, nn.Linear) and child.bias is not None and child.out_features == size:
            names.append(f"{child_name}.bias")
    return names


def _snippet(module: nn.Module, g: int, h: int, inp: _Matrix, rec: _Matrix, biases: list[str]) -> str:
    cls = type(module)
    attribute = _hidden_attribute(module)
    h_expr = str(h)
    if attribute is not None:
        h_expr = next(f"m.{a}" for a in _HIDDEN_ATTRIBUTES if module.__dict__.get(a) == attribute)
    in_expr = f"m.{inp.linear}.in_features" if inp.linear is not None else str(inp.cols)
    parts = [
        f'gate_matrix("{inp.name}", {g}, {h_expr}, {in_expr})',
        f'gate_matrix("{rec.name}", {g}, {h_expr}, {h_expr}, role="recurrent", source="h")',
    ]
    if biases:
        names = ", ".join(f'"{b}"' for b in biases)
        parts.append(f'bias_vectors([{names}], {g} * {h_expr}, symbol="{g}h")')
    covered = {inp.name, rec.name, *biases}
    rest = [n for n, _ in module.named_parameters() if n not in covered]
    lines = [
        "from torchlstm_params import register_recurrent",
        "from torchlstm_params.recurrence import Recurrence, RecurrenceLayer, bias_vectors, gate_matrix",
        "",
        "register_recurrent(",
        f"    {cls.__qualname__},  # {cls.__module__}.{cls.__qualname__}",
        "    lambda m: Recurrence(",
        f'        "{cls.__name__}",',
        f"        {in_expr},",
        f"        {h_expr},",
        '        (RecurrenceLayer(0, "forward", (',
        *(f"            {p}," for p in parts),
        "        )),),",
        f'        is_cell=True, gate_groups="{g}",',
        "    ),",
        ")",
    ]
    if rest:
        lines.append(f"# also holds {', '.join(rest)}: add their parts (norm, peepholes, ...) to cover them")
    return "\n".join(lines)


def _torch_class(cls: type) -> bool:
    return cls.__module__ == "torch" or cls.__module__.startswith("torch.")


def find_hints(tree: Tree, recurrent: Collection[int]) -> tuple[Hint, ...]:
    """The modules of ``tree`` that look recurrent, outside the ``recurrent`` nodes' subtrees and ancestors."""
    n = len(tree)
    # Only a module of a class outside torch can hint; most models have few such classes, often none.
    outside = {cls for cls in set(map(type, tree.modules)) if not _torch_class(cls)}
    if not outside:
        return ()
    covered = [False] * n
    for r in recurrent:
        for i in range(r, tree.ends[r]):  # the recognised module and everything inside it
            covered[i] = True
        parent = tree.parents[r]
        while parent != -1 and not covered[parent]:  # and every module that holds it
            covered[parent] = True
            parent = tree.parents[parent]
    hints = []
    modules = tree.modules
    for i in compress(range(n), map(outside.__contains__, map(type, modules))):
        module = modules[i]
        if covered[i] or not (module._parameters or module._modules):
            continue
        cls = type(module)
        found = _evidence(module)
        if found is None:
            continue
        g, h, inp, rec = found
        biases = _biases(module, g * h)
        reason = (
            f"input matrix {inp.name} ({inp.rows}, {inp.cols}) and recurrent matrix {rec.name} "
            f"({rec.rows}, {rec.cols}): {g} gate groups of hidden size {h}"
        )
        qualified = f"{cls.__module__}.{cls.__qualname__}"
        hints.append(Hint(tree.path(i), qualified, reason, g, h, _snippet(module, g, h, inp, rec, biases)))
    return tuple(hints)
