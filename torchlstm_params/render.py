"""Text rendering of a :class:`~torchlstm_params.results.Report`: the only tabulate user.

A report is laid out once as *parts* (tables and text blocks, :func:`report_parts`);
:func:`render_report` turns them into text in any ``tabulate`` format and
:mod:`torchlstm_params.display` into HTML and Markdown. Options go to each ``tabulate``
call; no module-level tabulate setting is changed.

What a default rendering shows (the same in Python and on the command line): modules
down to :data:`DEFAULT_DEPTH`, alike siblings folded into one line, every recurrent
module (alike ones folded), their compute when a batch was given, every problem, and
the totals. ``explain=True`` adds the per-layer breakdown and the derivations; a
mismatched module's breakdown is always shown, with the wrong cells marked.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from tabulate import tabulate

from .crosscheck import format_shape
from .errors import InvalidSettingsError
from .fold import PATH_LIMIT, Line, RecurrentGroup, module_lines, recurrent_groups, shown_path
from .formulas import RNNSpec, TensorSpec
from .names import parse_tensor_name

if TYPE_CHECKING:
    from .crosscheck import TensorFinding
    from .distributed import LocalFigures
    from .results import CheckResult, RecurrentEntry, Report

__all__ = [
    "DEFAULT_DEPTH",
    "PATH_LIMIT",
    "Table",
    "Text",
    "check_lines",
    "compute_table",
    "format_bytes",
    "format_count",
    "module_table",
    "paint",
    "rank_table",
    "recurrent_tables",
    "render_parts",
    "render_report",
    "report_parts",
    "resolve_depth",
    "shown_path",
]

#: The module table's depth when neither the report nor the caller sets one (Lightning shows 1, torchinfo 3).
DEFAULT_DEPTH: Final = 2
#: The mark of a tensor (a cell of the breakdown) that differs from the formula.
WRONG: Final = "✗"

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")
_COUNT_UNITS = (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3))
_COLORS: Final = {"ok": "32", "explained": "33", "packed": "36", "mismatch": "1;31", "warning": "33", "error": "1;31"}
_ROLES: Final = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")

Depth = int | None | Literal["auto"]


@dataclass(frozen=True, slots=True)
class Table:
    """A table part: headers, rows of text cells, and each column's alignment."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    colalign: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Text:
    """A text part: lines shown as they are (``note``: it explains the table just above it)."""

    lines: tuple[str, ...]
    note: bool = False


Part = Table | Text

_PIPE_FORMATS: Final = frozenset({"github", "pipe"})  # Markdown tables, where a backslash escapes a pipe

_WIDTH: Final = 110  # notes are wrapped to this many characters
# Text formats in which a note may follow its table on the next line (in Markdown it would join the table).
_PLAIN_FORMATS: Final = frozenset(
    {"simple", "plain", "grid", "simple_grid", "rounded_grid", "heavy_grid", "mixed_grid", "double_grid"}
    | {"fancy_grid", "outline", "simple_outline", "rounded_outline", "psql", "presto", "pretty", "rst"}
)


def _note(*paragraphs: str) -> Text:
    """Notes under a table, each paragraph wrapped to :data:`_WIDTH` characters."""
    lines: list[str] = []
    for paragraph in paragraphs:
        lines.extend(textwrap.wrap(paragraph, _WIDTH, subsequent_indent="  ", break_on_hyphens=False))
    return Text(tuple(lines), note=True)


def format_bytes(n: int) -> str:
    """Exact bytes, with a rounded binary unit marked as approximate.

    >>> format_bytes(23360), format_bytes(512)
    ('23,360 B (≈22.8 KiB)', '512 B')
    """
    if n < 1024:
        return f"{n:,} B"
    size = n / 1024
    unit = 0
    while size >= 1024 and unit < len(_UNITS) - 1:
        size /= 1024
        unit += 1
    return f"{n:,} B (≈{size:.1f} {_UNITS[unit]})"


def format_count(n: int) -> str:
    """A count rounded to one decimal of a decimal unit, marked as approximate (exact below 1,000).

    >>> format_count(30_312_345), format_count(999), format_count(999_960), format_count(1_018_112_000)
    ('≈30.3 M', '999', '≈1.0 M', '≈1.0 B')
    """
    if abs(n) < 1000:
        return f"{n:,}"
    for i, (unit, scale) in enumerate(_COUNT_UNITS):
        value = round(abs(n) / scale, 1)
        if value >= 1 or i == len(_COUNT_UNITS) - 1:
            if value >= 1000 and i > 0:
                unit, scale = _COUNT_UNITS[i - 1]
                value = round(abs(n) / scale, 1)
            return f"≈{'-' if n < 0 else ''}{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def paint(text: str, status: str, color: bool) -> str:
    """``text`` in the ANSI colour of ``status`` (ok, explained, packed, mismatch, warning, error) when ``color``."""
    code = _COLORS.get(status)
    if not color or code is None:
        return text
    return f"\x1b[{code}m{text}\x1b[0m"


def resolve_depth(report: Report, max_depth: Depth) -> tuple[int | None, bool]:
    """(depth limit, whether it was asked for): ``"auto"`` is the report's own ``max_depth``, else
    :data:`DEFAULT_DEPTH` for the module table alone; an int limits every section; ``None`` is all."""
    if max_depth == "auto":
        if report.max_depth is not None:
            return report.max_depth, True
        return DEFAULT_DEPTH, False
    if max_depth is not None and (isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0):
        raise InvalidSettingsError(f"max_depth must be 'auto', None or an int >= 0, got: {max_depth!r}")
    return max_depth, max_depth is not None


SHORTENED_NOTE = (
    f"Paths over {PATH_LIMIT} characters are shortened: …(N more) stands for N names left out "
    "(to_dict() and JSON output keep them whole)."
)


def _where(path: str) -> str:
    """A module path as messages show it: quoted, so that ``'1'`` does not read like a count."""
    return f"'{shown_path(path)}'" if path else "(root)"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _percent(part: int, total: int) -> str:
    if total <= 0:
        return "—"
    share = 100 * part / total
    if 0 < share < 0.05:
        return "<0.1%"
    return f"{share:.1f}%"


def _module_cells(line: Line, report: Report, pruned: dict[str, list[tuple[int, int | None]]]) -> tuple[str, ...]:
    label = line.shown or "(root)"
    if line.count > 1 and not line.own:
        label += f" ×{line.count:,}"
    params = f"{line.params:,}"
    if line.count > 1:
        params += f" ({line.each:,} each)"
    if line.uninitialized_each:
        params += f" + {line.uninitialized_each * line.count:,} uninitialized"
    held = pruned.get(line.path) if pruned and not line.own else None
    if held:
        kept = [k for _, k in held]
        if all(k is not None for k in kept):
            params += f" (pruned: {sum(k or 0 for k in kept) * line.count:,} kept)"
        else:
            params += " (pruned: masks on meta, not read)"
    kind = line.type if len(line.type) <= 48 else line.type[:47] + "…"
    trainable = f"{line.trainable_params:,}" if report.trainable_recorded else "not recorded"
    return (label, kind, params, _percent(line.params, report.total_params), trainable)


def _module_parts(report: Report, limit: int | None, fold: bool) -> list[Part]:
    lines, hidden = module_lines(report, limit, fold)
    pruned: dict[str, list[tuple[int, int | None]]] = {}
    for p in report.pruned:
        pruned.setdefault(p.name.rpartition(".")[0], []).append((p.params, p.kept))
    table = Table(
        ("Module", "Type", "Params", "%", "Trainable"),
        tuple(_module_cells(line, report, pruned) for line in lines),
        ("left", "left", "right", "right", "right"),
    )
    parts: list[Part] = [table]
    notes = []
    if any(line.count > 1 for line in lines):
        notes.append("×N: N alike modules (same class, settings and counts) folded into one line.")
    if any(line.own for line in lines):
        notes.append("(own): parameters a module registers itself, beside its children's.")
    if hidden:
        notes.append(
            f"{hidden:,} more module{'s' if hidden != 1 else ''} below depth {limit} "
            "(render(max_depth=None) or --depth all shows them)."
        )
    if any(line.shortened for line in lines):
        notes.append(SHORTENED_NOTE)
    if notes:
        parts.append(_note(*notes))
    return parts


def module_table(report: Report, tablefmt: str = "simple", *, max_depth: Depth = None, fold: bool = False) -> str:
    """One row per module (all of them by default): subtree counts, shared tensors counted once."""
    limit, _ = resolve_depth(report, max_depth)
    return render_parts(_module_parts(report, limit, fold), tablefmt)


def _group_label(group: RecurrentGroup) -> str:
    return shown_path(group.label) + (f" ×{group.count:,}" if group.count > 1 else "")


def _settings_rows(groups: Sequence[RecurrentGroup], keras: bool, proj: bool, color: bool) -> Table:
    headers = ["Recurrent module", "Kind", "Input", "Hidden", "Layers", "Bidir"] + (["Proj"] if proj else [])
    headers += ["Bias", "Formula", "Tensors", "Status"] + (["Keras"] if keras else [])
    rows = []
    for group in groups:
        e = group.first
        s = e.spec
        row = [_group_label(group), s.kind, f"{s.input_size:,}", f"{s.hidden_size:,}", str(s.num_layers)]
        row += [_yes(s.bidirectional)] + ([str(s.proj_size)] if proj else [])
        row += [_yes(s.bias), f"{e.formula_params:,}", f"{e.tensor_params:,}", paint(e.status, e.status, color)]
        if keras:
            if e.formula.keras_params is not None:
                row.append(f"{e.formula.keras_params:,}")
            else:
                row.append("n/a (proj_size)" if isinstance(s, RNNSpec) else "n/a")
        rows.append(tuple(row))
    align = ["left", "left", "right", "right", "right", "left"] + (["right"] if proj else [])
    align += ["left", "right", "right", "left"] + (["right"] if keras else [])
    return Table(tuple(headers), tuple(rows), tuple(align))


def _keras_wording(e: RecurrentEntry) -> str:
    if e.spec.kind in ("GRU", "GRUCell"):
        return "Keras, reset_after=True: an input and a recurrent bias per gate"
    return "Keras: one bias per gate"


def _breakdown_cell(t: TensorSpec, finding: TensorFinding | None) -> tuple[str, int, bool]:
    """(text, elements held, differs) of one tensor of the breakdown."""
    if finding is None:
        return f"{t.numel:,}", t.numel, False
    if finding.problem == "wrong_shape" and finding.found_shape is not None:
        held = 1
        for d in finding.found_shape:
            held *= d
        return f"{held:,} {WRONG} ({t.numel:,})", held, True
    if finding.problem == "uninitialized":
        return f"lazy {WRONG} ({t.numel:,})", 0, True
    return f"absent {WRONG} ({t.numel:,})", 0, True


def _breakdown(groups: Sequence[RecurrentGroup]) -> Table:
    """Per layer and direction, what each tensor holds; a cell that differs from the formula is marked."""
    show_hr = any(g.first.spec.proj_size for g in groups) or any(
        f.tensor.startswith("weight_hr") for g in groups for f in g.first.findings
    )
    roles = _ROLES if show_hr else _ROLES[:4]
    rows = []
    for group in groups:
        e = group.first
        by_name = {f.tensor: f for f in e.findings}
        extra: dict[tuple[int, bool, str], int] = {}
        for f in e.findings:
            parsed = parse_tensor_name(f.tensor)
            if f.problem == "unexpected" and parsed is not None and f.found_shape is not None:
                held = 1
                for d in f.found_shape:
                    held *= d
                key = (parsed.layer or 0, parsed.reverse, parsed.role)
                extra[key] = extra.get(key, 0) + held
        for layer in e.formula.layers:
            cells = []
            total, differs = 0, False
            reverse = layer.direction == "reverse"
            for role in roles:
                tensor = next((t for t in layer.tensors if t.role == role), None)
                more = extra.pop((layer.layer, reverse, role), 0)
                if tensor is None:
                    text, held, wrong = ("0", 0, False) if not more else (f"+{more:,} {WRONG}", more, True)
                else:
                    text, held, wrong = _breakdown_cell(tensor, by_name.get(tensor.name))
                    if more:
                        text, held, wrong = f"{text} +{more:,} {WRONG}", held + more, True
                cells.append(text)
                total += held
                differs |= wrong
            total_text = f"{total:,} {WRONG} ({layer.params:,})" if differs or total != layer.params else f"{total:,}"
            last = layer.layer + layer.repeat - 1
            which = str(layer.layer) if layer.repeat == 1 else f"{layer.layer}-{last:,} (each)"
            rows.append((_group_label(group), which, layer.direction, *cells, total_text))
    headers = ("Recurrent module", "Layer", "Direction", *roles, "Total")
    return Table(headers, tuple(rows), ("left", "right", "left") + ("right",) * (len(roles) + 1))


def _parts_table(groups: Sequence[RecurrentGroup]) -> Table:
    """Per layer of each described (hand-written) recurrence: its parts, their closed forms and counts."""
    rows = []
    for group in groups:
        spec = group.first.spec
        assert not isinstance(spec, RNNSpec)
        for layer in spec.layers:
            direction = "both (shared)" if spec.shared_directions and spec.bidirectional else layer.direction
            for part in layer.parts:
                rows.append(
                    (_group_label(group), str(layer.layer), direction, part.role, part.expression, f"{part.params:,}")
                )
    headers = ("Described module", "Layer", "Direction", "Part", "Closed form", "Params")
    return Table(headers, tuple(rows), ("left", "right", "left", "left", "left", "right"))


def recurrent_tables(
    report: Report, tablefmt: str = "simple", *, keras: bool = False, explain: bool = True, fold: bool = False
) -> str:
    """The recurrent modules' settings and counts, then (``explain``) their per-layer breakdown."""
    groups, _ = recurrent_groups(report.recurrent, None, fold)
    return render_parts(_recurrent_parts(groups, [], None, keras=keras, explain=explain, color=False), tablefmt)


def _recurrent_parts(
    groups: Sequence[RecurrentGroup],
    hidden: Sequence[RecurrentEntry],
    limit: int | None,
    *,
    keras: bool,
    explain: bool,
    color: bool,
) -> list[Part]:
    parts: list[Part] = []
    proj = any(g.first.spec.proj_size for g in groups)
    if groups:
        parts.append(_settings_rows(groups, keras, proj, color))
        legend = [
            "Formula: the count the settings give (PyTorch: two bias vectors per gate group, bias_ih and bias_hh). "
            "Tensors: the elements the module really holds. Status: ok when they agree, explained or packed "
            "when they differ in a known way, mismatch otherwise."
        ]
        if any(g.count > 1 for g in groups):
            legend.append("×N: N alike recurrent modules; their figures are each one's.")
        if any(len(g.label) > PATH_LIMIT for g in groups):
            legend.append(SHORTENED_NOTE)
        if keras:
            legend.append(
                "Keras: the same layer in Keras's convention (one bias per gate; a GRU with reset_after=True, "
                "Keras 3's default, keeps two)."
            )
        parts.append(_note(*legend))
    if hidden:
        statuses: dict[str, int] = {}
        for e in hidden:
            statuses[e.status] = statuses.get(e.status, 0) + 1
        summary = ", ".join(f"{n:,} {paint(s, s, color)}" for s, n in statuses.items())
        plural = "s" if len(hidden) != 1 else ""
        parts.append(
            _note(
                f"{len(hidden):,} more recurrent module{plural} below depth {limit}: {summary} "
                "(a mismatch is always listed)."
            )
        )
    detailed = [g for g in groups if explain or g.first.findings]
    described = [g for g in detailed if not isinstance(g.first.spec, RNNSpec)]
    detailed = [g for g in detailed if isinstance(g.first.spec, RNNSpec)]
    if described:  # hand-written layers: their parts, not torch's tensors
        parts.append(_parts_table(described))
    if detailed:
        parts.append(_breakdown(detailed))
        if any(g.first.findings for g in detailed):
            parts.append(
                _note(
                    f"{WRONG}: this tensor differs from the formula; the cell shows what the module holds, "
                    "the formula's size in brackets."
                )
            )
    return parts


def _compute_parts(groups: Sequence[RecurrentGroup]) -> list[Part]:
    costed = [g for g in groups if g.first.compute is not None and g.first.state is not None]
    if not costed:
        return []
    rows = []
    fused = []
    cells = False
    for group in costed:
        e = group.first
        c, state = e.compute, e.state
        assert c is not None
        assert state is not None
        saved = "n/a" if e.saved is None else f"{e.saved.bytes:,}"
        if e.saved is not None and e.saved.fused_on_cpu:
            saved += "*"
            fused.append(group.label)
        returned = f"n/a ({state.elements:,} elements)" if state.bytes is None else f"{state.bytes:,}"
        token_text = f"{c.tokens:,}"
        if e.spec.is_cell:
            token_text += "†"
            cells = True
        rows.append(
            (
                _group_label(group),
                token_text,
                f"{c.step_macs:,}",
                f"{c.forward_macs:,}",
                f"{c.training_macs:,}",
                f"{c.forward_elementwise:,}",
                returned,
                saved,
            )
        )
    headers = (
        "Recurrent module",
        "Tokens",
        "MACs/token",
        "Fwd MACs",
        "Train MACs",
        "Elementwise",
        "Returned (bytes)",
        "Saved for bwd (bytes)",
    )
    notes = [
        "Every figure of a row is for that module's tokens (batch x its seq_len, or the sum of packed lengths): "
        "MACs count matrix products incl. projection (1 MAC = 2 FLOPs), elementwise ops apart; training = forward "
        "+ 2x forward for backward. Returned: the output and final states. Saved for bwd: what autograd keeps "
        "from one training call of torch's native recurrence, no initial state passed (torchlstm_params.estimates); "
        "n/a where the forward is not torch's own recurrence alone (dynamic-quantized, quantizable, registered, "
        "overridden, parametrized or hooked), torch has no kernel for that call in the module's dtype (float8, "
        "complex32; complex relu or dropout), or a cell loops over a packed batch."
    ]
    if cells:
        notes.append(
            "† a cell, assumed to take one step per token: seq_len calls on the batch, each given the previous "
            "call's states."
        )
    if fused:
        notes.append(
            f"* {', '.join(fused)}: on the CPU, float32 runs oneDNN, which saves its own workspace instead "
            "(measured at 28 KiB or more, about 4x the gate activations)."
        )
    described = [g.label for g in groups if not isinstance(g.first.spec, RNNSpec)]
    if described:
        names = ", ".join(_where(m) for m in described)
        notes.append(f"Not costed (hand-written recurrences, whose compute is their own): {names}.")
    missing = [g.label for g in groups if g.first.compute is None and isinstance(g.first.spec, RNNSpec)]
    if missing:
        notes.append(f"Not costed (no seq_len given for them): {', '.join(_where(m) for m in missing)}.")
    return [Table(headers, tuple(rows), ("left",) + ("right",) * 7), _note(*notes)]


def compute_table(report: Report, tablefmt: str = "simple") -> str:
    """MACs, elementwise ops, returned and saved bytes for the batch ``summarize`` was given."""
    groups, _ = recurrent_groups(report.recurrent, None, fold=False)
    return render_parts(_compute_parts(groups), tablefmt)


def rank_table(figures: tuple[LocalFigures, ...], tablefmt: str = "simple") -> str:
    """Per-rank local elements, bytes and device (from :func:`torchlstm_params.gather_ranks`)."""
    rows = [(f.rank, f"{f.local_params:,}", f"{f.local_bytes:,}", f.device, len(f.sharded)) for f in figures]
    return tabulate(
        rows,
        headers=("Rank", "Local params", "Local bytes", "Device", "Sharded tensors"),
        tablefmt=tablefmt,
        disable_numparse=True,
        colalign=("right", "right", "right", "left", "right"),
    )


def _derivations(groups: Sequence[RecurrentGroup], keras: bool) -> list[str]:
    lines = list(
        _note(
            "Derivations: [...] is one layer in one direction, the factor before it the number of alike ones "
            "(PyTorch keeps two bias vectors per gate group, bias_ih and bias_hh):"
        ).lines
    )
    for group in groups:
        e = group.first
        label = _group_label(group)
        lines.append(f"  {label}: {e.formula.derivation}")
        if not isinstance(e.spec, RNNSpec):
            pad = " " * len(label)
            lines.append(f"  {pad}  {e.spec.kind}, gate groups {e.spec.gate_groups}: {e.spec.closed_form}")
            if e.spec.note:
                lines.append(f"  {pad}  ({e.spec.note})")
        if keras and e.formula.keras_derivation is not None:
            lines.append(f"  {' ' * len(label)}  {_keras_wording(e)}: {e.formula.keras_derivation}")
    return lines


def _problems(groups: Sequence[RecurrentGroup], color: bool) -> list[str]:
    lines = []
    for group in groups:
        e = group.first
        where = f"{_where(group.label) if group.label != '(root)' else '(root)'}"
        if group.count > 1:
            where += f" ×{group.count:,}"
        where += f" ({e.type})"
        if e.findings:
            head = paint("MISMATCH", "mismatch", color)
            lines.append(f"{head} at {where}: formula {e.formula_params:,}, tensors {e.tensor_params:,}")
            lines.extend(f"  - {finding.message()}" for finding in e.findings)
        if e.explanations:
            head = paint("EXPLAINED", "explained", color)
            lines.append(f"{head} at {where}: formula {e.formula_params:,}, tensors {e.tensor_params:,}")
            lines.extend(f"  - {explanation.message}" for explanation in e.explanations)
    return lines


def _footer(report: Report) -> list[str]:
    def counted(label: str, n: int, said: str = "") -> str:
        parts = ([format_count(n)] if n >= 1000 else []) + ([said] if said else [])
        return f"{label}: {n:,}" + (f" ({'; '.join(parts)})" if parts else "")

    packed = report.packed_params
    if packed:
        modules = len(report.packed_modules) + sum(e.packed is not None for e in report.recurrent)
        plural = "s" if modules != 1 else ""
        lines = [
            counted("Total params", report.total_params, "what parameters() yields; quantization packs weights out"),
            counted("Logical params", report.logical_params, f"{packed:,} held packed by {modules:,} module{plural}"),
        ]
    else:
        lines = [counted("Total params", report.total_params)]
    if report.trainable_recorded:
        lines += [
            counted("Trainable params", report.trainable_params),
            counted("Non-trainable params", report.non_trainable_params),
        ]
    else:
        lines.append("Trainable params: not recorded (a state dict does not record which parameters train)")
    if report.pruned:
        held = sum(p.params for p in report.pruned)
        effective = report.effective_params
        if effective is None:
            lines.append(
                f"Pruned (torch.nn.utils.prune): {len(report.pruned):,} tensors hold {held:,} params; their masks are "
                "on meta, so what they keep is not known"
            )
        else:
            kept = sum(p.kept or 0 for p in report.pruned)
            lines.append(
                f"Pruned (torch.nn.utils.prune): {len(report.pruned):,} tensors hold {held:,} params, their masks keep "
                f"{kept:,} (read from the mask values); effective total {effective:,} ({format_count(effective)})"
            )
    if report.uninitialized:
        names = ", ".join(report.uninitialized)
        lines.append(f"Uninitialized (lazy) tensors, not counted: {len(report.uninitialized)} ({names})")
    dtypes = ", ".join(f"{d.dtype} {d.bytes:,} B" for d in report.dtypes) or "none"
    lines.append(f"Params size: {format_bytes(report.param_bytes)} [{dtypes}]")
    buffers = f"{report.buffer_count:,} tensors, {report.buffer_elements:,} elements"
    lines.append(f"Buffers: {buffers}, {format_bytes(report.buffer_bytes)}")
    if report.local is not None:
        local = report.local
        lines.append(
            f"This rank ({local.rank} of {local.world_size}, {local.device}): {local.local_params:,} local params, "
            f"{format_bytes(local.local_bytes)}; {len(local.sharded):,} sharded tensors (counts above are global)"
        )
        for shard in local.sharded[:10]:
            where = f"global {format_shape(shard.global_shape)}, here {format_shape(shard.local_shape)}"
            lines.append(f"  {shard.name}: {shard.placements}, {where}")
        if len(local.sharded) > 10:
            lines.append(f"  ... {len(local.sharded) - 10:,} more (report.local.sharded has them all)")
    for shared in report.shared:
        lines.append(f"Shared tensor, counted once: {' = '.join(shared.names)}")
    for alias in report.aliases:
        lines.append(f"Module registered twice, counted once: {_where(alias.path)} is {_where(alias.same_as)}")
    return lines


def _hints(report: Report) -> list[str]:
    lines = ["Looks recurrent, not recognised (counted in totals, never cross-checked):"]
    for hint in report.hints:
        lines.append(f"  {_where(hint.path)} ({hint.type}): {hint.reason}. To cover it:")
        lines.extend(f"    {line}" if line else "" for line in hint.snippet.splitlines())
    return lines


def report_parts(
    report: Report,
    *,
    keras: bool = False,
    explain: bool = False,
    max_depth: Depth = "auto",
    fold: bool = True,
    color: bool = False,
) -> list[Part]:
    """The whole report as parts: modules, recurrent modules, compute, problems, derivations, totals."""
    limit, asked = resolve_depth(report, max_depth)
    parts: list[Part] = []
    if report.wrappers:
        parts.append(
            Text((f"Wrapped by {' > '.join(report.wrappers)}; names are shown without the wrappers' prefixes.",))
        )
    parts.extend(_module_parts(report, limit, fold))
    groups, hidden = recurrent_groups(report.recurrent, limit if asked else None, fold)
    if report.recurrent:
        parts.extend(_recurrent_parts(groups, hidden, limit, keras=keras, explain=explain, color=color))
        parts.extend(_compute_parts(groups))
    problems = _problems(groups, color)
    if problems:
        parts.append(Text(tuple(problems)))
    if report.hints:
        parts.append(Text(tuple(_hints(report))))
    if explain and groups:
        parts.append(Text(tuple(_derivations(groups, keras))))
    parts.append(Text(tuple(_footer(report))))
    if report.check is not None:
        parts.append(Text(tuple(check_lines(report.check))))
    return parts


def check_lines(result: CheckResult) -> list[str]:
    """The sanity check: one headline, every problem (errors, then warnings), what ran and how much was scanned."""
    lines = [result.headline()]
    lines.extend(f"  {p}" for p in result.errors)
    lines.extend(f"  {p}" for p in result.warnings)
    ran = [part for part, how in result.ran.items() if how is True]
    not_asked = [part for part, how in result.ran.items() if how is False]
    parts = f"  Checked: {', '.join(ran) or 'nothing'}"
    if not_asked:
        parts += f"; not asked: {', '.join(not_asked)}"
    lines.append(parts)
    if result.values is not None:
        lines.append(f"  Values: {result.values.describe()}")
    return lines


def _cells(rows: tuple[tuple[str, ...], ...], tablefmt: str) -> list[tuple[str, ...]]:
    """Rows for a Markdown table, where a ``|`` inside a cell (a module named ``a|b``) would split it: escaped."""
    if tablefmt not in _PIPE_FORMATS:
        return list(rows)
    return [tuple(cell.replace("|", "\\|") for cell in row) for row in rows]


def render_parts(parts: Iterable[Part], tablefmt: str = "simple") -> str:
    """Parts as text: tables in ``tablefmt``, text blocks as they are, a blank line between parts."""
    parts = list(parts)
    out = []
    for part in parts:
        if isinstance(part, Table):
            out.append(
                tabulate(
                    _cells(part.rows, tablefmt),
                    headers=list(part.headers),
                    tablefmt=tablefmt,
                    colalign=part.colalign,
                    disable_numparse=True,
                )
            )
        else:
            out.append("\n".join(part.lines))
    return "\n\n".join(_merge_notes(out, parts) if tablefmt in _PLAIN_FORMATS else out)


def _merge_notes(texts: list[str], parts: Iterable[Part]) -> list[str]:
    """A note right after a table is joined to it with one line break, not a blank line."""
    merged: list[str] = []
    previous_table = False
    for text, part in zip(texts, parts, strict=True):
        if isinstance(part, Text) and part.note and previous_table and merged:
            merged[-1] += "\n" + text
        else:
            merged.append(text)
        previous_table = isinstance(part, Table)
    return merged


def render_report(
    report: Report,
    tablefmt: str = "simple",
    *,
    keras: bool = False,
    explain: bool = False,
    max_depth: Depth = "auto",
    fold: bool = True,
    color: bool = False,
) -> str:
    """The whole report as text (see :func:`report_parts` and :meth:`Report.render`)."""
    parts = report_parts(report, keras=keras, explain=explain, max_depth=max_depth, fold=fold, color=color)
    return render_parts(parts, tablefmt)
