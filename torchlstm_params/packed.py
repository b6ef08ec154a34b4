"""Quantized modules: the logical tensors behind packed weights.

``torch.ao.quantization.quantize_dynamic`` replaces an LSTM/GRU's (and a Linear's)
parameters by packed ``ScriptObject``s, so ``parameters()`` yields nothing and a
numel sum says 0; static quantization does the same to Linear, Conv and Embedding
layers. The packed objects still know each weight's shape and dtype; this module
asks them (``quantized::linear_unpack`` and the modules' own ``_weight_bias``),
without running the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import torch
from torch import nn
from torch.ao.nn.quantized import Embedding as QuantizedEmbedding
from torch.ao.nn.quantized.modules.utils import WeightedQuantizedModule

__all__ = ["PACKED_CLASSES", "PackedStorage", "packed_module", "packed_tensors"]

#: Non-recurrent classes whose weights quantization packs out of ``parameters()``: quantized and
#: dynamic-quantized Linear and Conv (and their fused variants, all WeightedQuantizedModule), and
#: quantized Embedding/EmbeddingBag. Dynamic-quantized LSTM/GRU/cells are recurrent: see packed_tensors.
PACKED_CLASSES: Final = (WeightedQuantizedModule, QuantizedEmbedding)

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


def _storage_of(tensors: list[torch.Tensor]) -> PackedStorage:
    totals: dict[str, list[int]] = {}
    for t in tensors:
        dtype = str(t.dtype).removeprefix("torch.")
        _add(totals, dtype, t.numel(), t.numel() * t.element_size())
    return PackedStorage(tuple((dt, n, b) for dt, (n, b) in sorted(totals.items())))


def packed_module(module: nn.Module) -> tuple[int, PackedStorage]:
    """Logical elements (weight and bias) and storage of a module in :data:`PACKED_CLASSES`."""
    quantized: Any = module  # their weight()/_weight_bias() are untyped methods
    if isinstance(module, QuantizedEmbedding):
        tensors = [quantized.weight()]
    else:
        weight, bias = quantized._weight_bias()
        tensors = [t for t in (weight, bias) if t is not None]
    storage = _storage_of(tensors)
    packed_params = getattr(module, "_packed_params", None)
    if getattr(packed_params, "dtype", None) == torch.float16:  # fp16 packing: unpacks to float32, holds float16
        weight = tensors[0]
        totals: dict[str, list[int]] = {}
        _add(totals, "float16", weight.numel(), weight.numel() * 2)
        for t in tensors[1:]:
            _add(totals, str(t.dtype).removeprefix("torch."), t.numel(), t.numel() * t.element_size())
        storage = PackedStorage(tuple((dt, n, b) for dt, (n, b) in sorted(totals.items())))
    return sum(t.numel() for t in tensors), storage
