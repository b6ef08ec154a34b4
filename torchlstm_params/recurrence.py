"""A general description of a gated recurrence: what a hand-written recurrent layer holds.

torch's classes are one shape of recurrence (``g`` gate groups, two bias vectors,
an optional projection). Libraries write others by hand: two gate groups and a
normalisation (speechbrain's LiGRU), no recurrent matrix at all (QuasiRNN), a
3+1 gate split with a residual matrix (neuralforecast's ResLSTM), gates computed
by graph convolutions (torch-geometric-temporal). A :class:`Recurrence` says,
per layer and direction, which **parts** the recurrence holds, each part built by
one of the functions below:

- :func:`gate_matrix` / :func:`gate_matrices`: an input or recurrent matrix of
  ``g`` gate groups, stacked in one tensor or one tensor per gate, and what the
  matrix reads (its width: ``in``, ``h``, ``2h``, ``in+h``...);
- :func:`bias_vectors`: none, one or two (or more) bias vectors per layer;
- :func:`peepholes`, :func:`projection`, :func:`norm`: peepholes, projections
  and normalisation extras (LayerNorm/BatchNorm weights and biases);
- :func:`graph_conv`: a gate computed by a graph convolution, ``K·in·h`` (one
  matrix per Chebyshev order or diffusion step) plus its bias.

Each part carries its closed form (``expression``, in symbols), its arithmetic and
its expected tensors (names and shapes, as the module registers them), so the
library can cross-check a description against the module's real tensors exactly
as it does torch's own classes. :func:`describe` writes torch's own classes in
this language; their counts, tensors and per-layer breakdown are the ones of
:mod:`~torchlstm_params.formulas` (tested).

No torch import lives here: descriptions are plain integers and names.

>>> ligru = Recurrence(
...     "LiGRU", 20, 64,
...     layers=(RecurrenceLayer(0, "forward", (
...         gate_matrix("w.weight", 2, 64, 20, role="input"),
...         gate_matrix("u.weight", 2, 64, 64, role="recurrent", source="h"),
...         norm("norm", 128, symbol="2h"),
...     )),),
...     gate_groups="2",
... )
>>> f = recurrence_formula(ligru)
>>> f.params, f.derivation
(11008, '2·64·20 + 2·64·64 + 2·128 = 11,008')
>>> ligru.closed_form
'2·h·in + 2·h·h + 2·(2h)'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InvalidSettingsError
from .formulas import Formula, LayerCount, RNNSpec, TensorSpec, formula
from .names import tensor_name

__all__ = [
    "PART_ROLES",
    "Part",
    "Recurrence",
    "RecurrenceLayer",
    "bias_vectors",
    "combine",
    "describe",
    "formula_of",
    "gate_matrices",
    "gate_matrix",
    "graph_conv",
    "norm",
    "peepholes",
    "projection",
    "recurrence_formula",
]

#: What a part of a recurrence does.
PART_ROLES = (
    "input",  # a matrix reading the layer's input
    "recurrent",  # a matrix reading the fed-back state
    "bias",  # bias vectors
    "peephole",  # weights reading the cell state
    "projection",  # a projection of the hidden state
    "residual",  # a matrix on a residual (skip) path
    "norm",  # normalisation weights and biases
    "graph_input",  # a graph convolution of the input
    "graph_recurrent",  # a graph convolution of the fed-back state
    "attention",  # attention weights over steps or periods
)

Shape = tuple[int, ...]


def _numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _positive(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSettingsError(f"{field} should be of type int, got: {type(value).__name__} ({value!r})")
    if value < 1:
        raise InvalidSettingsError(f"{field} must be >= 1, got: {value}")
    return value


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a layer: its role, closed form, arithmetic and tensors.

    Attributes:
        role: what the part does, one of :data:`PART_ROLES`.
        expression: the closed form in symbols (``4·h·in``).
        arithmetic: the same with the numbers put in (``4·512·512``).
        tensors: (name, shape) of what the module registers for it, named relative to the module.
        roles: per tensor, where they differ from the part's (torch's ``weight_ih``...), else None.
    """

    role: str
    expression: str
    arithmetic: str
    tensors: tuple[tuple[str, Shape], ...]
    roles: tuple[str, ...] | None = None  # per tensor, where they differ from the part's (torch's weight_ih...)

    @property
    def params(self) -> int:
        return sum(_numel(shape) for _, shape in self.tensors)


@dataclass(frozen=True, slots=True)
class RecurrenceLayer:
    """The parts of one layer in one direction.

    Attributes:
        layer: the layer index.
        direction: ``forward`` or ``reverse``.
        parts: what the layer holds, part by part.
    """

    layer: int
    direction: str  # "forward" or "reverse"
    parts: tuple[Part, ...]

    @property
    def params(self) -> int:
        return sum(p.params for p in self.parts)


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A recurrent module described part by part (see the module docstring).

    The settings named as in :data:`~torchlstm_params.formulas.SPEC_SETTINGS` are
    there too (``bias`` is a property: whether any part is a bias), so a report
    shows a described module beside torch's.

    Attributes:
        kind: the class's name (``LiGRU``).
        input_size: ``in`` of the first layer.
        hidden_size: ``h``.
        layers: per layer and direction, its parts.
        num_layers: stacked layers.
        bidirectional: whether it runs both directions.
        is_cell: whether it takes one step per call.
        gate_groups: how the gates are grouped (``"2"``, ``"3+1"``).
        proj_size: the projection size (0: none).
        shared_directions: both directions run on one set of weights (speechbrain's bidirectional layers).
        buffers: buffer names the class registers, which a checkpoint cannot tell from parameters.
        note: anything worth saying about the description (where it was inferred from, say).
    """

    kind: str
    input_size: int
    hidden_size: int
    layers: tuple[RecurrenceLayer, ...]
    num_layers: int = 1
    bidirectional: bool = False
    is_cell: bool = False
    gate_groups: str = "1"
    proj_size: int = 0
    shared_directions: bool = False
    buffers: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        _positive("input_size", self.input_size)
        _positive("hidden_size", self.hidden_size)
        _positive("num_layers", self.num_layers)
        if not self.layers:
            raise InvalidSettingsError(f"a {self.kind} recurrence needs at least one layer of parts")
        for layer in self.layers:
            for part in layer.parts:
                if part.role not in PART_ROLES:
                    raise InvalidSettingsError(f"part role {part.role!r} is not one of {', '.join(PART_ROLES)}")

    @property
    def bias(self) -> bool:
        """Whether any layer holds bias vectors."""
        return any(p.role == "bias" for layer in self.layers for p in layer.parts)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def recurrent_size(self) -> int:
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    @property
    def closed_form(self) -> str:
        """The count in symbols, layer by layer (identical layers once, with their multiplicity)."""
        groups: list[tuple[str, int]] = []
        for layer in self.layers:
            text = " + ".join(p.expression for p in layer.parts)
            if groups and groups[-1][0] == text:
                groups[-1] = (text, groups[-1][1] + 1)
            else:
                groups.append((text, 1))
        if len(groups) == 1:
            text, n = groups[0]
            return text if n == 1 else f"{n}·({text})"
        return " + ".join(f"[{t}]" if n == 1 else f"{n}·[{t}]" for t, n in groups)


def _gh(gates: int, source_h: str = "h") -> str:
    return source_h if gates == 1 else f"{gates}·{source_h}"


def gate_matrix(
    name: str,
    gates: int,
    hidden: int,
    width: int,
    *,
    role: str = "input",
    source: str = "in",
    transposed: bool = False,
) -> Part:
    """``gates`` gate groups stacked in one matrix of shape ``(gates·hidden, width)``.

    ``source`` names what the matrix reads, in symbols (``in``, ``h``, ``2h``,
    ``in+h``); ``transposed`` stores it as ``(width, gates·hidden)`` (``x @ W``
    layouts).

    >>> gate_matrix("weight_ih", 4, 20, 10).tensors
    (('weight_ih', (80, 10)),)
    """
    rows = gates * hidden
    shape = (width, rows) if transposed else (rows, width)
    return Part(role, f"{_gh(gates)}·{source}", f"{_gh(gates, str(hidden))}·{width}", ((name, shape),))


def gate_matrices(
    names: Sequence[str],
    hidden: int,
    width: int,
    *,
    role: str = "input",
    source: str = "in",
    transposed: bool = False,
) -> Part:
    """One matrix per gate, each ``(hidden, width)`` (or ``(width, hidden)`` when ``transposed``)."""
    shape = (width, hidden) if transposed else (hidden, width)
    g = len(names)
    return Part(role, f"{_gh(g)}·{source}", f"{_gh(g, str(hidden))}·{width}", tuple((n, shape) for n in names))


def bias_vectors(names: Sequence[str], size: int, *, symbol: str = "h", shape: Shape | None = None) -> Part:
    """``len(names)`` bias vectors of ``size`` elements (``shape`` when stored as, say, ``(1, h)``).

    ``symbol`` is ``size`` in symbols (``4h``).
    """
    held = shape if shape is not None else (size,)
    if _numel(held) != size:
        raise InvalidSettingsError(f"bias shape {held} does not hold {size} elements")
    n = len(names)
    expression = symbol if n == 1 else f"{n}·{_paren(symbol)}"
    arithmetic = str(size) if n == 1 else f"{n}·{size}"
    return Part("bias", expression, arithmetic, tuple((name, held) for name in names))


def peepholes(names: Sequence[str], hidden: int, *, shape: Shape | None = None) -> Part:
    """Diagonal peephole weights, one vector of ``hidden`` per gate that looks at the cell."""
    part = bias_vectors(names, hidden, shape=shape)
    return Part("peephole", part.expression, part.arithmetic, part.tensors)


def projection(name: str, proj_size: int, hidden: int, *, source: str = "h", symbol: str = "p") -> Part:
    """A ``(proj_size, hidden)`` projection of the hidden state."""
    return Part("projection", f"{symbol}·{source}", f"{proj_size}·{hidden}", ((name, (proj_size, hidden)),))


def norm(prefix: str, width: int, *, symbol: str | None = None, weight: bool = True, bias: bool = True) -> Part:
    """An affine normalisation of ``width`` features: ``prefix.weight`` and ``prefix.bias`` (LayerNorm, BatchNorm).

    >>> norm("g_norm", 2048, symbol="4h").expression
    '2·(4h)'
    """
    names = [f"{prefix}.{leaf}" for leaf, held in (("weight", weight), ("bias", bias)) if held]
    sym = symbol if symbol is not None else str(width)
    n = len(names)
    expression = sym if n == 1 else f"{n}·{_paren(sym)}"
    arithmetic = str(width) if n == 1 else f"{n}·{width}"
    return Part("norm", expression, arithmetic, tuple((name, (width,)) for name in names))


def graph_conv(
    weights: Sequence[str],
    bias: str | None,
    hidden: int,
    width: int,
    *,
    role: str = "graph_input",
    source: str = "in",
    hops: str = "K",
    shape: Shape | None = None,
) -> Part:
    """A gate computed by a graph convolution: one ``(hidden, width)`` matrix per hop, and a bias.

    ``weights`` names one matrix per hop (ChebConv's ``lins.k.weight``); with
    ``shape`` it is one tensor holding every hop (DConv's ``(2, K, width, hidden)``).
    ``hops`` is the number of matrices in symbols (``K``, ``2K``, ``1``).

    >>> graph_conv(["lins.0.weight", "lins.1.weight"], "bias", 8, 3).expression
    'K·in·h + h'
    """
    if shape is not None:
        tensors: tuple[tuple[str, Shape], ...] = ((weights[0], shape),)
        count = _numel(shape) // (hidden * width)
    else:
        tensors = tuple((w, (hidden, width)) for w in weights)
        count = len(weights)
    per_hop = f"{source}·h" if hops == "1" else f"{hops}·{_paren(source)}·h"
    arithmetic = f"{width}·{hidden}" if count == 1 else f"{count}·{width}·{hidden}"
    if bias is not None:
        tensors += ((bias, (hidden,)),)
        per_hop += " + h"
        arithmetic += f" + {hidden}"
    return Part(role, per_hop, arithmetic, tensors)


def _paren(symbol: str) -> str:
    """``symbol`` in brackets where a product would misread it: ``4h``, ``in+h``; never a plain number or name."""
    compound = any(c in symbol for c in "+·") or (any(c.isdigit() for c in symbol) and any(c.isalpha() for c in symbol))
    return f"({symbol})" if compound else symbol


def describe(spec: RNNSpec) -> Recurrence:
    """torch's own recurrent class for ``spec``, written as a :class:`Recurrence`.

    Its tensors, count and per-layer breakdown are those of
    :func:`~torchlstm_params.formulas.formula` (the test suite compares them).

    >>> recurrence_formula(describe(RNNSpec("LSTM", 10, 20))).params
    2560
    """
    g, h, p, r = spec.gates, spec.hidden_size, spec.proj_size, spec.recurrent_size
    layers = []
    for k in range(spec.num_layers):
        in_k = spec.layer_input_size(k)
        source = "in" if k == 0 else ("2·r" if spec.directions == 2 else "r")
        for d in range(spec.directions):
            layer = None if spec.is_cell else k

            def name(role: str, layer: int | None = layer, reverse: bool = bool(d)) -> str:
                return tensor_name(role, layer, reverse=reverse)

            parts = [
                _torch_roles(gate_matrix(name("weight_ih"), g, h, in_k, source=source), "weight_ih"),
                _torch_roles(
                    gate_matrix(name("weight_hh"), g, h, r, role="recurrent", source="r" if p else "h"), "weight_hh"
                ),
            ]
            if spec.bias:
                biases = bias_vectors([name("bias_ih"), name("bias_hh")], g * h, symbol=_gh(g))
                parts.append(_torch_roles(biases, "bias_ih", "bias_hh"))
            if p:
                parts.append(_torch_roles(projection(name("weight_hr"), p, h), "weight_hr"))
            layers.append(RecurrenceLayer(k, "reverse" if d else "forward", tuple(parts)))
    return Recurrence(
        spec.kind,
        spec.input_size,
        h,
        tuple(layers),
        num_layers=spec.num_layers,
        bidirectional=spec.bidirectional,
        is_cell=spec.is_cell,
        gate_groups=str(g),
        proj_size=p,
    )


def _torch_roles(part: Part, *roles: str) -> Part:
    return Part(part.role, part.expression, part.arithmetic, part.tensors, roles)


def combine(parts: Sequence[Part]) -> Part:
    """Parts alike (one per gate, say) as one: ``n·(expression)``, their tensors in order.

    >>> combine([bias_vectors(["b_i"], 8), bias_vectors(["b_f"], 8)]).expression
    '2·h'
    """
    first = parts[0]
    if any(p.role != first.role or p.expression != first.expression for p in parts):
        raise InvalidSettingsError("combine() takes parts of one role and one closed form")
    n = len(parts)
    tensors = tuple(t for p in parts for t in p.tensors)
    if n == 1:
        return first
    return Part(first.role, f"{n}·{_paren(first.expression)}", f"{n}·{_paren(first.arithmetic)}", tensors)


def _layer_arithmetic(layer: RecurrenceLayer) -> str:
    return " + ".join(p.arithmetic for p in layer.parts)


def _derivation(rec: Recurrence, total: int) -> str:
    """The arithmetic layer by layer: two directions with the same parts as ``2·(...)``, repeats counted."""
    per_layer: list[str] = []
    for k in sorted({layer.layer for layer in rec.layers}):
        texts = [_layer_arithmetic(layer) for layer in rec.layers if layer.layer == k]
        if len(texts) == 2 and texts[0] == texts[1]:
            per_layer.append(f"2·({texts[0]})")
        else:
            per_layer.append(" + ".join(texts))
    groups: list[tuple[str, int]] = []
    for text in per_layer:
        if groups and groups[-1][0] == text:
            groups[-1] = (text, groups[-1][1] + 1)
        else:
            groups.append((text, 1))
    if len(groups) == 1 and groups[0][1] == 1:
        body = groups[0][0]
    else:
        body = " + ".join(f"[{t}]" if n == 1 else f"{n}·[{t}]" for t, n in groups)
    return f"{body} = {total:,}"


def recurrence_formula(rec: Recurrence) -> Formula:
    """Count, breakdown, expected tensors and derivation of a :class:`Recurrence`.

    There is no Keras figure: Keras has no such layers (``keras_params`` is None).
    """
    layers = []
    for layer in rec.layers:
        tensors = tuple(
            TensorSpec(name, shape, layer.layer, layer.direction, role)
            for part in layer.parts
            for (name, shape), role in zip(part.tensors, part.roles or (part.role,) * len(part.tensors), strict=True)
        )
        layers.append(LayerCount(layer.layer, layer.direction, tensors, sum(t.numel for t in tensors)))
    expected = [t for layer in layers for t in layer.tensors]
    names = tuple(t.name for t in expected)
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise InvalidSettingsError(f"a {rec.kind} recurrence names a tensor twice: {', '.join(repeated)}")
    total = sum(layer.params for layer in layers)
    return Formula(
        rec,
        total,
        tuple(layers),
        names,
        tuple(t.shape for t in expected),
        tuple(t.numel for t in expected),
        _derivation(rec, total),
        None,
        None,
    )


def formula_of(spec: RNNSpec | Recurrence) -> Formula:
    """:func:`~torchlstm_params.formulas.formula` for torch's settings, :func:`recurrence_formula` for a description."""
    return formula(spec) if isinstance(spec, RNNSpec) else recurrence_formula(spec)
