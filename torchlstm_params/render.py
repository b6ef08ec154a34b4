"""Text rendering of a :class:`~torchlstm_params.report.Report`: the only tabulate user.

Options go to each ``tabulate`` call; no module-level tabulate setting is changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tabulate import tabulate

from .crosscheck import format_shape

if TYPE_CHECKING:
    from .distributed import LocalFigures
    from .results import RecurrentEntry, Report

__all__ = ["compute_table", "format_bytes", "module_table", "rank_table", "recurrent_tables", "render_report"]

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


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


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def module_table(report: Report, tablefmt: str = "simple") -> str:
    """One row per module: subtree parameter counts, shared tensors counted once."""
    rows = []
    for row in report.rows:
        params = f"{row.params:,}"
        if row.uninitialized:
            params += f" + {row.uninitialized} uninitialized"
        rows.append((row.name or "(root)", row.type, row.depth, params, f"{row.trainable_params:,}"))
    return tabulate(
        rows,
        headers=("Module", "Type", "Depth", "Params", "Trainable"),
        tablefmt=tablefmt,
        colalign=("left", "left", "right", "right", "right"),
        disable_numparse=True,
    )


def _settings_row(e: RecurrentEntry, keras: bool) -> tuple[object, ...]:
    row: tuple[object, ...] = (
        e.name or "(root)",
        e.spec.kind,
        e.spec.input_size,
        e.spec.hidden_size,
        e.spec.num_layers,
        _yes(e.spec.bidirectional),
        e.spec.proj_size,
        _yes(e.spec.bias),
        f"{e.formula_params:,}",
        f"{e.tensor_params:,}",
        e.status,
    )
    if keras:
        row += ("n/a (proj_size)" if e.formula.keras_params is None else f"{e.formula.keras_params:,}",)
    return row


def recurrent_tables(report: Report, tablefmt: str = "simple", *, keras: bool = False) -> str:
    """The recurrent modules' settings and counts, then their per-layer breakdown."""
    headers = ["Recurrent module", "Kind", "Input", "Hidden", "Layers", "Bidir", "Proj", "Bias"]
    headers += ["Formula", "Tensors", "Status"] + (["Keras"] if keras else [])
    settings = tabulate(
        [_settings_row(e, keras) for e in report.recurrent],
        headers=headers,
        tablefmt=tablefmt,
        disable_numparse=True,
        colalign=("left", "left") + ("right",) * 3 + ("left", "right", "left", "right", "right", "left", "right"),
    )
    layers = []
    for e in report.recurrent:
        for layer in e.formula.layers:
            layers.append(
                (
                    e.name or "(root)",
                    layer.layer,
                    layer.direction,
                    f"{layer.role_params('weight_ih'):,}",
                    f"{layer.role_params('weight_hh'):,}",
                    f"{layer.role_params('bias_ih'):,}",
                    f"{layer.role_params('bias_hh'):,}",
                    f"{layer.role_params('weight_hr'):,}",
                    f"{layer.params:,}",
                )
            )
    per_layer = tabulate(
        layers,
        headers=(
            "Recurrent module",
            "Layer",
            "Direction",
            "weight_ih",
            "weight_hh",
            "bias_ih",
            "bias_hh",
            "weight_hr",
            "Total",
        ),
        tablefmt=tablefmt,
        disable_numparse=True,
        colalign=("left", "right", "left") + ("right",) * 6,
    )
    return settings + "\n\n" + per_layer


def compute_table(report: Report, tablefmt: str = "simple") -> str:
    """MACs, elementwise ops and returned-state sizes for the batch ``summarize`` was given."""
    rows = []
    fused = []
    for e in report.recurrent:
        if e.compute is None or e.state is None:
            continue
        c = e.compute
        saved = "n/a" if e.saved is None else f"{e.saved.bytes:,}"
        if e.saved is not None and e.saved.fused_on_cpu:
            saved += "*"
            fused.append(e.name or "(root)")
        rows.append(
            (
                e.name or "(root)",
                f"{c.step_macs:,}",
                f"{c.forward_macs:,}",
                f"{c.forward_flops:,}",
                f"{c.forward_elementwise:,}",
                f"{c.training_macs:,}",
                f"{e.state.elements:,}",
                saved,
            )
        )
    headers = (
        "Recurrent module",
        "MACs/step",
        "Fwd MACs",
        "Fwd FLOPs",
        "Elementwise",
        "Train MACs",
        "State elems",
        "Saved for bwd B",
    )
    table = tabulate(
        rows, headers=headers, tablefmt=tablefmt, disable_numparse=True, colalign=("left",) + ("right",) * 7
    )
    note = (
        f"Compute for {report.tokens:,} tokens (batch x seq_len, or the sum of packed lengths). MACs: matrix "
        "products incl. projection; elementwise ops counted apart; training = forward + 2x forward (backward). "
        "Saved for bwd: what autograd keeps from one training call on torch's native recurrence, no initial "
        "state passed (see torchlstm_params.activations); n/a where the forward is not torch's own recurrence "
        "alone (dynamic-quantized, quantizable, registered, overridden, parametrized or hooked) or torch has no "
        "kernel for that call in the module's dtype (float8, complex32; complex relu or dropout)."
    )
    if fused:
        note += (
            f" * {', '.join(fused)}: on the CPU, float32 runs oneDNN, which saves its own workspace instead "
            "(measured at 28 KiB or more, about 4x the gate activations)."
        )
    return table + "\n" + note


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


def _explanations(report: Report, keras: bool) -> list[str]:
    lines = ["Derivations (PyTorch keeps two bias vectors per gate group: bias_ih and bias_hh):"]
    for e in report.recurrent:
        lines.append(f"  {e.name or '(root)'}: {e.formula.derivation}")
        if keras and e.formula.keras_derivation is not None:
            lines.append(f"  {' ' * len(e.name or '(root)')}  Keras (one bias per gate): {e.formula.keras_derivation}")
    return lines


def _problems(report: Report) -> list[str]:
    lines = []
    for e in report.recurrent:
        where = f"{e.name or '(root)'} ({e.type})"
        if e.findings:
            lines.append(f"MISMATCH {where}: formula {e.formula_params:,}, tensors {e.tensor_params:,}")
            lines.extend(f"  - {finding.message()}" for finding in e.findings)
        if e.explanations:
            lines.append(f"EXPLAINED {where}: formula {e.formula_params:,}, tensors {e.tensor_params:,}")
            lines.extend(f"  - {explanation.message}" for explanation in e.explanations)
    return lines


def _footer(report: Report) -> list[str]:
    lines = [
        f"Total params: {report.total_params:,}",
        f"Trainable params: {report.trainable_params:,}",
        f"Non-trainable params: {report.non_trainable_params:,}",
    ]
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
        lines.append(f"Module registered twice, counted once: {alias.path} is {alias.same_as or '(root)'}")
    return lines


def render_report(report: Report, tablefmt: str = "simple", *, keras: bool = False, explain: bool = True) -> str:
    """The whole report: module table, recurrent tables, problems, derivations, totals."""
    parts = []
    if report.wrappers:
        parts.append(f"Wrapped by {' > '.join(report.wrappers)}; names are shown without the wrappers' prefixes.")
    parts.append(module_table(report, tablefmt))
    if report.recurrent:
        parts.append(recurrent_tables(report, tablefmt, keras=keras))
        if report.tokens is not None:
            parts.append(compute_table(report, tablefmt))
    problems = _problems(report)
    if problems:
        parts.append("\n".join(problems))
    if explain and report.recurrent:
        parts.append("\n".join(_explanations(report, keras)))
    parts.append("\n".join(_footer(report)))
    return "\n\n".join(parts)
