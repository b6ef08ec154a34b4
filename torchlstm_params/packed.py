"""Dynamic-quantized recurrent modules: the logical tensors behind packed weights.

``torch.ao.quantization.quantize_dynamic`` replaces an LSTM/GRU's parameters by
packed ``ScriptObject``s, so ``parameters()`` yields nothing and a numel sum
says 0. The packed objects still know each weight's shape and dtype; this
module asks them (``quantized::linear_unpack``), without running the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["PackedStorage", "packed_tensors"]

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PackedStorage:
    """What the packed weights and their float biases occupy.

    ``bytes`` counts element storage only; per-tensor quantization scales and
    zero points (a few bytes per weight matrix) are not included.

    Attributes:
        dtypes: per dtype: (dtype, elements, bytes).
    """

    dtypes: tuple[tuple[str, int, int], ...]  # (dtype, elements, bytes)

    @property
    def bytes(self) -> int:
        return sum(b for _, _, b in self.dtypes)

    @property
    def elements(self) -> int:
        return sum(n for _, n, _ in self.dtypes)


def _unpack(packed: torch.ScriptObject, fp16: bool) -> tuple[Shape, str, int, torch.Tensor | None]:
    """(shape, storage dtype, bytes) of one packed linear weight, and the bias packed with it."""
    if fp16:
        weight, bias = torch.ops.quantized.linear_unpack_fp16(packed)
        return tuple(weight.shape), "float16", weight.numel() * 2, bias
    weight, bias = torch.ops.quantized.linear_unpack(packed)
    dtype = str(weight.dtype).removeprefix("torch.")
    return tuple(weight.shape), dtype, weight.numel() * weight.element_size(), bias


def _add(totals: dict[str, list[int]], dtype: str, elements: int, size: int) -> None:
    entry = totals.setdefault(dtype, [0, 0])
    entry[0] += elements
    entry[1] += size


def packed_tensors(module: nn.Module, directions: int) -> tuple[dict[str, Shape], PackedStorage]:
    """Formula name -> logical shape, and the storage, of a dynamic-quantized RNN or cell."""
    shapes: dict[str, Shape] = {}
    totals: dict[str, list[int]] = {}
    groups: list[tuple[str, bool, list[torch.Tensor], list[torch.ScriptObject]]] = []
    weights = getattr(module, "_all_weight_values", None)
    if isinstance(weights, nn.ModuleList):  # LSTM / GRU: one CellParams per layer and direction
        for j, packed_param in enumerate(weights):
            state: Any = packed_param.param.__getstate__()
            (tag, biases, _, _, linears), _ = state
            layer, direction = divmod(j, directions)
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            groups.append((sfx, tag.endswith("fp16"), list(biases), list(linears)))
    else:  # cells keep two packed linears and plain float biases
        biases = [b for b in (getattr(module, "bias_ih", None), getattr(module, "bias_hh", None)) if b is not None]
        fp16 = getattr(module, "weight_dtype", None) == torch.float16
        cell_linears: list[Any] = [module.__dict__["_packed_weight_ih"], module.__dict__["_packed_weight_hh"]]
        groups.append(("", fp16, biases, cell_linears))
    for sfx, fp16, biases, linears in groups:
        packed_biases = []
        for role, linear in zip(("ih", "hh"), linears, strict=True):
            shape, dtype, size, bias = _unpack(linear, fp16)
            shapes[f"weight_{role}{sfx}"] = shape
            _add(totals, dtype, shape[0] * shape[1], size)
            if bias is not None:
                packed_biases.append(bias)
        # fp16 packing keeps the float biases inside the packed linears; qint8 keeps them beside.
        for role, bias in zip(("ih", "hh"), biases or packed_biases, strict=False):
            shapes[f"bias_{role}{sfx}"] = tuple(bias.shape)
            _add(totals, str(bias.dtype).removeprefix("torch."), bias.numel(), bias.numel() * bias.element_size())
    storage = PackedStorage(tuple((dt, n, b) for dt, (n, b) in sorted(totals.items())))
    return shapes, storage
