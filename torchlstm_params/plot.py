"""Where the parameters live, as a picture: the module tree as an interactive treemap or icicle.

:func:`nodes` lays the tree out as plain data (ids, parents, labels, values), with no plotting
library involved, so that its numbers can be checked against the report; :func:`figure` hands
them to plotly (the ``plot`` extra, imported only here); :func:`write` saves the figure as a
self-contained HTML page (plotly.js embedded: it opens offline, no CDN) or, with kaleido, as an
SVG/PNG/PDF for papers.

Values are exact and add up: a box holds the parameters of its subtree, a tensor shared by
several modules counted once, at its first registration (so the root is ``total_params``).
Parameters a module holds beside its children get an "(own)" box. Alike siblings are folded
into one box (``blocks.0–39 ×40``) whose value covers all of them, as in the text tables.
Below ``max_depth`` a subtree is one box. Recurrent modules whose tensors are exactly their
formula's are opened down to layer, direction and tensor role (``weight_ih``, ``weight_hh``,
``bias_ih``, ``bias_hh``, ``weight_hr``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidSettingsError, TorchLstmParamsError
from .fold import Line, module_lines
from .render import format_count

if TYPE_CHECKING:
    from .results import RecurrentEntry, Report

__all__ = ["DEPTH", "MAX_CHILDREN", "MAX_NODES", "Nodes", "figure", "nodes", "write"]

#: Module depth below which a subtree is one box, by default (zooming in shows what lies below).
DEPTH = 4
#: At most this many module boxes: past it, ``nodes`` aggregates one level higher until the tree fits.
MAX_NODES = 4000
#: At most this many boxes under one parent: the smallest of the others are drawn as one "more" box.
MAX_CHILDREN = 100
_KINDS = ("treemap", "icicle")


@dataclass(frozen=True, slots=True)
class Nodes:
    """The picture as plain data, one entry per box (plotly's ``ids``/``parents``/``labels``/``values``)."""

    ids: tuple[str, ...]
    parents: tuple[str, ...]  # "" for the root
    labels: tuple[str, ...]
    values: tuple[int, ...]  # parameters in the box; a parent's value is the sum of its children's
    hover: tuple[str, ...]
    max_depth: int | None  # the module depth the tree was aggregated at


def _first_site_sums(report: Report) -> dict[str, int]:
    """Per module path: parameters of its subtree, a shared tensor counted at its first registration only."""
    if len(report.first_site) != len(report.rows):  # a report built without them: subtree counts
        return {row.name: row.params for row in report.rows}
    return {row.name: k for row, k in zip(report.rows, report.first_site, strict=True)}


def nodes(report: Report, *, max_depth: int | None = DEPTH, fold: bool = True) -> Nodes:
    """The boxes of the picture for ``report`` (see the module notes): exact values that add up.

    ``max_depth`` aggregates every subtree below it into one box (``None``: none), and is lowered
    further while more than :data:`MAX_NODES` boxes would remain.
    """
    if max_depth is not None and (isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0):
        raise InvalidSettingsError(f"max_depth must be None or an int >= 0, got: {max_depth!r}")
    sums = _first_site_sums(report)
    lines, _ = module_lines(report, max_depth, fold)
    entries = {e.name: e for e in report.recurrent}
    own = {o.path: o for o in report.own}
    total = report.total_params
    kept: list[tuple[Line, str, str, int]] = []  # (line, its box id, its parent's, value)
    stack: list[tuple[int, str]] = []  # (depth, id) of the module lines above
    for line in lines:
        while stack and stack[-1][0] >= line.depth:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        node_id = _node_id(line)
        value = (own[line.path].params if line.own else sums.get(line.path, 0)) * line.count
        if value == 0 and line.depth > 0:
            continue  # nothing to draw (a Dropout, an activation); its subtree holds nothing either
        kept.append((line, node_id, parent, value))
        if not line.own:
            stack.append((line.depth, node_id))
    capped, depth = _fit(_cap_children(kept), max_depth)
    has_children = {parent for _, _, parent, _ in kept}
    rows: list[tuple[str, str, str, int, str]] = []
    for box, node_id, parent, value in capped:
        if box is None:  # the boxes folded into one "more" box
            more = node_id.rpartition("/")[2]
            rows.append((node_id, parent, more, value, f"{parent}: {more}, the smallest boxes here, {value:,}"))
            continue
        rows.append((node_id, parent, _label(box), value, _hover(box, value, total)))
        entry = None if box.own or node_id in has_children else entries.get(box.path)
        if entry is not None and _exact(entry, sums):
            rows.extend(_opened(entry, box.count, node_id))
    ids, parents, labels, values, hover = zip(*rows, strict=True)
    return Nodes(ids, parents, labels, values, hover, depth)


def _fit(
    boxes: list[tuple[Line | None, str, str, int]], depth: int | None
) -> tuple[list[tuple[Line | None, str, str, int]], int | None]:
    """Module boxes down to the deepest level that keeps them within :data:`MAX_NODES` (a box's value
    covers its whole subtree, so cutting deeper boxes aggregates them)."""
    if len(boxes) <= MAX_NODES:
        return boxes, depth
    levels: dict[str, int] = {"": -1}
    per_depth: dict[int, int] = {}
    for line, node_id, parent, _ in boxes:
        level = levels[node_id] = line.depth if line is not None and not line.own else levels[parent] + 1
        per_depth[level] = per_depth.get(level, 0) + 1
    fitted, shown = 0, per_depth.get(0, 0)
    while fitted + 1 in per_depth and shown + per_depth[fitted + 1] <= MAX_NODES:
        fitted += 1
        shown += per_depth[fitted]
    return [box for box in boxes if levels[box[1]] <= fitted], fitted


def _cap_children(kept: list[tuple[Line, str, str, int]]) -> list[tuple[Line | None, str, str, int]]:
    """At most :data:`MAX_CHILDREN` boxes under a parent: the largest, and one box for the rest and their subtrees."""
    children: dict[str, list[tuple[int, str]]] = {}
    for _, node_id, parent, value in kept:
        children.setdefault(parent, []).append((value, node_id))
    merged: dict[str, str] = {}  # dropped id -> its parent
    others: dict[str, tuple[int, int]] = {}  # parent -> (boxes merged, their value)
    for parent, boxes in children.items():
        if len(boxes) <= MAX_CHILDREN:
            continue
        ranked = sorted(boxes, key=lambda box: -box[0])
        rest = ranked[MAX_CHILDREN - 1 :]
        others[parent] = (len(rest), sum(v for v, _ in rest))
        merged.update((node_id, parent) for _, node_id in rest)
    if not merged:
        return list(kept)
    out: list[tuple[Line | None, str, str, int]] = []
    dropped = set(merged)
    for line, node_id, parent, value in kept:
        if node_id in dropped or parent in dropped:
            dropped.add(node_id)
            continue
        out.append((line, node_id, parent, value))
    for parent, (count, value) in others.items():
        out.append((None, f"{parent}/{count:,} more", parent, value))
    return out


def _exact(entry: RecurrentEntry, sums: dict[str, int]) -> bool:
    """Whether the module holds exactly its formula's tensors, first registered there (then they are drawn
    by role); the caller has checked that no box is drawn below it."""
    return (
        not entry.findings
        and not entry.explanations
        and entry.packed is None
        and entry.tensor_params == entry.formula_params == sums.get(entry.name, 0)
    )


def _opened(entry: RecurrentEntry, count: int, parent: str) -> list[tuple[str, str, str, int, str]]:
    """Boxes for a recurrent module's layers, directions and tensor roles (``count`` alike modules)."""
    out: list[tuple[str, str, str, int, str]] = []
    for layer in entry.formula.layers:
        layer_id = f"{parent}/layer {layer.layer}"
        if layer.direction == "forward":
            value = sum(x.params for x in entry.formula.layers if x.layer == layer.layer) * count
            out.append((layer_id, parent, f"layer {layer.layer}", value, f"{parent}: layer {layer.layer}, {value:,}"))
        direction_id = f"{layer_id}/{layer.direction}"
        value = layer.params * count
        out.append((direction_id, layer_id, layer.direction, value, f"{parent}: {layer.direction}, {value:,}"))
        for t in layer.tensors:
            shape = "×".join(map(str, t.shape))
            each = f" ×{count:,}" if count > 1 else ""
            hover = f"{parent}.{t.name} ({shape}){each}: {t.numel * count:,}"
            out.append((f"{direction_id}/{t.role}", direction_id, t.role, t.numel * count, hover))
    return out


def _node_id(line: Line) -> str:
    return line.label or "(root)"


def _path_of(node_id: str) -> str:
    return "" if node_id == "(root)" else node_id


def _label(line: Line) -> str:
    if line.own:
        return "(own)"
    name = line.label.rsplit(".", 1)[-1] if line.label else line.type
    name += f" ×{line.count:,}" if line.count > 1 else ""
    return f"{name}<br>{line.type}" if line.label else name


def _hover(line: Line, value: int, total: int) -> str:
    share = f"{100 * value / total:.1f}%" if total else "—"
    where = line.label or "(root)"
    if line.own:
        return f"{where}<br>held by the module itself: {line.type}<br>{value:,} params ({share})"
    each = f"<br>×{line.count:,}, {value // line.count:,} each" if line.count > 1 else ""
    return f"{where} ({line.type})<br>{value:,} params ({format_count(value)}, {share}){each}"


def figure(
    report: Report,
    *,
    kind: str = "treemap",
    max_depth: int | None = DEPTH,
    fold: bool = True,
    title: str | None = None,
) -> Any:
    """A plotly figure of ``report`` (``kind``: ``treemap`` or ``icicle``); needs plotly (the ``plot`` extra)."""
    if kind not in _KINDS:
        raise InvalidSettingsError(f"kind must be one of {', '.join(_KINDS)}, got: {kind!r}")
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise TorchLstmParamsError("plotting needs plotly: pip install 'torchlstm_params[plot]'") from None
    data = nodes(report, max_depth=max_depth, fold=fold)
    trace = {
        "ids": list(data.ids),
        "parents": list(data.parents),
        "labels": list(data.labels),
        "values": list(data.values),
        "customdata": list(data.hover),
        "branchvalues": "total",
        "hovertemplate": "%{customdata}<extra></extra>",
        "texttemplate": "%{label}<br>%{value:,} (%{percentRoot:.1%})",
        "maxdepth": 4,
    }
    trace_type = go.Treemap if kind == "treemap" else go.Icicle
    fig = go.Figure(trace_type(**trace))
    depth = "all depths" if data.max_depth is None else f"aggregated below depth {data.max_depth}"
    heading = title or f"{report.model_type}: {report.total_params:,} parameters ({format_count(report.total_params)})"
    fig.update_layout(
        title={"text": f"{heading}<br><sup>{depth}; a shared tensor counted once, where first registered</sup>"},
        margin={"t": 70, "l": 10, "r": 10, "b": 10},
    )
    return fig


def write(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``fig``: ``.html`` self-contained (plotly.js inside: it opens offline); ``.svg``, ``.png`` and
    ``.pdf`` need kaleido."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in (".html", ".htm"):
        fig.write_html(target, include_plotlyjs=True, full_html=True)
        return target
    if suffix in (".svg", ".png", ".pdf"):
        try:
            import kaleido  # noqa: F401
        except ImportError:
            raise TorchLstmParamsError(
                f"writing {suffix} needs kaleido (pip install kaleido; it drives a Chrome or Chromium it finds); "
                "an .html file needs nothing more"
            ) from None
        fig.write_image(target)
        return target
    raise InvalidSettingsError(f"a plot is written as .html, .svg, .png or .pdf, got: {str(path)!r}")
