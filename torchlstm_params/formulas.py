"""Pure integer math for recurrent layers: counts, expected tensors, derivations.

No torch import lives here: everything is a function of the settings alone, so
it can be checked by hand against ``RNN_FORMULAS.md`` and reused for
checkpoints, budgets and the command line.

Symbols follow PyTorch's ``torch/nn/modules/rnn.py``: ``g`` gates per group
(LSTM 4, GRU 3, RNN 1), ``h`` hidden size, ``p`` projection size, ``r`` the
recurrent width (``p`` if ``p > 0`` else ``h``), ``D`` directions.

>>> count_params("LSTM", 3, 2)
56
>>> count_params("LSTM", 3, 2, convention="keras")
48
>>> spec = RNNSpec("LSTM", 10, 20)
>>> derivation(spec)
'[4·20·(10+20) + 2·4·20] = 2,560'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Final, Protocol

from .errors import InvalidSettingsError
from .names import tensor_name

__all__ = [
    "CONVENTIONS",
    "KINDS",
    "RUN_SETTINGS",
    "SETTINGS",
    "SPEC_SETTINGS",
    "TORCH_ATTRIBUTES",
    "Formula",
    "LayerCount",
    "RNNSpec",
    "SpecLike",
    "TensorSpec",
    "breakdown",
    "count_params",
    "derivation",
    "expected_tensors",
    "formula",
    "gate_count",
    "keras_count",
    "keras_derivation",
    "make_spec",
    "normalize_kind",
    "pytorch_count",
    "require_dropout",
    "require_spec",
]

#: Canonical kind names. Full-sequence kinds use ``RNNBase.mode``.
KINDS: Final = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU", "LSTMCell", "GRUCell", "RNNCell")
CELL_KINDS: Final = frozenset({"LSTMCell", "GRUCell", "RNNCell"})
CONVENTIONS: Final = ("pytorch", "keras")

_GATES: Final = {
    "LSTM": 4,
    "GRU": 3,
    "RNN_TANH": 1,
    "RNN_RELU": 1,
    "LSTMCell": 4,
    "GRUCell": 3,
    "RNNCell": 1,
}
_ALIASES: Final = {k.lower(): k for k in KINDS} | {"rnn": "RNN_TANH"}


def normalize_kind(kind: object) -> str:
    """Return the canonical spelling of ``kind`` (case-insensitive; ``"RNN"`` is tanh).

    >>> normalize_kind("lstmcell"), normalize_kind("rnn")
    ('LSTMCell', 'RNN_TANH')
    """
    if not isinstance(kind, str):
        raise InvalidSettingsError(f"kind should be of type str, got: {type(kind).__name__}")
    canonical = _ALIASES.get(kind.lower())
    if canonical is None:
        known = ", ".join(("RNN", *KINDS))
        raise InvalidSettingsError(f"kind {kind!r} is not a recurrent kind; expected one of {known}")
    return canonical


def gate_count(kind: str) -> int:
    """Gate groups stacked in one weight matrix: LSTM 4, GRU 3, RNN 1."""
    return _GATES[normalize_kind(kind)]


@dataclass(frozen=True, slots=True)
class RNNSpec:
    """The settings that fix a recurrent module's parameters.

    Build it with :func:`make_spec` to have every field validated; the plain
    constructor trusts its caller (the detector has already read ints from torch).

    Attributes:
        kind: ``LSTM``, ``GRU``, ``RNN_TANH``, ``RNN_RELU``, ``LSTMCell``, ``GRUCell`` or ``RNNCell``.
        input_size: features of each input element (``in``).
        hidden_size: features of the hidden state (``h``).
        num_layers: stacked layers (1 for a cell).
        bias: whether the layer has bias vectors (PyTorch keeps two per gate group).
        bidirectional: whether every layer also runs backwards (``D = 2``).
        proj_size: LSTM projection width (``p``; 0: none); the recurrent width ``r`` is ``p`` when set.
    """

    kind: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    bidirectional: bool = False
    proj_size: int = 0

    @property
    def is_cell(self) -> bool:
        return self.kind in CELL_KINDS

    @property
    def gates(self) -> int:
        return _GATES[self.kind]

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def recurrent_size(self) -> int:
        """``r``: the width of ``h_t`` fed back (``proj_size`` when projecting)."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def layer_input_size(self, layer: int) -> int:
        """``in_k``: ``input_size`` for layer 0, ``D * r`` above it."""
        return self.input_size if layer == 0 else self.directions * self.recurrent_size


#: The settings that fix a recurrent module's parameters: :class:`RNNSpec`'s fields, in order.
SPEC_SETTINGS: Final = tuple(f.name for f in fields(RNNSpec))
#: The settings that change how a module runs but not what it holds.
RUN_SETTINGS: Final = ("dropout", "batch_first")
#: Every recurrent setting, named once (torch names them once too: ``RNNBase.__constants__``).
#: Detection, the sanity check's ``expect=``, the results' ``to_dict`` and checkpoint
#: inference all read this tuple.
SETTINGS: Final = SPEC_SETTINGS + RUN_SETTINGS
#: The attribute torch stores a setting under, where it is not the setting's own name.
TORCH_ATTRIBUTES: Final = {"kind": "mode"}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One tensor PyTorch registers for a recurrent module.

    Attributes:
        name: torch's name for it (``weight_ih_l0_reverse``).
        shape: its shape.
        layer: the layer index (0 for a cell).
        direction: ``forward`` or ``reverse``.
        role: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` or ``weight_hr``.
    """

    name: str
    shape: tuple[int, ...]
    layer: int
    direction: str  # "forward" or "reverse"
    role: str  # weight_ih, weight_hh, bias_ih, bias_hh, weight_hr

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True, slots=True)
class LayerCount:
    """The tensors and parameter subtotal of one layer in one direction.

    Attributes:
        layer: the layer index (0 for a cell).
        direction: ``forward`` or ``reverse``.
        tensors: its tensors, in registration order.
        params: their elements (one layer's, when ``repeat`` > 1).
        repeat: 1, or in a collapsed breakdown (``breakdown(spec, collapse=True)``) how many alike layers,
            ``layer`` to ``layer + repeat - 1``, this row stands for.
    """

    layer: int
    direction: str
    tensors: tuple[TensorSpec, ...]
    params: int
    repeat: int = 1

    def role_params(self, role: str) -> int:
        """Elements of the tensor with this role (0 when absent)."""
        return sum(t.numel for t in self.tensors if t.role == role)


def _require_int(field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSettingsError(f"{field} should be of type int, got: {type(value).__name__} ({value!r})")
    if value < minimum:
        raise InvalidSettingsError(f"{field} must be >= {minimum}, got: {value}")
    return value


def _require_bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidSettingsError(f"{field} should be of type bool, got: {type(value).__name__} ({value!r})")
    return value


def require_dropout(value: object) -> float:
    """``value`` as a dropout probability: a finite number in [0, 1] (not a bool), else InvalidSettingsError.

    >>> require_dropout(float("nan"))
    Traceback (most recent call last):
    ...
    torchlstm_params.errors.InvalidSettingsError: dropout should be a number in [0, 1], got: nan
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSettingsError(f"dropout should be a number, got: {type(value).__name__} ({value!r:.80})")
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise InvalidSettingsError(f"dropout should be a number in [0, 1], got: {value!r}")
    return float(value)


def require_spec(spec: object, caller: str) -> RNNSpec:
    """``spec`` re-checked by :func:`make_spec` (kind in its canonical spelling), else InvalidSettingsError.

    The plain constructor trusts its caller, so a spec that comes from outside the library is checked here;
    ``caller`` starts the message.
    """
    if not isinstance(spec, RNNSpec):
        raise InvalidSettingsError(
            f"{caller}: spec must be a torchlstm_params.RNNSpec (see make_spec), got: {type(spec).__name__} "
            f"({spec!r:.80})"
        )
    try:
        return make_spec(  # the kind in its canonical spelling ("lstm" -> "LSTM"), which the formulas key on
            spec.kind,
            spec.input_size,
            spec.hidden_size,
            spec.num_layers,
            bias=spec.bias,
            bidirectional=spec.bidirectional,
            proj_size=spec.proj_size,
        )
    except InvalidSettingsError as exc:
        raise InvalidSettingsError(f"{caller}: {exc}") from None


def make_spec(
    kind: object,
    input_size: object,
    hidden_size: object,
    num_layers: object = 1,
    *,
    bias: object = True,
    bidirectional: object = False,
    proj_size: object = 0,
) -> RNNSpec:
    """Validate settings the way ``torch.nn`` does and return an :class:`RNNSpec`.

    Raises :class:`InvalidSettingsError` (a ``ValueError``) naming the field and value.

    >>> make_spec("GRU", 10, 20, proj_size=5)
    Traceback (most recent call last):
    ...
    torchlstm_params.errors.InvalidSettingsError: proj_size is only supported by LSTM, got proj_size=5 for GRU
    """
    canonical = normalize_kind(kind)
    i = _require_int("input_size", input_size, 1)
    h = _require_int("hidden_size", hidden_size, 1)
    layers = _require_int("num_layers", num_layers, 1)
    p = _require_int("proj_size", proj_size, 0)
    has_bias = _require_bool("bias", bias)
    bidi = _require_bool("bidirectional", bidirectional)
    if p and canonical != "LSTM":
        raise InvalidSettingsError(f"proj_size is only supported by LSTM, got proj_size={p} for {canonical}")
    if p >= h:
        raise InvalidSettingsError(f"proj_size has to be smaller than hidden_size, got proj_size={p}, hidden_size={h}")
    if canonical in CELL_KINDS:
        if layers != 1:
            raise InvalidSettingsError(f"{canonical} has exactly one layer, got num_layers={layers}")
        if bidi:
            raise InvalidSettingsError(f"{canonical} has one direction, got bidirectional=True")
    return RNNSpec(canonical, i, h, layers, has_bias, bidi, p)


def expected_tensors(spec: RNNSpec) -> tuple[TensorSpec, ...]:
    """Every tensor PyTorch registers for ``spec``, in registration order.

    >>> [(t.name, t.shape) for t in expected_tensors(RNNSpec("GRUCell", 3, 2, bias=False))]
    [('weight_ih', (6, 3)), ('weight_hh', (6, 2))]
    """
    return tuple(t for layer in breakdown(spec) for t in layer.tensors)


def breakdown(spec: RNNSpec, *, collapse: bool = False) -> tuple[LayerCount, ...]:
    """Per layer and direction: the tensors and their subtotal.

    With ``collapse``, layers 1 and above (all alike: they see ``D*r`` inputs) are one row
    per direction with ``repeat = num_layers - 1``: constant size for any depth.

    >>> [(c.layer, c.repeat, c.params) for c in breakdown(RNNSpec("GRU", 4, 2, num_layers=5), collapse=True)]
    [(0, 1, 48), (1, 4, 36)]
    """
    g, h, p = spec.gates, spec.hidden_size, spec.proj_size
    r = spec.recurrent_size
    rows: list[LayerCount] = []
    depth = min(spec.num_layers, 2) if collapse else spec.num_layers
    for k in range(depth):
        in_k = spec.layer_input_size(k)
        for d in range(spec.directions):
            direction = "reverse" if d else "forward"
            layer = None if spec.is_cell else k
            shapes: list[tuple[str, tuple[int, ...]]] = [("weight_ih", (g * h, in_k)), ("weight_hh", (g * h, r))]
            if spec.bias:
                shapes += [("bias_ih", (g * h,)), ("bias_hh", (g * h,))]
            if p:
                shapes.append(("weight_hr", (p, h)))
            tensors = [
                TensorSpec(tensor_name(role, layer, reverse=bool(d)), shape, k, direction, role)
                for role, shape in shapes
            ]
            repeat = spec.num_layers - 1 if collapse and k == 1 else 1
            rows.append(LayerCount(k, direction, tuple(tensors), sum(t.numel for t in tensors), repeat))
    return tuple(rows)


def _over_layers(spec: RNNSpec, per_layer: Callable[[int], int]) -> int:
    """``sum_k per_layer(in_k)`` in closed form: layer 0 sees ``input_size``, every layer above ``D*r``."""
    first = per_layer(spec.input_size)
    if spec.num_layers == 1:
        return first
    return first + (spec.num_layers - 1) * per_layer(spec.directions * spec.recurrent_size)


def pytorch_count(spec: RNNSpec) -> int:
    """Closed form: ``sum_k D * (g*h*(in_k + r) + 2*b*g*h + p*h)``, in constant time for any ``num_layers``."""
    g, h, p, r, b, d = (
        spec.gates,
        spec.hidden_size,
        spec.proj_size,
        spec.recurrent_size,
        int(spec.bias),
        spec.directions,
    )
    return _over_layers(spec, lambda in_k: d * (g * h * (in_k + r) + 2 * b * g * h + p * h))


def keras_count(spec: RNNSpec, *, reset_after: bool = True) -> int:
    """The Keras convention: one bias vector per gate (GRU ``reset_after=True`` keeps two).

    Stacked layers see ``D * h`` inputs (``Bidirectional`` concatenates), and
    ``Bidirectional`` doubles its layer. ``proj_size`` has no Keras equivalent.

    >>> keras_count(RNNSpec("GRU", 3, 2), reset_after=False)
    36
    """
    if spec.proj_size:
        raise InvalidSettingsError(f"proj_size has no Keras equivalent, got proj_size={spec.proj_size}")
    g, h, b, d = spec.gates, spec.hidden_size, int(spec.bias), spec.directions
    biases_per_gate = 2 if spec.kind in ("GRU", "GRUCell") and reset_after else 1
    return _over_layers(spec, lambda in_k: d * g * (h * (in_k + h) + b * biases_per_gate * h))


def count_params(
    kind: str,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    *,
    bias: bool = True,
    bidirectional: bool = False,
    proj_size: int = 0,
    convention: str = "pytorch",
    reset_after: bool = True,
) -> int:
    """Parameter count of a recurrent layer from its settings alone.

    ``kind`` is one of ``LSTM, GRU, RNN (tanh), RNN_TANH, RNN_RELU, LSTMCell,
    GRUCell, RNNCell`` (any case). ``convention`` is ``"pytorch"`` (two bias
    vectors per gate group, what ``sum(p.numel())`` says) or ``"keras"`` (one;
    ``reset_after`` picks the Keras GRU variant).

    >>> count_params("LSTM", 300, 512, num_layers=2)
    3768320
    """
    spec = make_spec(
        kind, input_size, hidden_size, num_layers, bias=bias, bidirectional=bidirectional, proj_size=proj_size
    )
    if convention == "pytorch":
        return pytorch_count(spec)
    if convention == "keras":
        return keras_count(spec, reset_after=_require_bool("reset_after", reset_after))
    raise InvalidSettingsError(f"convention must be one of {', '.join(CONVENTIONS)}, got: {convention!r}")


def _times(n: int) -> str:
    return "" if n == 1 else f"{n}·"


def _join_layers(spec: RNNSpec, layer_expr: Callable[[int], str], total: int) -> str:
    """One notation for every derivation: ``[...]`` is one layer in one direction, and the factor in
    front of it counts the (layer, direction) pairs alike: ``D`` for layer 0, ``(L-1)·D`` above it
    (those all see ``D*r`` inputs)."""
    d, above = spec.directions, spec.num_layers - 1
    parts = [f"{_times(d)}[{layer_expr(spec.input_size)}]"]
    if above:
        parts.append(f"{_times(above * d)}[{layer_expr(d * spec.recurrent_size)}]")
    return f"{' + '.join(parts)} = {total:,}"


def derivation(spec: RNNSpec) -> str:
    """The PyTorch count written out: ``[g·h·(in+r) + 2·g·h + p·h]`` per layer and direction.

    >>> derivation(RNNSpec("LSTM", 10, 20, 2, True, True, 5))
    '2·[4·20·(10+5) + 2·4·20 + 5·20] + 2·[4·20·(10+5) + 2·4·20 + 5·20] = 5,840'
    """
    g, h, p, r = spec.gates, spec.hidden_size, spec.proj_size, spec.recurrent_size
    gh = f"{g}·{h}" if g > 1 else f"{h}"

    def layer(in_k: int) -> str:
        terms = [f"{gh}·({in_k}+{r})"]
        if spec.bias:
            terms.append(f"2·{gh}")
        if p:
            terms.append(f"{p}·{h}")
        return " + ".join(terms)

    return _join_layers(spec, layer, pytorch_count(spec))


def keras_derivation(spec: RNNSpec, *, reset_after: bool = True) -> str:
    """The Keras count written out in the same notation as :func:`derivation`:
    ``[g·h·(in+h) + g·h]`` per layer and direction (one bias per gate), ``+ 2·g·h`` for a GRU
    with ``reset_after=True`` (Keras 3's default: an input and a recurrent bias per gate).

    >>> keras_derivation(RNNSpec("LSTM", 3, 2))
    '[4·2·(3+2) + 4·2] = 48'
    >>> keras_derivation(RNNSpec("GRU", 3, 2))
    '[3·2·(3+2) + 2·3·2] = 42'
    """
    g, h = spec.gates, spec.hidden_size
    gh = f"{g}·{h}" if g > 1 else f"{h}"
    two = spec.kind in ("GRU", "GRUCell") and reset_after

    def layer(in_k: int) -> str:
        inner = f"{gh}·({in_k}+{h})"
        if spec.bias:
            inner += f" + 2·{gh}" if two else f" + {gh}"
        return inner

    return _join_layers(spec, layer, keras_count(spec, reset_after=reset_after))


class SpecLike(Protocol):
    """What a :class:`Formula` is the formula of: an :class:`RNNSpec`, or a hand-written layer's
    :class:`~torchlstm_params.recurrence.Recurrence` (which builds on this module)."""

    @property
    def kind(self) -> str: ...
    @property
    def input_size(self) -> int: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def num_layers(self) -> int: ...
    @property
    def bias(self) -> bool: ...
    @property
    def bidirectional(self) -> bool: ...
    @property
    def proj_size(self) -> int: ...
    @property
    def is_cell(self) -> bool: ...
    @property
    def directions(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Formula:
    """Everything the formulas say about one spec, computed in one step.

    Attributes:
        spec: the settings: torch's (an RNNSpec), or a hand-written layer's
            :class:`~torchlstm_params.recurrence.Recurrence` (see ``recurrence_formula``).
        params: the PyTorch-convention count.
        layers: per layer and direction, its tensors and subtotal.
        names: expected tensor names, in registration order.
        shapes: their shapes, same order.
        numels: their element counts, same order.
        derivation: the count written out (one bracket per layer and direction).
        keras_params: the Keras-convention count (None where Keras has no equivalent: ``proj_size``,
            hand-written layers).
        keras_derivation: the Keras count written out in the same notation.
    """

    spec: SpecLike
    params: int
    layers: tuple[LayerCount, ...]
    names: tuple[str, ...]  # expected tensor names, in registration order
    shapes: tuple[tuple[int, ...], ...]  # their shapes, same order
    numels: tuple[int, ...]  # their element counts, same order
    derivation: str
    keras_params: int | None  # None where Keras has no equivalent (proj_size, hand-written layers)
    keras_derivation: str | None

    @property
    def expected(self) -> tuple[TensorSpec, ...]:
        return tuple(t for layer in self.layers for t in layer.tensors)


def formula(spec: RNNSpec, *, collapse: bool = False) -> Formula:
    """Count, breakdown, expected tensors and derivations of ``spec``.

    With ``collapse`` the breakdown (and the expected tensors) stop at layer 1, whose row
    stands for every layer above 0 (see :func:`breakdown`): the count and derivations
    are closed forms, so the whole formula is constant size for any ``num_layers``.

    >>> f = formula(RNNSpec("LSTM", 3, 2))
    >>> f.params, f.keras_params, f.names
    (56, 48, ('weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0'))
    """
    layers = breakdown(spec, collapse=collapse)
    expected = [t for layer in layers for t in layer.tensors]
    keras = None if spec.proj_size else keras_count(spec)
    return Formula(
        spec,
        pytorch_count(spec),
        layers,
        tuple(t.name for t in expected),
        tuple(t.shape for t in expected),
        tuple(t.numel for t in expected),
        derivation(spec),
        keras,
        None if keras is None else keras_derivation(spec),
    )
