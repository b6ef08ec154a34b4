"""Text and CSV for Keras and ONNX file reports (:class:`KerasFile`, :class:`OnnxFile`).

``tablefmt`` is any ``tabulate`` format (``simple``, ``github``, ``pipe``); options go to each call,
no module-level tabulate setting is changed. CSV carries the per-layer rows only: the notes, stacks,
derivations and totals that the text carries are left out, and the JSON form (``to_dict``) has them all.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tabulate import tabulate

if TYPE_CHECKING:
    from .keras_file import KerasFile
    from .onnx_file import OnnxFile, OnnxNode

__all__ = ["keras_file_csv", "onnx_file_csv", "render_keras_file", "render_onnx_file"]


def _n(value: int | None, missing: str = "—") -> str:
    return missing if value is None else f"{value:,}"


def _table(
    rows: Sequence[tuple[object, ...]], headers: tuple[str, ...], tablefmt: str, colalign: tuple[str, ...]
) -> str:
    return tabulate(rows, headers=headers, tablefmt=tablefmt, colalign=colalign, disable_numparse=True)


def render_keras_file(report: KerasFile, tablefmt: str = "simple") -> str:
    """Every recurrent layer: Keras count, PyTorch equivalent and count, shape check; then stacks and totals."""
    head = f"Keras file {report.path} ({'Keras 3 .keras' if report.format == 'keras' else 'legacy HDF5 .h5'}"
    head += f", Keras {report.keras_version})" if report.keras_version else ")"
    head += f": {report.model_class} {report.model_name!r}" if report.model_name else f": {report.model_class}"
    lines = [head, ""]
    if not report.layers:
        lines.append("No LSTM, GRU or SimpleRNN layer (nor a Bidirectional around one).")
    else:
        rows = [
            (
                r.layer.path,
                r.layer.label,
                _n(r.layer.input_size),
                r.layer.forward.units,
                _n(r.layer.keras_params),
                r.layer.torch_expression or "none (see notes)",
                _n(r.layer.torch_params),
                r.check,
            )
            for r in report.layers
        ]
        headers = ("Layer", "Keras class", "Input", "Units", "Keras", "PyTorch equivalent", "PyTorch", "Shapes")
        colalign = ("left", "left", "right", "right", "right", "left", "right", "left")
        lines.append(_table(rows, headers, tablefmt, colalign))
        lines.append("")
        lines.append("Keras derivations (one bias vector per gate; a reset_after=True GRU keeps two):")
        lines.extend(f"  {r.layer.path}: {r.layer.keras_derivation}" for r in report.layers)
        for stack in report.stacks:
            names = " + ".join(repr(p) for p in stack.layers)
            lines.append(
                f"Stack {names} is one {stack.torch_expression}: Keras {stack.keras_params:,}, "
                f"PyTorch {stack.torch_params:,}"
            )
        lines.extend(f"Note: layer {r.layer.path!r}: {r.layer.torch_note}" for r in report.layers if r.layer.torch_note)
        lines.append("")
        torch = report.torch_params
        line = (
            f"Recurrent params: Keras {report.keras_params:,}, PyTorch {_n(torch, 'n/a (a layer has no equivalent)')}"
        )
        if torch is not None and torch != report.keras_params:
            line += f" ({torch - report.keras_params:+,}: PyTorch keeps two bias vectors, bias_ih and bias_hh)"
        lines.append(line)
    if report.file_params is not None:
        lines.append(
            f"Weights stored in the file: {report.file_params:,} "
            f"(recurrent {report.file_params - (report.other_params or 0):,}, other layers {_n(report.other_params)})"
        )
    lines.extend(_notes_and_problems(report.notes, report.problems))
    return "\n".join(lines)


def _notes_and_problems(notes: Sequence[str], problems: Sequence[object]) -> list[str]:
    """A file report's closing lines: its notes, then its shape mismatches."""
    lines = [f"Note: {n}" for n in notes]
    if problems:
        lines.append(f"Shape mismatches: {len(problems)}")
        lines.extend(f"  {p}" for p in problems)
    return lines


def keras_file_csv(report: KerasFile) -> str:
    """One CSV row per recurrent layer (notes, stacks and totals are in the text and JSON forms)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            *("layer", "class", "input_size", "units", "bidirectional", "keras_params", "torch_expression"),
            *("torch_params", "stored_params", "shape_check"),
        ]
    )
    for r in report.layers:
        layer = r.layer
        writer.writerow(
            [
                layer.path,
                layer.label,
                layer.input_size,
                layer.forward.units,
                layer.bidirectional,
                layer.keras_params,
                layer.torch_expression or "",
                "" if layer.torch_params is None else layer.torch_params,
                "" if r.stored_params is None else r.stored_params,
                r.check,
            ]
        )
    return out.getvalue().rstrip("\n")


def _settings(node: OnnxNode) -> str:
    parts = [f"layout={node.layout}"]
    if node.op_type == "GRU":
        parts.append(f"linear_before_reset={node.linear_before_reset}")
    if node.activations:
        parts.append("activations=" + ",".join(node.activations))
    if node.clip is not None:
        parts.append(f"clip={node.clip}")
    if node.input_forget:
        parts.append("input_forget=1")
    if node.has_peepholes:
        parts.append("peepholes")
    if not node.has_bias:
        parts.append("no B")
    return " ".join(parts)


def render_onnx_file(report: OnnxFile, tablefmt: str = "simple") -> str:
    """Every recurrent node: settings, stored count, formula, PyTorch equivalent; then the file's totals."""
    head = f"ONNX file {report.path}"
    details = [d for d in (report.producer, None if report.opset is None else f"opset {report.opset}") if d]
    lines = [head + (f" ({', '.join(details)})" if details else ""), ""]
    if report.nodes:
        rows = [
            (
                n.name + (f" [{n.graph}]" if n.graph else ""),
                n.op_type,
                n.direction,
                _n(n.input_size),
                n.hidden_size,
                _settings(n),
                _n(n.params),
                _n(n.formula_params),
                n.torch_expression or "none (see notes)",
                _n(n.torch_params),
                "ok" if not n.problems else "mismatch",
            )
            for n in report.nodes
        ]
        headers = (
            "Node",
            "Op",
            "Direction",
            "Input",
            "Hidden",
            "Settings",
            "Stored",
            "Formula",
            "PyTorch equivalent",
            "PyTorch",
            "Shapes",
        )
        colalign = ("left", "left", "left", "right", "right", "left", "right", "right", "left", "right", "left")
        lines.append(_table(rows, headers, tablefmt, colalign))
        lines.append("")
        for n in report.nodes:
            if n.torch_note:
                lines.append(f"Note: node {n.name!r}: {n.torch_note}")
            lines.extend(f"Note: node {n.name!r}: {note}" for note in n.notes)
    lines.append(
        f"Stored tensors: recurrent weights {report.recurrent_params:,} + initial states {report.state_elements:,} "
        f"+ other float initializers {report.other_params:,} + constants {report.constant_elements:,} "
        f"= {report.total_elements:,} elements"
    )
    lines.extend(_notes_and_problems(report.notes, report.problems))
    return "\n".join(lines)


def onnx_file_csv(report: OnnxFile) -> str:
    """One CSV row per recurrent node (notes and totals are in the text and JSON forms)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            *("node", "graph", "op_type", "direction", "input_size", "hidden_size", "layout", "linear_before_reset"),
            *("bias", "peepholes", "params", "formula_params", "torch_expression", "torch_params", "shape_check"),
        ]
    )
    for n in report.nodes:
        writer.writerow(
            [
                n.name,
                n.graph,
                n.op_type,
                n.direction,
                "" if n.input_size is None else n.input_size,
                n.hidden_size,
                n.layout,
                n.linear_before_reset if n.op_type == "GRU" else "",
                n.has_bias,
                n.has_peepholes,
                "" if n.params is None else n.params,
                "" if n.formula_params is None else n.formula_params,
                n.torch_expression or "",
                "" if n.torch_params is None else n.torch_params,
                "ok" if not n.problems else "mismatch",
            ]
        )
    return out.getvalue().rstrip("\n")
