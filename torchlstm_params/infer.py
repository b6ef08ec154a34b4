"""Recurrent settings from tensor names and shapes alone (what a state dict holds).

:func:`infer` is given the tensors of one module path that are named in torch's
recurrent grammar (:mod:`torchlstm_params.names`), by their logical names and
shapes, and answers with one of:

- a :class:`~torchlstm_params.formulas.RNNSpec`, when exactly one torch kind and
  setting fits *every* tensor given: each one's name is in that setting's formula
  and its shape is the formula's. Tensors the formula has and the module lacks
  are allowed (the cross-check reports them as missing);
- no spec and a reason, when no setting fits (a custom cell named like torch's,
  a 1-D ``weight_hh_l0``, two gate groups, ``proj_size >= hidden_size``...) or
  several do (only possible with tensors missing, e.g. a one-layer
  ``weight_hh_l0`` deleted leaves LSTM(h) and RNN(4h) both possible).

Nothing is sized from a layer number alone: ``num_layers`` is the run of layers
present from layer 0; layers past a gap are reported, never built (a key named
``weight_ih_l99999999`` costs what any other key costs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .errors import InvalidSettingsError
from .formulas import RNNSpec, expected_tensors, make_spec
from .names import TensorName, parse_tensor_name

__all__ = ["Inference", "infer", "shape_text"]

Shape = tuple[int, ...]

#: Problem codes :func:`infer` reports (documented with the others in ``sanity.CODES``).
UNRECOGNISED: Final = "RNN_UNRECOGNISED"
MISSING: Final = "RNN_TENSOR_MISSING"

_FULL_KINDS: Final = ("LSTM", "GRU", "RNN_TANH")
_CELL_KINDS: Final = ("LSTMCell", "GRUCell", "RNNCell")
_GATES: Final = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "LSTMCell": 4, "GRUCell": 3, "RNNCell": 1}
_SHOWN: Final = 8  # tensors named in one message before "and N more"


@dataclass(frozen=True, slots=True)
class Inference:
    """What the names and shapes say; messages do not name the module (the caller does).

    ``problems`` are ``(code, message)`` pairs; ``notes`` are said whatever the code.
    """

    spec: RNNSpec | None
    notes: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()


def shape_text(shape: Shape) -> str:
    """``(80, 20)``, ``(80,)``."""
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _listing(found: Mapping[str, Shape], names: list[str] | None = None) -> str:
    chosen = list(found) if names is None else names
    text = ", ".join(f"{n} {shape_text(found[n])}" for n in chosen[:_SHOWN])
    if len(chosen) > _SHOWN:
        text += f" and {len(chosen) - _SHOWN:,} more"
    return text


def _ranges(numbers: list[int]) -> str:
    """``[2, 4, 5, 6]`` -> ``2, 4 to 6``."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(f"{start:,}" if start == prev else f"{start:,} to {prev:,}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


def _gaps(present: list[int]) -> list[tuple[int, int]]:
    """Missing (first, last) layer ranges between the sorted layer numbers ``present`` (0 included)."""
    out = []
    expected = 0
    for layer in present:
        if layer > expected:
            out.append((expected, layer - 1))
        expected = layer + 1
    return out


def _hidden_options(
    kind: str, found: Mapping[str, Shape], parsed: Mapping[str, TensorName], directions: int
) -> tuple[list[int], int]:
    """Hidden sizes worth trying for ``kind``, and the projection size, from the tensors present."""
    hr = [found[n] for n, p in parsed.items() if p.role == "weight_hr"]
    if hr:
        return [hr[0][1]], hr[0][0]
    hh = [found[n] for n, p in parsed.items() if p.role == "weight_hh"]
    if hh:
        return [hh[0][1]], 0
    upper = [found[n] for n, p in parsed.items() if p.role == "weight_ih" and p.layer]
    if upper:  # layer k > 0 sees the layer below's output: D * h without projection
        width = upper[0][1]
        return ([width // directions] if width % directions == 0 else []), 0
    g = _GATES[kind]
    rows = {found[n][0] for n, p in parsed.items() if p.role != "weight_hr"}
    return sorted(r // g for r in rows if r % g == 0), 0


def _misfits(spec: RNNSpec, found: Mapping[str, Shape]) -> list[str]:
    """How the tensors of ``found`` differ from ``spec``'s formula (empty: every one is in it, with its shape)."""
    expected = {t.name: t.shape for t in expected_tensors(spec)}
    out = []
    for name, shape in found.items():
        want = expected.get(name)
        if want is None:
            out.append(f"no {name}")
        elif want != shape:
            out.append(f"{name} {shape_text(want)}, not {shape_text(shape)}")
    return out


def _label(spec: RNNSpec) -> str:
    kind = "RNN" if spec.kind == "RNN_TANH" else spec.kind
    extra = ""
    if not spec.is_cell:
        extra += f", num_layers={spec.num_layers}" if spec.num_layers > 1 else ""
        extra += ", bidirectional=True" if spec.bidirectional else ""
        extra += f", proj_size={spec.proj_size}" if spec.proj_size else ""
    extra += "" if spec.bias else ", bias=False"
    return f"{kind}({spec.input_size}, {spec.hidden_size}{extra})"


def _unrecognised(found: Mapping[str, Shape], why: str) -> Inference:
    message = (
        f"tensors named like a torch recurrent module's ({_listing(found)}) fit no torch LSTM/GRU/RNN setting "
        f"({why}); counted as plain parameters"
    )
    return Inference(None, (message,), ((UNRECOGNISED, message),))


def infer(found: Mapping[str, Shape]) -> Inference:
    """The one torch setting that fits every tensor of ``found`` (torch name -> logical shape), or why none does.

    >>> infer({"weight_ih_l0": (8, 3), "weight_hh_l0": (8, 2)}).spec
    RNNSpec(kind='LSTM', input_size=3, hidden_size=2, num_layers=1, bias=False, bidirectional=False, proj_size=0)
    >>> infer({"weight_ih": (60, 20), "weight_hh": (20, 20)}).problems[0][0]
    'RNN_UNRECOGNISED'
    """
    parsed: dict[str, TensorName] = {}
    for name in found:
        p = parse_tensor_name(name)
        if p is None:
            raise ValueError(f"{name!r} is not a torch recurrent tensor name")  # the caller's mistake
        parsed[name] = p
    for name, p in parsed.items():
        rank = 1 if p.role.startswith("bias") else 2
        if len(found[name]) != rank or 0 in found[name]:
            what = f"{len(found[name])}-D" if len(found[name]) != rank else "empty"
            return _unrecognised(found, f"{name} is {what}, torch's {p.role} is {rank}-D and not empty")
    cells = {p.layer is None for p in parsed.values()}
    if len(cells) > 1:
        return _unrecognised(found, "a cell's names (no _l suffix) mixed with a layered module's")
    is_cell = cells == {True}
    notes: list[str] = []
    problems: list[tuple[str, str]] = []
    num_layers = 1
    beyond: list[str] = []
    if not is_cell:
        present = sorted({p.layer for p in parsed.values() if p.layer is not None})
        while num_layers < len(present) and present[num_layers] == num_layers:
            num_layers += 1
        if present[0] != 0:
            return _unrecognised(found, f"no layer 0 (layers found: {_ranges(present)})")
        gaps = _gaps(present)
        if gaps:
            beyond = [n for n, p in parsed.items() if p.layer is not None and p.layer >= num_layers]
            missing = ", ".join(f"{a:,}" if a == b else f"{a:,} to {b:,}" for a, b in gaps)
            message = (
                f"no tensors for layer(s) {missing}, below layer(s) found up to {present[-1]:,}; num_layers is "
                f"taken as {num_layers:,} (the layers present from 0), and the tensors past the gap are unexpected: "
                f"{_listing(found, beyond)}"
            )
            notes.append(message)
            problems.append((MISSING, message))
    skipped = set(beyond)
    within = {n: s for n, s in found.items() if n not in skipped}
    in_parsed = {n: parsed[n] for n in within}
    input_name = "weight_ih" if is_cell else "weight_ih_l0"
    if input_name not in within:
        message = (
            f"{input_name} is missing, so input_size cannot be read; the other tensors "
            f"({_listing(within)}) are counted as plain parameters"
        )
        return Inference(None, (*notes, message), (*problems, (MISSING, message)))
    input_size = within[input_name][1]
    bidirectional = any(p.reverse for p in in_parsed.values())
    directions = 2 if bidirectional else 1
    bias = any(p.role.startswith("bias") for p in in_parsed.values())
    fitting: list[RNNSpec] = []
    closest: tuple[int, str] | None = None  # (misfits, why) of the nearest setting that does not fit
    refused: list[str] = []
    for kind in _CELL_KINDS if is_cell else _FULL_KINDS:
        hiddens, proj = _hidden_options(kind, within, in_parsed, directions)
        if proj and _GATES[kind] != 4:
            continue  # weight_hr: only an LSTM projects
        for hidden in hiddens:
            try:
                spec = make_spec(
                    kind, input_size, hidden, num_layers, bias=bias, bidirectional=bidirectional, proj_size=proj
                )
            except InvalidSettingsError as exc:
                refused.append(str(exc))
                continue
            misfits = _misfits(spec, within)
            if not misfits:
                fitting.append(spec)
            elif closest is None or len(misfits) < closest[0]:
                shown = "; ".join(misfits[:3]) + (f" and {len(misfits) - 3} more" if len(misfits) > 3 else "")
                closest = (len(misfits), f"closest is {_label(spec)}, which has {shown}")
    if not fitting:
        why = closest[1] if closest is not None else "; ".join(refused) or "no hidden size fits the widths"
        return _unrecognised(found, why)
    if len(fitting) > 1:
        names = {t.name for t in expected_tensors(fitting[0])}
        absent = sorted(names - set(within))
        message = (
            f"{', '.join(absent)} missing; the tensors present fit {' or '.join(_label(s) for s in fitting)}, so "
            "the kind cannot be told from shapes; counted as plain parameters"
        )
        return Inference(None, (*notes, message), (*problems, (MISSING, message)))
    return Inference(fitting[0], tuple(notes), tuple(problems))
