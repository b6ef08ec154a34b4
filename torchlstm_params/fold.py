"""What a screen shows of a report: rows down to a depth, alike siblings folded into one line.

Shared by the text tables (:mod:`torchlstm_params.render`) and the picture
(:mod:`torchlstm_params.plot`). Nothing here formats text: it decides which
modules get a line and with which multiplicity.

Two siblings are *alike* when they are the same class with the same counts, the
same recurrent settings and, all the way down, alike children under the same
names. A run of alike siblings numbered one after another (as ``ModuleList``
and ``Sequential`` number them) becomes one line (``blocks.0–39 ×40``); its children are shown once, for every copy
(``blocks.0–39.rnn ×40``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import ModuleRow, OwnParams, RecurrentEntry, Report

__all__ = ["Line", "RecurrentGroup", "depth_of", "fold_label", "module_lines", "recurrent_groups"]


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the module table: a module, a folded run of alike modules, or an "(own)" line."""

    label: str  # the path as shown ("blocks.0–39" for a run)
    path: str  # the (first) module's path
    type: str  # class name; for an "(own)" line, the tensors' names
    depth: int
    count: int  # modules this line stands for (1: one module)
    each: int  # parameters of one of them
    trainable_each: int
    uninitialized_each: int
    own: bool = False  # parameters the module registers itself, beside its children

    @property
    def params(self) -> int:
        return self.count * self.each

    @property
    def trainable_params(self) -> int:
        return self.count * self.trainable_each


def depth_of(path: str) -> int:
    """A module's depth from its path: 0 for the root ``""``."""
    return path.count(".") + 1 if path else 0


def _run_label(names: Sequence[str]) -> str:
    """``0–39`` for consecutive numbers, else ``first…last`` (which the caller shows as ``*``)."""
    if all(n.isdigit() for n in names):
        numbers = [int(n) for n in names]
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            return f"{numbers[0]}–{numbers[-1]}"
    return f"{names[0]}…{names[-1]}"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class _Tree:
    """The report's rows as a tree: children per row, and a signature per row that alike subtrees share."""

    def __init__(
        self,
        rows: Sequence[ModuleRow],
        recurrent: Sequence[RecurrentEntry],
        own: Sequence[OwnParams],
        first_site: Sequence[int],
        fold: bool,
    ) -> None:
        self.rows = rows
        n = len(rows)
        self.children: list[list[int]] = [[] for _ in range(n)]
        stack: list[int] = []
        for i, row in enumerate(rows):
            while stack and rows[stack[-1]].depth >= row.depth:
                stack.pop()
            if stack:
                self.children[stack[-1]].append(i)
            stack.append(i)
        at = self._locate([o.path for o in own] + [e.name for e in recurrent])
        self.own = {at[o.path]: o for o in own if o.path in at}  # row index -> its own parameters
        self.signature = list(range(n))  # without folding, no two rows are alike
        if fold:
            settings = {
                at[e.name]: (e.spec, e.status, e.tensor_params, e.dropout, e.batch_first)
                for e in recurrent
                if e.name in at
            }
            self._sign(settings, first_site if len(first_site) == n else [row.params for row in rows])

    def _locate(self, paths: Sequence[str]) -> dict[str, int]:
        """The row of each of ``paths`` that has one, followed name by name from the root's row: linear
        in the rows, where spelling every row's path out would be quadratic in a deep tree's depth."""
        rows = self.rows
        child = {(i, rows[c].path.name): c for i, children in enumerate(self.children) for c in children}
        out: dict[str, int] = {}
        for path in paths:
            i = 0
            for name in path.split(".") if path else ():
                i = child.get((i, name), -1)
                if i < 0:
                    break
            if i >= 0:
                out[path] = i
        return out

    def _sign(self, settings: Mapping[int, tuple[object, ...]], first_site: Sequence[int]) -> None:
        rows = self.rows
        interned: dict[tuple[object, ...], int] = {}
        for i in range(len(rows) - 1, -1, -1):
            row = rows[i]
            own_here = self.own.get(i)
            key = (
                row.type,
                row.params,
                row.trainable_params,
                row.uninitialized,
                first_site[i],
                settings.get(i),
                None if own_here is None else (own_here.names, own_here.params, own_here.trainable_params),
                tuple((rows[c].path.name, self.signature[c]) for c in self.children[i]),
            )
            self.signature[i] = interned.setdefault(key, len(interned))

    def runs(self, i: int, fold: bool) -> list[list[int]]:
        """Children of row ``i`` in runs of alike siblings numbered one after another (``0``, ``1``, ...,
        as ``ModuleList`` and ``Sequential`` name them); runs of one without ``fold``."""
        out: list[list[int]] = []
        previous = None
        for c in self.children[i]:
            name = self.rows[c].path.name
            number = int(name) if name.isdigit() else None
            alike = fold and out and number is not None and previous is not None and number == previous + 1
            if alike and self.signature[out[-1][0]] == self.signature[c]:
                out[-1].append(c)
            else:
                out.append([c])
            previous = number
        return out


def module_lines(report: Report, max_depth: int | None, fold: bool = True) -> tuple[list[Line], int]:
    """The module table's lines down to ``max_depth`` (None: all), and how many modules it leaves out.

    The root's row must be in ``report.rows`` (it always is).
    """
    rows = report.rows
    if not rows:
        return [], 0
    tree = _Tree(rows, report.recurrent, report.own, report.first_site, fold)
    lines: list[Line] = []
    hidden = 0
    # (row index, its label, modules it stands for, how many alike siblings were folded into it)
    stack: list[tuple[int, str, int, int]] = [(0, rows[0].name, 1, 1)]
    subtree_size = _subtree_sizes(tree)
    while stack:
        i, label, multiplier, run = stack.pop()
        row = rows[i]
        if max_depth is not None and row.depth > max_depth:
            hidden += subtree_size[i] * multiplier * run
            continue
        count = multiplier * run
        lines.append(
            Line(label, row.name, row.type, row.depth, count, row.params, row.trainable_params, row.uninitialized)
        )
        children = tree.runs(i, fold)
        own = tree.own.get(i)
        if children and own is not None and (max_depth is None or row.depth + 1 <= max_depth):
            lines.append(
                Line(
                    f"{label or '(root)'} (own)",
                    row.name,
                    ", ".join(own.names),
                    row.depth + 1,
                    count,
                    own.params,
                    own.trainable_params,
                    0,
                    own=True,
                )
            )
        for members in reversed(children):
            names = [rows[c].path.name for c in members]
            child_label = _join(label, names[0] if len(members) == 1 else _run_label(names))
            stack.append((members[0], child_label, count, len(members)))
    return lines, hidden


def _subtree_sizes(tree: _Tree) -> list[int]:
    sizes = [1] * len(tree.rows)
    for i in range(len(tree.rows) - 1, -1, -1):
        for c in tree.children[i]:
            sizes[i] += sizes[c]
    return sizes


@dataclass(frozen=True, slots=True)
class RecurrentGroup:
    """Recurrent modules shown as one line: alike settings, figures and status, paths alike but for numbers."""

    label: str
    entries: tuple[RecurrentEntry, ...]

    @property
    def first(self) -> RecurrentEntry:
        return self.entries[0]

    @property
    def count(self) -> int:
        return len(self.entries)


_NUMBER = re.compile(r"^\d+$")


def fold_label(paths: Sequence[str]) -> str:
    """One label for paths that differ only in numeric parts: ``blocks.0–39.rnn`` or ``blocks.*.rnn``."""
    if len(paths) == 1:
        return paths[0] or "(root)"
    split = [p.split(".") for p in paths]
    parts = []
    for position in zip(*split, strict=True):
        if len(set(position)) == 1:
            parts.append(position[0])
            continue
        varying = [i for i, column in enumerate(zip(*split, strict=True)) if len(set(column)) > 1]
        label = _run_label(list(position))
        parts.append(label if len(varying) == 1 and "…" not in label else "*")
    return ".".join(parts)


def _group_key(e: RecurrentEntry) -> tuple[object, ...] | None:
    if e.findings:
        return None  # a mismatch is always its own line
    pattern = ".".join("#" if _NUMBER.match(part) else part for part in e.name.split("."))
    return (
        pattern,
        e.type,
        e.spec,
        e.dropout,
        e.batch_first,
        e.tensor_params,
        e.status,
        tuple(x.message for x in e.explanations),
        e.origin,
        e.packed,
        e.compute,
        e.state,
        e.saved,
    )


def recurrent_groups(
    entries: Sequence[RecurrentEntry], max_depth: int | None, fold: bool = True
) -> tuple[list[RecurrentGroup], list[RecurrentEntry]]:
    """Recurrent entries grouped for display, and those left out below ``max_depth``.

    A mismatched entry is never left out nor folded.
    """
    shown: list[RecurrentEntry] = []
    hidden: list[RecurrentEntry] = []
    for e in entries:
        if max_depth is not None and depth_of(e.name) > max_depth and not e.findings:
            hidden.append(e)
        else:
            shown.append(e)
    groups: dict[object, list[RecurrentEntry]] = {}
    for e in shown:
        key = _group_key(e) if fold else None
        groups.setdefault(key if key is not None else id(e), []).append(e)
    out = [RecurrentGroup(fold_label([e.name for e in members]), tuple(members)) for members in groups.values()]
    return out, hidden
