"""torch-geometric-temporal: recurrent cells whose gates are graph convolutions.

``in`` is ``in_channels``, ``h`` is ``out_channels``; ``K`` the Chebyshev order (one
``(h, width)`` matrix per order, ``lins.k.weight``) or the diffusion steps.

- ``GConvLSTM``: per gate (i, f, c, o) a ChebConv of the input and one of the hidden
  state, each with a bias when ``bias``; peepholes ``w_c_i``, ``w_c_f``, ``w_c_o`` and
  gate biases ``b_i``, ``b_f``, ``b_c``, ``b_o``, each ``(1, h)``, always.
- ``GConvGRU``: per gate (z, r, h) a ChebConv of the input and one of the hidden state.
- ``GCLSTM``: per gate (i, f, c, o) ``W`` ``(in, h)`` on the input, a ChebConv of the hidden
  state, and ``b`` ``(1, h)``.
- ``TGCN`` / ``TGCN2`` (and so ``A3TGCN`` / ``A3TGCN2``, which wrap one as ``_base_tgcn``):
  per gate (z, r, h) a GCNConv of the input (``lin.weight`` ``(h, in)``, ``bias``) and
  ``Linear(2h, h)`` on ``[conv, H]``.
- ``DCRNN``: per gate (z, r, h) a diffusion convolution of ``[X, H]``: ``weight``
  ``(2, K, in+h, h)`` (K steps, both directions of the graph) and a bias when ``bias``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..recurrence import Part, Recurrence, RecurrenceLayer, bias_vectors, combine, gate_matrix, graph_conv, peepholes
from .base import Anchor, Shapes, ThirdPartyClass, setting, shape_of

__all__ = ["ANCHORS", "CLASSES", "dcrnn", "gc_lstm", "gconv_gru", "gconv_lstm", "tgcn"]

_MODULE = "torch_geometric_temporal.nn.recurrent"


def _cheb(prefix: str, k: int, hidden: int, width: int, bias: bool, role: str, source: str) -> Part:
    weights = [f"{prefix}.lins.{j}.weight" for j in range(k)]
    return graph_conv(weights, f"{prefix}.bias" if bias else None, hidden, width, role=role, source=source)


def _cell(kind: str, in_channels: int, hidden: int, parts: Sequence[Part], gates: str) -> Recurrence:
    return Recurrence(
        kind, in_channels, hidden, (RecurrenceLayer(0, "forward", tuple(parts)),), is_cell=True, gate_groups=gates
    )


def _cheb_gates(gates: str, in_channels: int, hidden: int, k: int, bias: bool) -> list[Part]:
    return [
        combine([_cheb(f"conv_x_{g}", k, hidden, in_channels, bias, "graph_input", "in") for g in gates]),
        combine([_cheb(f"conv_h_{g}", k, hidden, hidden, bias, "graph_recurrent", "h") for g in gates]),
    ]


def gconv_lstm(in_channels: int, out_channels: int, k: int, bias: bool) -> Recurrence:
    """``GConvLSTM(in_channels, out_channels, K, bias=...)``."""
    h = out_channels
    parts = _cheb_gates("ifco", in_channels, h, k, bias)
    parts.append(peepholes(["w_c_i", "w_c_f", "w_c_o"], h, shape=(1, h)))
    parts.append(combine([bias_vectors([f"b_{g}"], h, shape=(1, h)) for g in "ifco"]))
    return _cell("GConvLSTM", in_channels, h, parts, "4 (graph convolutions)")


def gconv_gru(in_channels: int, out_channels: int, k: int, bias: bool) -> Recurrence:
    """``GConvGRU(in_channels, out_channels, K, bias=...)``."""
    return _cell("GConvGRU", in_channels, out_channels, _cheb_gates("zrh", in_channels, out_channels, k, bias), "3")


def gc_lstm(in_channels: int, out_channels: int, k: int, bias: bool) -> Recurrence:
    """``GCLSTM(in_channels, out_channels, K, bias=...)``."""
    h = out_channels
    parts = [
        combine([gate_matrix(f"W_{g}", 1, h, in_channels, transposed=True) for g in "ifco"]),
        combine([_cheb(f"conv_{g}", k, h, h, bias, "graph_recurrent", "h") for g in "ifco"]),
        combine([bias_vectors([f"b_{g}"], h, shape=(1, h)) for g in "ifco"]),
    ]
    return _cell("GCLSTM", in_channels, h, parts, "4")


def tgcn(in_channels: int, out_channels: int, kind: str = "TGCN") -> Recurrence:
    """``TGCN(in_channels, out_channels)`` (and ``TGCN2``): GCNConv gates, ``Linear(2h, h)`` updates."""
    h = out_channels
    parts = [
        combine([graph_conv([f"conv_{g}.lin.weight"], f"conv_{g}.bias", h, in_channels, hops="1") for g in "zrh"]),
        combine([gate_matrix(f"linear_{g}.weight", 1, h, 2 * h, role="recurrent", source="2h") for g in "zrh"]),
        bias_vectors([f"linear_{g}.bias" for g in "zrh"], h),
    ]
    return _cell(kind, in_channels, h, parts, "3")


def dcrnn(in_channels: int, out_channels: int, k: int, bias: bool) -> Recurrence:
    """``DCRNN(in_channels, out_channels, K, bias=...)``: diffusion convolutions of ``[X, H]``."""
    h, width = out_channels, in_channels + out_channels
    convs = [
        graph_conv(
            [f"conv_x_{g}.weight"],
            f"conv_x_{g}.bias" if bias else None,
            h,
            width,
            source="in+h",
            hops="2K",
            shape=(2, k, width, h),
        )
        for g in "zrh"
    ]
    return _cell("DCRNN", in_channels, h, [combine(convs)], "3")


def _settings(module: nn.Module) -> tuple[int, int, int, bool]:
    return setting(module, "in_channels"), setting(module, "out_channels"), setting(module, "K"), bool(module.bias)


def _read_tgcn(module: nn.Module) -> Recurrence:
    return tgcn(setting(module, "in_channels"), setting(module, "out_channels"), type(module).__name__)


def _cheb_order(shapes: Shapes, prefix: str) -> int:
    k = 0
    while f"{prefix}.lins.{k}.weight" in shapes:
        k += 1
    return k


def _infer_gconv(shapes: Shapes) -> Recurrence | None:
    lstm = "w_c_i" in shapes
    gate = "i" if lstm else "z"
    x, hh = shape_of(shapes, f"conv_x_{gate}.lins.0.weight", 2), shape_of(shapes, f"conv_h_{gate}.lins.0.weight", 2)
    if x is None or hh is None:
        return None
    args = (x[1], x[0], _cheb_order(shapes, f"conv_x_{gate}"), f"conv_x_{gate}.bias" in shapes)
    return gconv_lstm(*args) if lstm else gconv_gru(*args)


def _infer_gc_lstm(shapes: Shapes) -> Recurrence | None:
    w = shape_of(shapes, "W_i", 2)
    if w is None or "conv_i.lins.0.weight" not in shapes:
        return None
    return gc_lstm(w[0], w[1], _cheb_order(shapes, "conv_i"), "conv_i.bias" in shapes)


def _infer_tgcn(shapes: Shapes) -> Recurrence | None:
    conv = shape_of(shapes, "conv_z.lin.weight", 2)
    if conv is None or "linear_z.weight" not in shapes:
        return None
    return tgcn(conv[1], conv[0])


def _infer_dcrnn(shapes: Shapes) -> Recurrence | None:
    w = shape_of(shapes, "conv_x_z.weight", 4)
    if w is None or w[0] != 2 or w[2] <= w[3]:
        return None
    return dcrnn(w[2] - w[3], w[3], w[1], "conv_x_z.bias" in shapes)


CLASSES = (
    ThirdPartyClass(
        "torch-geometric-temporal", f"{_MODULE}.gconv_lstm", "GConvLSTM", lambda m: gconv_lstm(*_settings(m))
    ),
    ThirdPartyClass("torch-geometric-temporal", f"{_MODULE}.gconv_gru", "GConvGRU", lambda m: gconv_gru(*_settings(m))),
    ThirdPartyClass("torch-geometric-temporal", f"{_MODULE}.gc_lstm", "GCLSTM", lambda m: gc_lstm(*_settings(m))),
    ThirdPartyClass("torch-geometric-temporal", f"{_MODULE}.temporalgcn", "TGCN", _read_tgcn),
    ThirdPartyClass("torch-geometric-temporal", f"{_MODULE}.temporalgcn", "TGCN2", _read_tgcn),
    ThirdPartyClass("torch-geometric-temporal", f"{_MODULE}.dcrnn", "DCRNN", lambda m: dcrnn(*_settings(m))),
)
ANCHORS = (
    Anchor("conv_h_i.lins.0.weight", f"{_MODULE}.gconv_lstm.GConvLSTM", _infer_gconv),
    Anchor("conv_h_z.lins.0.weight", f"{_MODULE}.gconv_gru.GConvGRU", _infer_gconv),
    Anchor("conv_i.lins.0.weight", f"{_MODULE}.gc_lstm.GCLSTM", _infer_gc_lstm),
    Anchor("linear_z.weight", f"{_MODULE}.temporalgcn.TGCN", _infer_tgcn),
    Anchor("conv_x_z.weight", f"{_MODULE}.dcrnn.DCRNN", _infer_dcrnn),
)
