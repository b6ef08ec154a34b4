"""Keras recurrent layers -> PyTorch modules holding the same weights and computing the same function.

``from_keras("model.keras", layer="lstm")`` returns an ``nn.LSTM`` (``nn.GRU``, ``nn.RNN``) with
``batch_first=True``, like Keras, and the Keras weights in place:

- kernels are transposed: Keras keeps ``(input, gates·units)``, torch ``(gates·units, input)``;
- LSTM gates ``i, f, c, o`` are torch's ``i, f, g, o``; GRU gates ``z, r, h`` are reordered to ``r, z, n``;
- a GRU's ``(2, 3·units)`` bias (``reset_after=True``) splits into ``bias_ih`` and ``bias_hh``;
- an LSTM's or SimpleRNN's single bias becomes ``bias_ih``, and ``bias_hh`` is zero;
- a ``Bidirectional`` (concat) becomes ``bidirectional=True``, and stacked layers ``num_layers``,
  where their settings allow; otherwise an ``nn.ModuleList`` holds one module per layer
  (per direction), and :attr:`KerasConversion.notes` says why.

A ``reset_after=False`` GRU, or a layer with activations torch does not compute, raises
:class:`~torchlstm_params.errors.ConversionError` naming the reason. Masks are not converted:
:meth:`KerasConversion.keras_output` reproduces Keras's output for unmasked input.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor, nn

from .errors import ConversionError
from .keras_config import KerasLayer, KerasRNN, is_recurrent, model_layers, parse_layer, stack_blocker
from .keras_file import read_keras_file, read_layer_weights

__all__ = ["KerasConversion", "convert_keras", "from_keras"]

_Values = Mapping[str, Mapping[tuple[str, str], Tensor]]  # layer path -> (direction, role) -> Keras weight
_TORCH_CLASSES: dict[str, Callable[..., nn.RNNBase]] = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}


@dataclass(frozen=True, slots=True)
class KerasConversion:
    """A converted Keras layer (or stack): the module, the Keras layers it holds, and what to know.

    Attributes:
        module: ``nn.LSTM``, ``nn.GRU``, ``nn.RNN``, or an ``nn.ModuleList`` (see ``notes``).
        layers: the Keras layers it holds.
        notes: what to know when using it (how to call it, what differs).
    """

    module: nn.Module  # nn.LSTM / nn.GRU / nn.RNN, or an nn.ModuleList (see notes)
    layers: tuple[KerasLayer, ...]
    notes: tuple[str, ...]

    def keras_output(self, x: Tensor) -> Tensor:
        """What the Keras layer(s) return for ``x`` of shape ``(batch, time, features)`` (no mask).

        Reads the module's output the way Keras does: the last step for ``return_sequences=False``,
        ``go_backwards`` input reversed, a Bidirectional's backward half taken at its own last step.
        """
        module = self.module
        if len(self.layers) == 1:
            return _apply(self.layers[0], module, x)
        if isinstance(module, nn.RNNBase):  # a stack: its output is its top layer's
            return _apply(self.layers[-1], module, x)
        if not isinstance(module, nn.ModuleList) or len(module) != len(self.layers):
            raise ConversionError(f"module should be an nn.RNNBase or an nn.ModuleList of {len(self.layers)}")
        y = x
        for layer, part in zip(self.layers, module, strict=True):
            y = _apply(layer, part, y)
        return y


def _direction(module: nn.Module, rnn: KerasRNN, x: Tensor) -> Tensor:
    """One Keras recurrent layer on ``x``: its sequence in processing order, or its last step."""
    y: Tensor = module(x.flip(1) if rnn.go_backwards else x)[0]
    return y if rnn.return_sequences else y[:, -1]


def _apply(layer: KerasLayer, module: nn.Module, x: Tensor) -> Tensor:
    if layer.backward is None:
        return _direction(module, layer.forward, x)
    if isinstance(module, nn.RNNBase):  # a concat Bidirectional as bidirectional=True
        y: Tensor = module(x)[0]
        if layer.return_sequences:
            return y
        h = layer.forward.units
        # Keras joins the forward layer's last step with the backward layer's last step, which
        # torch's reverse direction produced at time 0.
        return torch.cat((y[:, -1, :h], y[:, 0, h:]), dim=-1)
    if not isinstance(module, nn.ModuleList) or len(module) != 2:
        raise ConversionError(f"layer {layer.path!r}: expected an nn.ModuleList of the two directions")
    forward = _direction(module[0], layer.forward, x)
    backward = _direction(module[1], layer.backward, x)
    if layer.return_sequences:
        backward = backward.flip(1)  # Keras puts the backward sequence back in time order
    if layer.merge_mode == "concat":
        return torch.cat((forward, backward), dim=-1)
    if layer.merge_mode == "sum":
        return forward + backward
    if layer.merge_mode == "mul":
        return forward * backward
    if layer.merge_mode == "ave":
        return (forward + backward) / 2
    raise ConversionError(
        f"layer {layer.path!r}: merge_mode=None returns the two directions as a list; run module[0] and module[1]"
    )


def _to_tensor(value: Any) -> Tensor:
    """A copy of a numpy array (h5py), or of a Keras variable's value (a tensor on the torch backend)."""
    if isinstance(value, Tensor):
        return value.detach().cpu().clone()
    import numpy as np  # h5py's arrays, and other Keras backends' values, convert through numpy

    return torch.from_numpy(np.array(value))


def _variables(layer: Any) -> list[Tensor]:
    """A live Keras layer's weights in Keras's order (``layer.weights``; ``get_weights()`` warns under numpy 2)."""
    return [_to_tensor(getattr(v, "value", v)) for v in layer.weights]


def _gru_order(units: int) -> Tensor:
    """Keras's ``z, r, h`` column blocks in torch's ``r, z, n`` order."""
    return torch.cat((torch.arange(units, 2 * units), torch.arange(0, units), torch.arange(2 * units, 3 * units)))


def _torch_tensors(rnn: KerasRNN, weights: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``weight_ih, weight_hh, bias_ih, bias_hh`` from one Keras direction's ``kernel, recurrent_kernel, bias``."""
    kernel, recurrent = weights["kernel"], weights["recurrent_kernel"]
    order = _gru_order(rnn.units) if rnn.class_name == "GRU" else torch.arange(kernel.shape[1])
    out = {"weight_ih": kernel[:, order].T, "weight_hh": recurrent[:, order].T}
    if rnn.use_bias:
        bias = weights["bias"]
        if bias.dim() == 2:  # GRU reset_after=True: row 0 the input bias, row 1 the recurrent bias
            out["bias_ih"], out["bias_hh"] = bias[0][order], bias[1][order]
        else:
            out["bias_ih"], out["bias_hh"] = bias[order], torch.zeros_like(bias)
    return out


def _module(layers: Sequence[KerasLayer], values: _Values) -> nn.RNNBase:
    """One ``nn`` module for one layer, or for a stack ``stack_blocker`` accepts."""
    first = layers[0]
    rnn = first.forward
    dtype = values[first.path][("forward", "kernel")].dtype
    kwargs: dict[str, Any] = {
        "num_layers": len(layers),
        "bias": rnn.use_bias,
        "batch_first": True,
        "bidirectional": first.bidirectional,
        "dtype": dtype,
    }
    if rnn.class_name == "SimpleRNN":
        kwargs["nonlinearity"] = "relu" if rnn.activation == "relu" else "tanh"
    module = _TORCH_CLASSES[rnn.torch_class](first.size, rnn.units, **kwargs)
    with torch.no_grad():
        for k, layer in enumerate(layers):
            for index, keras_rnn in enumerate(layer.directions):
                direction, suffix = ("forward", "") if index == 0 else ("backward", "_reverse")
                weights = {role: t for (d, role), t in values[layer.path].items() if d == direction}
                for name, tensor in _torch_tensors(keras_rnn, weights).items():
                    getattr(module, f"{name}_l{k}{suffix}").copy_(tensor)
    return module


def _direction_module(layer: KerasLayer, index: int, values: _Values) -> nn.RNNBase:
    """A unidirectional module for one direction of a Bidirectional that ``bidirectional=True`` cannot express."""
    name = ("forward", "backward")[index]
    single = KerasLayer(layer.path, layer.class_name, layer.directions[index], None, "concat", layer.input_size)
    moved = {("forward", role): t for (d, role), t in values[layer.path].items() if d == name}
    return _module([single], {layer.path: moved})


def _layer_module(layer: KerasLayer, values: _Values) -> nn.Module:
    if layer.backward is None or layer.symmetric:
        return _module([layer], values)
    return nn.ModuleList([_direction_module(layer, 0, values), _direction_module(layer, 1, values)])


def _resolve(candidates: Sequence[KerasLayer], name: str) -> KerasLayer:
    exact = [c for c in candidates if c.path == name]
    if exact:
        return exact[0]
    short = [c for c in candidates if c.path.split("/")[-1] == name]
    if len(short) == 1:
        return short[0]
    known = ", ".join(repr(c.path) for c in candidates) or "none"
    if len(short) > 1:
        raise ConversionError(f"layer {name!r} is ambiguous: give one of {', '.join(repr(c.path) for c in short)}")
    raise ConversionError(f"no recurrent layer named {name!r}; the recurrent layers are: {known}")


def _choose(candidates: Sequence[KerasLayer], layer: str | Sequence[str] | None) -> tuple[KerasLayer, ...]:
    if not candidates:
        raise ConversionError("the model holds no LSTM, GRU or SimpleRNN layer (nor a Bidirectional around one)")
    if layer is None:
        chosen = tuple(candidates)
        if len(chosen) > 1 and any(upper.inbound != (lower.path,) for lower, upper in pairwise(chosen)):
            listed = ", ".join(repr(c.path) for c in chosen)
            raise ConversionError(
                f"the model's recurrent layers {listed} are not one stack: pick one (or a stack) with layer="
            )
        return chosen
    names = [layer] if isinstance(layer, str) else list(layer)
    if not names:
        raise ConversionError("layer= is an empty list: name at least one Keras layer")
    chosen = tuple(_resolve(candidates, n) for n in names)
    for lower, upper in pairwise(chosen):
        if upper.inbound != (lower.path,):
            raise ConversionError(
                f"{upper.path!r} is not fed by {lower.path!r} alone: layer= must list a stack, lowest layer first"
            )
    return chosen


def _notes(layers: Sequence[KerasLayer], merged: bool, reason: str | None) -> list[str]:
    notes = []
    if not merged:
        notes.append(f"an nn.ModuleList holds one module per Keras layer, because {reason}")
    for layer in layers:
        note = layer.torch_note
        if note and not note.startswith("go_backwards"):
            notes.append(f"layer {layer.path!r}: {note}")
        for rnn in layer.directions:
            if rnn.go_backwards and layer.backward is None:
                notes.append(f"layer {layer.path!r}: go_backwards=True; the module reads x.flip(1) (keras_output does)")
            if rnn.dropout or rnn.recurrent_dropout:
                notes.append(
                    f"layer {layer.path!r}: dropout={rnn.dropout}, recurrent_dropout={rnn.recurrent_dropout} act in "
                    "training only; the module has no dropout"
                )
            if rnn.return_state:
                notes.append(f"layer {layer.path!r}: return_state=True; keras_output gives the main output only")
        if layer.bidirectional and layer.symmetric and not layer.return_sequences:
            h = layer.forward.units
            notes.append(
                f"layer {layer.path!r}: Keras returns the backward direction's last step, which is "
                f"output[:, 0, {h}:] of the torch module, next to output[:, -1, :{h}] (keras_output does this)"
            )
    return list(dict.fromkeys(notes))


def _check_blockers(layers: Sequence[KerasLayer]) -> None:
    for layer in layers:
        if layer.blocker is not None:
            raise ConversionError(f"layer {layer.path!r} ({layer.label}) has no PyTorch equivalent: {layer.blocker}")


def _from_values(chosen: Sequence[KerasLayer], values: _Values, extra_notes: Sequence[str]) -> KerasConversion:
    _check_blockers(chosen)
    reasons = [stack_blocker(lower, upper) for lower, upper in pairwise(chosen)]
    reason = next((r for r in reasons if r is not None), None)
    module: nn.Module
    if len(chosen) == 1:
        module = _layer_module(chosen[0], values)
    elif reason is None:  # stack_blocker accepts only layers one module expresses
        module = _module(chosen, values)
    else:
        module = nn.ModuleList([_layer_module(layer, values) for layer in chosen])
    merged = len(chosen) == 1 or reason is None
    return KerasConversion(module, tuple(chosen), tuple(_notes(chosen, merged, reason)) + tuple(extra_notes))


def _check_shapes(layer: KerasLayer, weights: Mapping[tuple[str, str], Tensor]) -> None:
    for direction, role, shape in layer.expected_weights():
        found = weights.get((direction, role))
        if found is None or tuple(found.shape) != shape:
            got = "nothing" if found is None else tuple(found.shape)
            raise ConversionError(f"layer {layer.path!r} {direction} {role}: expected shape {shape}, found {got}")


def _live(source: Any) -> tuple[tuple[KerasLayer, ...], dict[str, dict[tuple[str, str], Tensor]], list[str]]:
    """The recurrent layers of a live Keras model or layer, and their weights (no Keras import: duck typing)."""
    if not hasattr(source, "get_config") or not hasattr(source, "weights"):
        raise ConversionError(
            f"from_keras takes a .keras/.h5 path or a Keras model or layer, got {type(source).__name__}"
        )
    if isinstance(getattr(source, "layers", None), list):
        layers, notes = model_layers({"class_name": type(source).__name__, "config": source.get_config()})

        def lookup(path: str) -> Any:
            obj = source
            for part in path.split("/"):
                obj = obj.get_layer(part)
            return obj
    else:
        build = source.get_build_config() if hasattr(source, "get_build_config") else None
        entry = {"class_name": type(source).__name__, "config": source.get_config(), "build_config": build}
        if not is_recurrent(entry):
            raise ConversionError(
                f"{type(source).__name__} is not LSTM, GRU, SimpleRNN or Bidirectional around one of them"
            )
        layers, notes = (parse_layer(entry),), ()

        def lookup(path: str) -> Any:
            return source

    values: dict[str, dict[tuple[str, str], Tensor]] = {}
    resolved = []
    for layer in layers:
        arrays = _variables(lookup(layer.path))
        if layer.input_size is None and arrays and arrays[0].dim() == 2:
            layer = replace(layer, input_size=int(arrays[0].shape[0]))
        keys = [(d, role) for d, role, _ in layer.expected_weights()] if arrays else []
        weights = dict(zip(keys, arrays, strict=False))
        if len(arrays) != len(keys):
            raise ConversionError(f"layer {layer.path!r}: expected {len(keys)} weights, found {len(arrays)}")
        values[layer.path] = weights
        resolved.append(layer)
    return tuple(resolved), values, list(notes)


def convert_keras(source: str | os.PathLike[str] | Any, layer: str | Sequence[str] | None = None) -> KerasConversion:
    """Convert a Keras recurrent layer (or a stack of them) to a PyTorch module with the same weights.

    ``source`` is a ``.keras`` or legacy ``.h5`` file (needs h5py) or a live Keras model or layer.
    ``layer`` names a layer (its path ``"encoder/lstm"`` or a unique name), a list of layers forming
    a stack (lowest first), or None for the model's only recurrent layer or stack.
    """
    if isinstance(source, str | os.PathLike):
        report = read_keras_file(source)
        chosen = _choose([r.layer for r in report.layers], layer)
        _check_blockers(chosen)
        arrays = read_layer_weights(source, chosen)
        values = {path: {key: _to_tensor(a) for key, a in weights.items()} for path, weights in arrays.items()}
        notes = [n for n in report.notes if "mask" in n]
    else:
        layers, values, live_notes = _live(source)
        chosen = _choose(layers, layer)
        notes = [n for n in live_notes if "mask" in n]
    for c in chosen:
        _check_shapes(c, values[c.path])
    return _from_values(chosen, values, notes)


def from_keras(source: str | os.PathLike[str] | Any, layer: str | Sequence[str] | None = None) -> nn.Module:
    """The PyTorch module of :func:`convert_keras` (an ``nn.LSTM``/``nn.GRU``/``nn.RNN`` or an ``nn.ModuleList``)."""
    return convert_keras(source, layer).module
