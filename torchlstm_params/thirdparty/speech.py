"""speechbrain: ``nnet.RNN.LiGRU``, ``SLiGRU`` and ``QuasiRNN``, and the quaternion- and
complex-valued ``QLSTM``, ``QRNN``, ``QLiGRU`` (``nnet.quaternion_networks.q_RNN``) and
``CLSTM``, ``CRNN``, ``CLiGRU`` (``nnet.complex_networks.c_RNN``).

- LiGRU (light GRU): per layer ``rnn.k.w`` = ``Linear(in_k, 2h, bias=False)``, ``rnn.k.u`` =
  ``Linear(h, 2h, bias=False)`` and a normalisation of the ``2h`` gate pre-activations
  (``rnn.k.norm``, BatchNorm1d or LayerNorm: a weight and a bias either way; with
  ``bias=False`` the norm's bias is frozen, not removed). SLiGRU adds ``rnn.k.layer_norm``,
  LayerNorm(2h) on the recurrent product, affine only with ``recurrent_elementwise_affine``.
- QuasiRNN: per layer ``qrnn.k.w`` = ``Linear(in_k, g·h)`` with ``g`` 3 (z, f, o) or 2
  without the output gate; no recurrent matrix (the recurrence is a forget-mult).

A bidirectional layer runs both directions on one set of weights (the batch is
doubled), so it holds what a one-directional layer holds; the layers above read
``2h`` features. The layers' dropout masks (``drop_masks``, 16,000 x h) are buffers.

Quaternion- and complex-valued layers: ``h`` is the class's ``hidden_size``, counted in
quaternion (complex) units, so a layer outputs ``c·h`` real features, ``c`` = 4 (2). Each
``QLinear`` (``CLinear``) ``rnn.k.w`` (input) and ``rnn.k.u`` (recurrent, reading ``c·h``) holds
one ``(in_k/c, g·h)`` matrix per component (``r_weight``, ``i_weight``, ``j_weight``,
``k_weight``; ``real_weight``, ``imag_weight``) and, where the layer asks for it, one
``c·g·h`` bias (``bias``; ``b``). Per layer, ``in_k`` its real input width:

- ``QLSTM``: ``g`` 4 with biases: ``4h·in_k + 16h² + 32h``;
- ``QRNN``: ``g`` 1 with biases: ``h·in_k + 4h² + 8h``;
- ``QLiGRU``: ``g`` 2, no bias, a ``QBatchNorm`` of the ``8h`` input product (``gamma`` 2h,
  ``beta`` 8h): ``2h·in_k + 8h² + 10h``;
- ``CLSTM``: ``g`` 4 with biases: ``4h·in_k + 8h² + 16h``;
- ``CRNN``: ``g`` 1, no bias: ``h·in_k + 2h²``;
- ``CLiGRU``: ``g`` 2, no bias, a ``CBatchNorm`` (``normalization="batchnorm"``) or
  ``CLayerNorm`` (anything else) of the ``4h`` input product (``gamma_rr``, ``gamma_ii``,
  ``gamma_ri`` 2h each, ``beta`` 4h): ``2h·in_k + 4h² + 10h``.

The layers take no bias setting (the classes' ``bias`` is not passed on). ``in_0`` is the
class's ``fea_dim``; the layers above read ``c·h`` (``2c·h`` bidirectional, both
directions again on one set of weights). ``CLinear`` reads ``⌊in/2⌋`` complex features of an
odd width (and its forward then fails). Buffers: ``h_init``, ``drop_masks`` (registered by all
but ``QLSTM`` and ``QRNN``) and the batch norms' running statistics.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import InvalidSettingsError
from ..recurrence import Part, Recurrence, RecurrenceLayer, bias_vectors, gate_matrix, norm
from .base import Anchor, Shapes, ThirdPartyClass, setting, shape_of

__all__ = ["ANCHORS", "CLASSES", "HYPERCOMPLEX_KINDS", "hypercomplex_rnn", "ligru", "quasi_rnn"]

_SHARED = "both directions run on one set of weights (speechbrain doubles the batch)"


def _layer_input(k: int, input_size: int, hidden: int, bidirectional: bool) -> tuple[int, str]:
    if k == 0:
        return input_size, "in"
    return (2 * hidden, "2h") if bidirectional else (hidden, "h")


def ligru(
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    *,
    kind: str = "LiGRU",
    recurrent_norm: bool = False,
    drop_masks_saved: bool = True,
) -> Recurrence:
    """speechbrain's LiGRU (``kind="SLiGRU"``: with ``recurrent_norm``, the affine recurrent LayerNorm)."""
    h = hidden_size
    layers = []
    buffers: list[str] = []
    for k in range(num_layers):
        width, source = _layer_input(k, input_size, h, bidirectional)
        parts: list[Part] = [
            gate_matrix(f"rnn.{k}.w.weight", 2, h, width, source=source),
            gate_matrix(f"rnn.{k}.u.weight", 2, h, h, role="recurrent", source="h"),
        ]
        if recurrent_norm:
            parts.append(norm(f"rnn.{k}.layer_norm", 2 * h, symbol="2h"))
        parts.append(norm(f"rnn.{k}.norm", 2 * h, symbol="2h"))
        layers.append(RecurrenceLayer(k, "forward", tuple(parts)))
        buffers += [f"rnn.{k}.h_init", f"rnn.{k}.drop_mask_te"]
        if drop_masks_saved:
            buffers.append(f"rnn.{k}.drop_masks")
    return Recurrence(
        kind,
        input_size,
        h,
        tuple(layers),
        num_layers=num_layers,
        bidirectional=bidirectional,
        gate_groups="2",
        shared_directions=True,
        buffers=tuple(buffers),
        note=_SHARED if bidirectional else "",
    )


def quasi_rnn(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, output_gate: bool) -> Recurrence:
    """speechbrain's QuasiRNN: one input matrix and its bias per layer, no recurrent matrix."""
    h, g = hidden_size, 3 if output_gate else 2
    layers = []
    for k in range(num_layers):
        width, source = _layer_input(k, input_size, h, bidirectional)
        parts = (
            gate_matrix(f"qrnn.{k}.w.weight", g, h, width, source=source),
            bias_vectors([f"qrnn.{k}.w.bias"], g * h, symbol=f"{g}h"),
        )
        layers.append(RecurrenceLayer(k, "forward", parts))
    return Recurrence(
        "QuasiRNN",
        input_size,
        h,
        tuple(layers),
        num_layers=num_layers,
        bidirectional=bidirectional,
        gate_groups=f"{g} (no recurrent matrix)",
        shared_directions=True,
        note=_SHARED if bidirectional else "",
    )


def _read_ligru(module: nn.Module) -> Recurrence:
    return ligru(
        setting(module, "fea_dim"),
        setting(module, "hidden_size"),
        setting(module, "num_layers"),
        bool(module.bidirectional),
    )


def _read_sligru(module: nn.Module) -> Recurrence:
    return ligru(
        setting(module, "fea_dim"),
        setting(module, "hidden_size"),
        setting(module, "num_layers"),
        bool(module.bidirectional),
        kind="SLiGRU",
        recurrent_norm=bool(module.recurrent_elementwise_affine),
        drop_masks_saved=False,
    )


def _read_quasi_rnn(module: nn.Module) -> Recurrence:
    layers = module.qrnn
    assert isinstance(layers, nn.ModuleList)
    first = layers[0].w  # the input size is a constructor argument kept only by the first Linear
    assert isinstance(first, nn.Linear)
    kwargs = module.kwargs
    assert isinstance(kwargs, dict)
    return quasi_rnn(
        setting(first, "in_features"),
        setting(module, "hidden_size"),
        setting(module, "num_layers"),
        bool(module.bidirectional),
        bool(kwargs.get("output_gate", True)),
    )


def _infer_ligru(shapes: Shapes) -> Recurrence | None:
    u0, w0 = shape_of(shapes, "rnn.0.u.weight", 2), shape_of(shapes, "rnn.0.w.weight", 2)
    if u0 is None or w0 is None or u0[0] != 2 * u0[1]:
        return None
    h = u0[1]
    layers = 1 + max(int(m.group(1)) for n in shapes if (m := re.fullmatch(r"rnn\.(\d+)\.w\.weight", n)))
    w1 = shape_of(shapes, "rnn.1.w.weight", 2)
    bidirectional = w1 is not None and w1[1] == 2 * h
    sligru = "rnn.0.layer_norm.weight" in shapes or "rnn.0.drop_masks" not in shapes
    return ligru(
        w0[1],
        h,
        layers,
        bidirectional,
        kind="SLiGRU" if sligru else "LiGRU",
        recurrent_norm="rnn.0.layer_norm.weight" in shapes,
        drop_masks_saved=not sligru,
    )


@dataclass(frozen=True, slots=True)
class _Algebra:
    """How speechbrain's ``QLinear`` / ``CLinear`` store a weight: one real matrix per component."""

    name: str
    weights: tuple[str, ...]  # one (in/c, out) matrix each, in registration order
    bias: str  # the c·out bias vector's name
    module: str  # where the recurrent classes are defined

    @property
    def components(self) -> int:
        return len(self.weights)


_QUATERNION = _Algebra(
    "quaternion", ("r_weight", "i_weight", "j_weight", "k_weight"), "bias", "speechbrain.nnet.quaternion_networks.q_RNN"
)
_COMPLEX = _Algebra("complex", ("real_weight", "imag_weight"), "b", "speechbrain.nnet.complex_networks.c_RNN")


@dataclass(frozen=True, slots=True)
class _Kind:
    """One quaternion- or complex-valued class: its algebra, gate groups and what its layers hold."""

    name: str
    algebra: _Algebra
    gates: int
    bias: bool  # its layers' QLinear/CLinear are built with bias=True (whatever the class's bias says)
    norm: bool  # a normalisation of the input product (the LiGRUs)
    drop_masks: bool  # drop_masks registered as a buffer (QLSTM and QRNN keep it as a plain attribute)


_KINDS = (
    _Kind("QLSTM", _QUATERNION, 4, bias=True, norm=False, drop_masks=False),
    _Kind("QRNN", _QUATERNION, 1, bias=True, norm=False, drop_masks=False),
    _Kind("QLiGRU", _QUATERNION, 2, bias=False, norm=True, drop_masks=True),
    _Kind("CLSTM", _COMPLEX, 4, bias=True, norm=False, drop_masks=True),
    _Kind("CRNN", _COMPLEX, 1, bias=False, norm=False, drop_masks=True),
    _Kind("CLiGRU", _COMPLEX, 2, bias=False, norm=True, drop_masks=True),
)
#: The quaternion- and complex-valued classes :func:`hypercomplex_rnn` describes.
HYPERCOMPLEX_KINDS = tuple(k.name for k in _KINDS)


def _kind(name: str) -> _Kind:
    for kind in _KINDS:
        if kind.name == name:
            return kind
    raise InvalidSettingsError(f"kind should be one of {', '.join(HYPERCOMPLEX_KINDS)}, got: {name!r}")


def _components(prefix: str, algebra: _Algebra, width: int, out: int, source: str, out_symbol: str, role: str) -> Part:
    """``c`` matrices ``(width, out)``, one per component: ``c·source·out``."""
    c = algebra.components
    tensors = tuple((f"{prefix}.{w}", (width, out)) for w in algebra.weights)
    return Part(role, f"{c}·{source}·{out_symbol}", f"{c}·{width}·{out}", tensors)


def _hypercomplex_norm(prefix: str, algebra: _Algebra, h: int) -> Part:
    """The LiGRUs' normalisation of the ``2h``-unit input product."""
    if algebra is _QUATERNION:  # QBatchNorm: gamma per quaternion unit, beta per real feature
        tensors: tuple[tuple[str, tuple[int, ...]], ...] = ((f"{prefix}.gamma", (2 * h,)), (f"{prefix}.beta", (8 * h,)))
        return Part("norm", "2h + 8h", f"{2 * h} + {8 * h}", tensors)
    # CBatchNorm / CLayerNorm: three gammas per complex unit, beta per real feature
    gammas = tuple((f"{prefix}.{g}", (2 * h,)) for g in ("gamma_rr", "gamma_ii", "gamma_ri"))
    return Part("norm", "3·(2h) + 4h", f"3·{2 * h} + {4 * h}", (*gammas, (f"{prefix}.beta", (4 * h,))))


def _norm_buffers(prefix: str, algebra: _Algebra, batchnorm: bool) -> list[str]:
    if algebra is _QUATERNION:
        return [f"{prefix}.{b}" for b in ("running_mean", "running_var", "num_batches_tracked")]
    if not batchnorm:  # CLayerNorm keeps no statistics
        return []
    return [f"{prefix}.{b}" for b in ("num_batches_tracked", "moving_Vrr", "moving_Vii", "moving_Vri", "moving_mean")]


def hypercomplex_rnn(
    kind: str,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    *,
    batchnorm: bool = True,
) -> Recurrence:
    """speechbrain's quaternion- or complex-valued ``kind`` (one of :data:`HYPERCOMPLEX_KINDS`).

    ``input_size`` is the real input width (``fea_dim``), ``hidden_size`` the class's own, in
    quaternion (complex) units. ``batchnorm``: CLiGRU's ``normalization="batchnorm"`` (running
    statistics, buffers) rather than a layer norm; QLiGRU always holds a ``QBatchNorm``.

    >>> from torchlstm_params.recurrence import recurrence_formula
    >>> f = recurrence_formula(hypercomplex_rnn("QLSTM", 40, 16))
    >>> f.params, f.derivation
    (7168, '4·10·64 + 256 + 4·16·64 + 256 = 7,168')
    """
    k = _kind(kind)
    algebra, g, h = k.algebra, k.gates, hidden_size
    c = algebra.components
    out_symbol = "h" if g == 1 else f"({g}h)"
    layers = []
    buffers: list[str] = []
    for layer in range(num_layers):
        if layer == 0:
            width = input_size // c
            source = f"(in/{c})" if input_size % c == 0 else f"⌊in/{c}⌋"
        else:
            width, source = (2 * h, "(2h)") if bidirectional else (h, "h")
        prefix = f"rnn.{layer}"
        parts = [_components(f"{prefix}.w", algebra, width, g * h, source, out_symbol, "input")]
        if k.bias:
            parts.append(bias_vectors([f"{prefix}.w.{algebra.bias}"], c * g * h, symbol=f"{c * g}h"))
        parts.append(_components(f"{prefix}.u", algebra, h, g * h, "h", out_symbol, "recurrent"))
        if k.bias:
            parts.append(bias_vectors([f"{prefix}.u.{algebra.bias}"], c * g * h, symbol=f"{c * g}h"))
        if k.norm:
            parts.append(_hypercomplex_norm(f"{prefix}.norm", algebra, h))
            buffers += _norm_buffers(f"{prefix}.norm", algebra, batchnorm)
        layers.append(RecurrenceLayer(layer, "forward", tuple(parts)))
        buffers.append(f"{prefix}.h_init")
        if k.drop_masks:
            buffers.append(f"{prefix}.drop_masks")
    notes = [
        f"{algebra.name}-valued: h counts {algebra.name} units ({c}h real features); "
        f"each weight is {c} component matrices ({', '.join(algebra.weights)}), "
        + ("with bias vectors" if k.bias else "no bias vectors")
        + " whatever the class's bias setting"
    ]
    if input_size % c:
        notes.append(f"an input width of {input_size} is not a multiple of {c}: CLinear reads ⌊in/{c}⌋ features")
    if bidirectional:
        notes.append(_SHARED)
    return Recurrence(
        kind,
        input_size,
        h,
        tuple(layers),
        num_layers=num_layers,
        bidirectional=bidirectional,
        gate_groups=f"{g} ({algebra.name}-valued)",
        shared_directions=True,
        buffers=tuple(buffers),
        note="; ".join(notes),
    )


def _hypercomplex_reader(kind: str) -> Callable[[nn.Module], Recurrence]:
    k = _kind(kind)
    c = k.algebra.components

    def read(module: nn.Module) -> Recurrence:
        real = setting(module, "hidden_size")  # the class keeps c·h, the real output width
        if real % c:
            raise InvalidSettingsError(f"hidden_size should be a multiple of {c} (c·h real features), got: {real}")
        return hypercomplex_rnn(
            kind,
            setting(module, "fea_dim"),
            real // c,
            setting(module, "num_layers"),
            bool(module.bidirectional),
            batchnorm=getattr(module, "normalization", "batchnorm") == "batchnorm",
        )

    return read


def _hypercomplex_inferrer(kind: str) -> Callable[[Shapes], Recurrence | None]:
    k = _kind(kind)
    algebra, g = k.algebra, k.gates
    first = algebra.weights[0]

    def infer(shapes: Shapes) -> Recurrence | None:
        u0, w0 = shape_of(shapes, f"rnn.0.u.{first}", 2), shape_of(shapes, f"rnn.0.w.{first}", 2)
        if u0 is None or w0 is None or u0[1] != g * u0[0] or w0[1] != u0[1]:
            return None
        if (f"rnn.0.w.{algebra.bias}" in shapes) != k.bias or ("rnn.0.norm.beta" in shapes) != k.norm:
            return None
        h = u0[0]
        pattern = re.compile(rf"rnn\.(\d+)\.w\.{first}")
        layers = 1 + max(int(m.group(1)) for n in shapes if (m := pattern.fullmatch(n)))
        w1 = shape_of(shapes, f"rnn.1.w.{first}", 2)
        c = algebra.components
        recurrence = hypercomplex_rnn(
            kind,
            c * w0[0],
            h,
            layers,
            w1 is not None and w1[0] == 2 * h,
            batchnorm="rnn.0.norm.moving_mean" in shapes,
        )
        if algebra is _QUATERNION:
            return recurrence
        note = f"{recurrence.note}; the input width is read as {c} × rnn.0.w's rows (an odd width reads one less)"
        return dataclasses.replace(recurrence, note=note)

    return infer


CLASSES = (
    ThirdPartyClass("speechbrain", "speechbrain.nnet.RNN", "LiGRU", _read_ligru),
    ThirdPartyClass("speechbrain", "speechbrain.nnet.RNN", "SLiGRU", _read_sligru),
    ThirdPartyClass("speechbrain", "speechbrain.nnet.RNN", "QuasiRNN", _read_quasi_rnn),
    *(ThirdPartyClass("speechbrain", k.algebra.module, k.name, _hypercomplex_reader(k.name)) for k in _KINDS),
)
ANCHORS = (
    Anchor("rnn.0.h_init", "speechbrain.nnet.RNN.LiGRU", _infer_ligru),
    # One anchor per class on the first recurrent weight: each checks its gate groups, bias and norm.
    *(
        Anchor(f"rnn.0.u.{k.algebra.weights[0]}", f"{k.algebra.module}.{k.name}", _hypercomplex_inferrer(k.name))
        for k in _KINDS
    ),
)
