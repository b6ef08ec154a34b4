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
from typing import TYPE_CHECKING, Final

from .walk import locate

if TYPE_CHECKING:
    from .results import ModulePath, ModuleRow, OwnParams, RecurrentEntry, Report

__all__ = [
    "PATH_LIMIT",
    "Label",
    "Line",
    "RecurrentGroup",
    "depth_of",
    "fold_label",
    "module_lines",
    "recurrent_groups",
    "shown_path",
]


#: Longer module paths are shortened on screen (``0.0.0.…(39,994 more).0.0.0``); JSON keeps them whole.
PATH_LIMIT: Final = 80


def shown_path(path: str) -> str:
    """``path`` as a table cell: whole up to :data:`PATH_LIMIT` characters, else its first and last three
    names around a count of the ones left out (or, for a few long names, its first and last characters)."""
    if len(path) <= PATH_LIMIT:
        return path
    names = path.split(".")
    if len(names) > 6:
        short = _elided(names[:3], len(names) - 6, names[-3:])
        if len(short) <= PATH_LIMIT:
            return short
    half = (PATH_LIMIT - 1) // 2
    return f"{path[:half]}…{path[-half:]}"


def _elided(head: Sequence[str], left_out: int, tail: Sequence[str]) -> str:
    return f"{'.'.join(head)}.…({left_out:,} more).{'.'.join(tail)}"


class Label:
    """A line's label as a link: one segment (a name, or a run such as ``0–39``) under its parent's label.

    Spelled whole on demand (:meth:`text`, the cost of its depth), and shortened as a screen shows it in
    constant time (:meth:`shown`): a table of every module of a chain ``depth`` deep takes time and memory
    linear in ``depth``, where spelling each line's label would be quadratic.
    """

    __slots__ = ("head", "length", "parent", "parts", "segment")

    parent: Label | None
    segment: str
    parts: int  # segments below the root (0 for the root)
    length: int  # characters of the whole label
    head: tuple[str, ...]  # the first three segments

    def __init__(self, parent: Label | None, segment: str) -> None:
        self.parent, self.segment = parent, segment
        if parent is None or parent.parts == 0:  # the root (""), or a child of the root
            self.parts = 0 if parent is None else 1
            self.length = len(segment)
            self.head = (segment,) if parent is not None else ()
        else:
            self.parts = parent.parts + 1
            self.length = parent.length + 1 + len(segment)
            self.head = parent.head if len(parent.head) == 3 else (*parent.head, segment)

    def child(self, segment: str) -> Label:
        return Label(self, segment)

    def text(self) -> str:
        """The whole label: ``""`` for the root, ``encoder.layers.0–3.rnn`` below it."""
        out = []
        label: Label | None = self
        while label is not None and label.parts > 0:
            out.append(label.segment)
            label = label.parent
        out.reverse()
        return ".".join(out)

    def shown(self) -> str:
        """The label as :func:`shown_path` shows it, built from the first and last three segments."""
        if self.length <= PATH_LIMIT or self.parts <= 6:
            return shown_path(self.text())  # at most PATH_LIMIT characters, or six segments, to spell
        tail: list[str] = []
        label: Label | None = self
        while len(tail) < 3 and label is not None:
            tail.append(label.segment)
            label = label.parent
        short = _elided(self.head, self.parts - 6, tail[::-1])
        return short if len(short) <= PATH_LIMIT else shown_path(self.text())

    @property
    def shortened(self) -> bool:
        return self.length > PATH_LIMIT


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the module table: a module, a folded run of alike modules, or an "(own)" line."""

    where: Label  # the path as shown ("blocks.0–39" for a run), as a link
    node: ModulePath  # the (first) module's path
    type: str  # class name; for an "(own)" line, the tensors' names
    depth: int
    count: int  # modules this line stands for (1: one module)
    each: int  # parameters of one of them
    trainable_each: int
    uninitialized_each: int
    own: bool = False  # parameters the module registers itself, beside its children

    @property
    def label(self) -> str:
        """The label, whole ("blocks.0–39", "encoder (own)")."""
        return self._own_suffix(self.where.text())

    @property
    def shown(self) -> str:
        """The label as a table shows it: over :data:`PATH_LIMIT` characters, shortened."""
        return self._own_suffix(self.where.shown())

    @property
    def shortened(self) -> bool:
        return self.where.shortened

    @property
    def path(self) -> str:
        """The (first) module's path, spelled out now."""
        return str(self.node)

    def _own_suffix(self, text: str) -> str:
        return f"{text or '(root)'} (own)" if self.own else text

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
        self.rows = rows = list(rows)  # each row built once (ModuleRows builds a row on every read)
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
        parents = [-1] * len(self.rows)
        for i, children in enumerate(self.children):
            for c in children:
                parents[c] = i
        return locate([row.path.name for row in self.rows], parents, paths)

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
    if not report.rows:
        return [], 0
    tree = _Tree(report.rows, report.recurrent, report.own, report.first_site, fold)
    rows = tree.rows
    lines: list[Line] = []
    hidden = 0
    # (row index, its label, modules it stands for, how many alike siblings were folded into it)
    stack: list[tuple[int, Label, int, int]] = [(0, Label(None, ""), 1, 1)]
    subtree_size = _subtree_sizes(tree)
    while stack:
        i, label, multiplier, run = stack.pop()
        row = rows[i]
        if max_depth is not None and row.depth > max_depth:
            hidden += subtree_size[i] * multiplier * run
            continue
        count = multiplier * run
        lines.append(
            Line(label, row.path, row.type, row.depth, count, row.params, row.trainable_params, row.uninitialized)
        )
        children = tree.runs(i, fold)
        own = tree.own.get(i)
        if children and own is not None and (max_depth is None or row.depth + 1 <= max_depth):
            lines.append(
                Line(
                    label,
                    row.path,
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
            child_label = label.child(names[0] if len(members) == 1 else _run_label(names))
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
