"""A pickled module tree, read safely (:mod:`torchlstm_params.pickled`) -> a meta-device stand-in model.

A whole-model pickle (``torch.save(model)``, a TorchScript archive, a checkpoint holding the model)
records each module's ``_parameters``, ``_buffers``, ``_modules`` and settings, so nothing needs
to be inferred: the stand-in has the file's tree, its split of parameters and buffers, its
``requires_grad`` flags, its ties and shared modules, and each torch recurrent module is a real
``nn.LSTM``/``GRU``/``RNN``/cell object carrying the pickled settings (made without running its
``__init__``, as :class:`~torchlstm_params.standin.ModuleMaker` does). Other classes are stand-in
classes named after the pickled ones, whose ``forward`` refuses to run: no code of the file's
classes is ever imported.

Quantized modules keep their weights in packed objects that only torch can unpack: read safely,
they are named in a note and not counted (``--trust-pickle`` loads them for real).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NoReturn

import torch
from torch import nn

from .errors import CheckpointError, InvalidSettingsError
from .formulas import formula, make_spec
from .names import qualified
from .pickled import PickledModule, RecurrentSettings, recurrent_settings
from .standin import ModuleMaker, StandIn
from .unpickle import PickledTensor

__all__ = ["build_from_pickled"]

_FULL: Final[Mapping[str, type[nn.Module]]] = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}
_CELLS: Final[Mapping[str, type[nn.Module]]] = {"LSTMCell": nn.LSTMCell, "GRUCell": nn.GRUCell, "RNNCell": nn.RNNCell}
_QUANTIZED_PREFIXES: Final = ("torch.ao.nn.quantized.", "torch.nn.quantized.", "torch.ao.nn.intrinsic.quantized.")
_PACKED_STATE: Final = ("_packed_params", "_all_weight_values", "_packed_weight_ih")
_FULL_DEFAULTS: Final[Mapping[str, object]] = {
    "num_layers": 1,
    "bias": True,
    "batch_first": False,
    "dropout": 0.0,
    "bidirectional": False,
    "proj_size": 0,
}


def _not_run(self: nn.Module, *args: Any, **kwargs: Any) -> NoReturn:
    raise CheckpointError(f"{type(self).__name__} is a stand-in read from a file: its code was never loaded")


class _Classes:
    """One stand-in class per pickled class name (per build): the table shows the file's class names."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, type[nn.Module]], type[nn.Module]] = {}

    def get(self, qualname: str, base: type[nn.Module] = nn.Module) -> type[nn.Module]:
        made = self._made.get((qualname, base))
        if made is None:
            short = qualname.rpartition(".")[2] or "Module"
            namespace = {"__module__": "torchlstm_params.whole_model", "__qualname__": short, "forward": _not_run}
            namespace["pickled_class"] = qualname
            made = self._made[(qualname, base)] = type(short, (base,), namespace)
        return made


def _recurrent_attributes(found: RecurrentSettings, module: PickledModule) -> dict[str, object] | None:
    """The attributes torch's own class keeps, from the pickled settings; None when some are not recorded."""
    settings = dict(found.settings)
    if "input_size" not in settings or "hidden_size" not in settings:
        return None
    if found.kind in _CELLS:
        settings.setdefault("bias", True)
        if found.kind == "RNNCell":
            settings.setdefault("nonlinearity", "tanh")
        return settings
    for name, default in _FULL_DEFAULTS.items():
        settings.setdefault(name, default)
    if found.kind == "RNN" and "mode" not in settings:
        settings["mode"] = "RNN_RELU" if settings.get("nonlinearity") == "relu" else "RNN_TANH"
    settings.setdefault("mode", found.kind)
    names = module.state.get("_flat_weights_names")
    flat = list(names) if isinstance(names, list) and all(isinstance(n, str) for n in names) else []
    settings.update(_flat_weights_names=flat, _all_weights=[], _flat_weights=[])
    return settings


def _is_packed(module: PickledModule) -> bool:
    """A quantized module whose weights sit in packed objects (no parameters of its own)."""
    return (
        module.class_name.startswith(_QUANTIZED_PREFIXES)
        and not module.parameters
        and any(key in module.state or key in module.children for key in _PACKED_STATE)
    )


def _formula_count(found: RecurrentSettings) -> int | None:
    s = found.settings
    try:
        spec = make_spec(
            found.kind,
            s.get("input_size"),
            s.get("hidden_size"),
            s.get("num_layers", 1),
            bias=bool(s.get("bias", True)),
            bidirectional=bool(s.get("bidirectional", False)),
            proj_size=s.get("proj_size", 0),
        )
    except InvalidSettingsError:
        return None
    return formula(spec).params


def _packed_note(path: str, module: PickledModule, found: RecurrentSettings | None) -> str:
    count = None if found is None else _formula_count(found)
    said = "" if count is None else f"; its settings' formula says {count:,} parameters"
    return (
        f"{path or '(root)'} ({module.class_name}): quantized weights are packed in objects only torch can unpack, "
        f"so they are not counted when the file is read without running it{said} (--trust-pickle counts them)"
    )


def build_from_pickled(root: PickledModule) -> StandIn:
    """A meta-device module tree with the pickled tree's modules, tensors and settings."""
    return _build(root)


def _build(root: PickledModule) -> StandIn:
    maker = ModuleMaker()
    classes = _Classes()
    tensors: dict[int, torch.Tensor] = {}
    by_view: dict[tuple[object, ...], torch.Tensor] = {}
    notes: list[str] = []

    def tensor(record: PickledTensor, as_parameter: bool) -> torch.Tensor:
        made = tensors.get(id(record))
        if made is not None:
            return made
        key = record.tie_key
        if key is not None:
            made = by_view.get((key, as_parameter))
        if made is None:
            made = torch.empty(record.shape, dtype=record.dtype, device="meta")
            if as_parameter:
                grad = record.requires_grad and (record.dtype.is_floating_point or record.dtype.is_complex)
                made = nn.Parameter(made, requires_grad=grad)
            if key is not None:
                by_view[(key, as_parameter)] = made
        tensors[id(record)] = made
        return made

    built: dict[int, nn.Module] = {}
    # Iterative, parents first: a file may nest modules deeper than Python's recursion limit.
    stack: list[tuple[str, PickledModule, nn.Module | None, str, bool]] = [("", root, None, "", False)]
    top: nn.Module | None = None
    while stack:
        path, module, parent, name, inside_packed = stack.pop()
        existing = built.get(id(module))
        if existing is not None:  # one module under two names, as in the live model
            assert parent is not None
            parent._modules[name] = existing
            continue
        found = recurrent_settings(module)
        packed = _is_packed(module)
        attributes = None if found is None or packed else _recurrent_attributes(found, module)
        if packed and not inside_packed:  # one note for a packed module, none for its packed parts
            notes.append(_packed_note(path, module, found))
        if found is not None and attributes is not None:
            cls = _FULL[found.kind] if found.kind in _FULL else _CELLS[found.kind]
            made = maker.make(cls if found.from_class else classes.get(module.class_name, cls))
            made.__dict__.update(attributes)
        else:
            made = maker.make(classes.get(module.class_name))
        made.training = bool(module.settings.get("training", True))
        for key, record in module.parameters.items():
            made._parameters[key] = tensor(record, as_parameter=True)  # type: ignore[assignment]
        for key, record in module.buffers.items():
            made._buffers[key] = tensor(record, as_parameter=False)
        made._non_persistent_buffers_set.update(module.non_persistent)
        for key, record in module.tensors.items():  # plain tensor attributes (a weight-drop's weight)
            made.__dict__[key] = tensor(record, as_parameter=False)
        if isinstance(made, nn.RNNBase):
            made._flat_weights = [made._parameters.get(n) for n in made._flat_weights_names]
        built[id(module)] = made
        if parent is None:
            top = made
        else:
            parent._modules[name] = made
        for child_name, child in reversed(list(module.children.items())):
            child_path = qualified(path, child_name)
            stack.append((child_path, child, made, child_name, inside_packed or packed))
    assert top is not None
    return StandIn(top, tuple(notes), trainable_recorded=True)
