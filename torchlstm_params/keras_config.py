"""Keras model configs (the dicts of ``config.json``) -> the recurrent layers they hold.

Pure functions over plain dicts: no Keras import and no file access, so a
``.keras`` file's config, a legacy ``.h5`` file's ``model_config`` and a live
model's ``get_config()`` all go through the same code.

Keras keeps one bias vector per gate (a ``reset_after=True`` GRU keeps two);
PyTorch keeps two. The counts here use the Keras convention of
:func:`~torchlstm_params.formulas.keras_count` and name the PyTorch module that
computes the same function, with its own count.

>>> config = {"name": "lstm", "units": 2}
>>> layer = parse_layer({"class_name": "LSTM", "config": config, "build_config": {"input_shape": [None, 5, 3]}})
>>> layer.keras_params, layer.torch_expression, layer.torch_params
(48, 'nn.LSTM(3, 2, batch_first=True)', 56)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from .errors import ForeignFileError
from .formulas import RNNSpec, count_params, keras_count, keras_derivation, make_spec

__all__ = [
    "KERAS_RECURRENT",
    "RESET_BEFORE",
    "KerasLayer",
    "KerasRNN",
    "find_stacks",
    "is_recurrent",
    "model_layers",
    "parse_layer",
    "stack_blocker",
    "stack_expression",
    "torch_count",
]

#: Keras recurrent layer classes and their PyTorch counterparts.
KERAS_RECURRENT: Final = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}
_CELLS: Final = {"LSTMCell": "LSTM", "GRUCell": "GRU", "SimpleRNNCell": "SimpleRNN"}
_GATES: Final = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}
#: Layers that read like recurrent ones but are not read as such (counted among the other weights).
_OTHER_RECURRENT: Final = frozenset({"RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "StackedRNNCells"})
_MERGE_MODES: Final = ("concat", "sum", "mul", "ave", None)

#: Why ``reset_after=False`` has no ``nn.GRU``; one wording for the report and the conversion error.
RESET_BEFORE: Final = (
    "reset_after=False applies the reset gate before the recurrent product (U_h·(r ⊙ h_{t-1})), "
    "while nn.GRU applies it after (r ⊙ (W_hn·h_{t-1} + b_hn), Keras's reset_after=True)"
)


def _activation(value: object) -> str:
    """``"tanh"`` from ``"tanh"`` or a serialized activation dict."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        config = value.get("config")
        if isinstance(config, Mapping) and isinstance(config.get("name"), str):
            return str(config["name"])
        if isinstance(value.get("class_name"), str):
            return str(value["class_name"])
    return repr(value)


@dataclass(frozen=True, slots=True)
class KerasRNN:
    """One direction of a Keras ``LSTM``, ``GRU`` or ``SimpleRNN``: the settings that fix its weights and function.

    Attributes:
        name: the layer's name.
        class_name: ``LSTM``, ``GRU`` or ``SimpleRNN``.
        units: the hidden size.
        use_bias: whether it has a bias.
        activation: the output activation.
        recurrent_activation: the gates' activation (``""`` for SimpleRNN, which has none).
        reset_after: GRU only: Keras 3's default True keeps an input and a recurrent bias per gate.
        go_backwards: whether it reads the sequence backwards.
        return_sequences: whether it returns every step.
        return_state: whether it returns its final states.
        dropout: input dropout.
        recurrent_dropout: recurrent-state dropout.
        unit_forget_bias: LSTM only; an initializer setting, no effect on a trained layer.
    """

    name: str
    class_name: str  # "LSTM", "GRU" or "SimpleRNN"
    units: int
    use_bias: bool = True
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"  # "" for SimpleRNN, which has none
    reset_after: bool = True  # GRU only
    go_backwards: bool = False
    return_sequences: bool = False
    return_state: bool = False
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    unit_forget_bias: bool = True  # LSTM only; an initializer setting, no effect on a trained layer

    @property
    def gates(self) -> int:
        return _GATES[self.class_name]

    @property
    def torch_class(self) -> str:
        return KERAS_RECURRENT[self.class_name]

    @property
    def torch_kind(self) -> str:
        """The :class:`~torchlstm_params.formulas.RNNSpec` kind (``RNN_RELU`` for a relu SimpleRNN)."""
        if self.class_name == "SimpleRNN":
            return "RNN_RELU" if self.activation == "relu" else "RNN_TANH"
        return self.class_name

    @property
    def blocker(self) -> str | None:
        """Why no ``torch.nn`` recurrent module computes this layer, or None when one does."""
        if self.class_name == "SimpleRNN":
            if self.activation not in ("tanh", "relu"):
                return f"activation={self.activation!r}: nn.RNN computes tanh or relu only"
            return None
        if self.activation != "tanh" or self.recurrent_activation != "sigmoid":
            return (
                f"activation={self.activation!r}, recurrent_activation={self.recurrent_activation!r}: "
                f"nn.{self.class_name} computes tanh and sigmoid only"
            )
        if self.class_name == "GRU" and not self.reset_after:
            return RESET_BEFORE
        return None

    def spec(self, input_size: int) -> RNNSpec:
        return make_spec(self.torch_kind, input_size, self.units, bias=self.use_bias)

    def keras_params(self, input_size: int) -> int:
        return keras_count(self.spec(input_size), reset_after=self.reset_after)

    def weight_shapes(self, input_size: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """``(role, shape)`` of each Keras weight, in the order Keras stores them."""
        gh = self.gates * self.units
        shapes: list[tuple[str, tuple[int, ...]]] = [
            ("kernel", (input_size, gh)),
            ("recurrent_kernel", (self.units, gh)),
        ]
        if self.use_bias:
            two = self.class_name == "GRU" and self.reset_after
            shapes.append(("bias", (2, gh) if two else (gh,)))
        return tuple(shapes)

    def expression(self, input_size: int, *, bidirectional: bool = False, num_layers: int = 1) -> str:
        """The ``torch.nn`` constructor call that holds this layer's weights (batch-major, like Keras)."""
        args = [str(input_size), str(self.units)]
        if num_layers != 1:
            args.append(f"num_layers={num_layers}")
        if self.torch_kind == "RNN_RELU":
            args.append("nonlinearity='relu'")
        if not self.use_bias:
            args.append("bias=False")
        args.append("batch_first=True")
        if bidirectional:
            args.append("bidirectional=True")
        return f"nn.{self.torch_class}({', '.join(args)})"

    def same_cell(self, other: KerasRNN) -> bool:
        """Same class, size and function settings (what one ``nn`` module needs of both)."""
        return (
            self.class_name,
            self.units,
            self.use_bias,
            self.activation,
            self.recurrent_activation,
            self.reset_after,
        ) == (
            other.class_name,
            other.units,
            other.use_bias,
            other.activation,
            other.recurrent_activation,
            other.reset_after,
        )


@dataclass(frozen=True, slots=True)
class KerasLayer:
    """A Keras recurrent layer: an ``LSTM``, ``GRU``, ``SimpleRNN`` or a ``Bidirectional`` around one.

    Attributes:
        path: its name, with the names of enclosing models (``encoder/lstm``).
        class_name: as the config says (``LSTM``, ``Bidirectional``...).
        forward: the forward (or only) direction's settings.
        backward: a ``Bidirectional``'s backward direction (None otherwise).
        merge_mode: a ``Bidirectional``'s merge mode.
        input_size: input features (None: not in the config; read from the kernel's shape instead).
        inbound: paths of the layers feeding it (None: the config does not say).
    """

    path: str  # its name, with the names of enclosing models: "encoder/lstm"
    class_name: str  # as the config says: "LSTM", "Bidirectional", ...
    forward: KerasRNN
    backward: KerasRNN | None = None
    merge_mode: str | None = "concat"  # Bidirectional only
    input_size: int | None = None  # None: not in the config (read from the kernel's shape instead)
    inbound: tuple[str, ...] | None = None  # paths of the layers feeding it; None: the config does not say

    @property
    def bidirectional(self) -> bool:
        return self.backward is not None

    @property
    def label(self) -> str:
        """``"LSTM"`` or ``"Bidirectional(GRU)"``."""
        return f"Bidirectional({self.forward.class_name})" if self.bidirectional else self.forward.class_name

    @property
    def directions(self) -> tuple[KerasRNN, ...]:
        return (self.forward,) if self.backward is None else (self.forward, self.backward)

    @property
    def return_sequences(self) -> bool:
        return self.forward.return_sequences

    @property
    def output_size(self) -> int:
        if self.backward is not None and self.merge_mode == "concat":
            return self.forward.units + self.backward.units
        return self.forward.units

    @property
    def size(self) -> int:
        """The input size; raises :class:`ForeignFileError` when neither config nor weights gave it."""
        if self.input_size is None:
            raise ForeignFileError(
                f"layer {self.path!r} ({self.label}): its input size is neither in the config (no build_config) "
                "nor read from its kernel's shape"
            )
        return self.input_size

    @property
    def symmetric(self) -> bool:
        """A ``Bidirectional`` that ``bidirectional=True`` expresses: concat, same settings, forward reads forward."""
        b = self.backward
        return (
            b is not None
            and self.merge_mode == "concat"
            and self.forward.same_cell(b)
            and not self.forward.go_backwards
            and b.go_backwards
        )

    @property
    def spec(self) -> RNNSpec | None:
        """The PyTorch settings (one layer); None for a Bidirectional whose directions differ in size or bias."""
        f, b = self.forward, self.backward
        if b is not None and (b.units, b.use_bias, b.class_name) != (f.units, f.use_bias, f.class_name):
            return None
        return make_spec(f.torch_kind, self.size, f.units, bias=f.use_bias, bidirectional=b is not None)

    @property
    def keras_params(self) -> int:
        """The Keras count: ``keras_count`` per direction."""
        return sum(d.keras_params(self.size) for d in self.directions)

    @property
    def keras_derivation(self) -> str:
        spec = self.spec
        if spec is not None and (self.backward is None or self.backward.reset_after == self.forward.reset_after):
            return keras_derivation(spec, reset_after=self.forward.reset_after)
        parts = [
            keras_derivation(d.spec(self.size), reset_after=d.reset_after).split(" = ")[0] for d in self.directions
        ]
        return f"[{parts[0]}] + [{parts[1]}] = {self.keras_params:,}"

    @property
    def blocker(self) -> str | None:
        """Why no PyTorch module computes this layer (the first direction that has a reason)."""
        for d in self.directions:
            if d.blocker is not None:
                return d.blocker
        return None

    @property
    def torch_expression(self) -> str | None:
        """The PyTorch module(s) holding the same weights and computing the same function; None if none does."""
        if self.blocker is not None:
            return None
        if self.backward is None:
            return self.forward.expression(self.size)
        if self.symmetric:
            return self.forward.expression(self.size, bidirectional=True)
        return f"nn.ModuleList([{self.forward.expression(self.size)}, {self.backward.expression(self.size)}])"

    @property
    def torch_params(self) -> int | None:
        """PyTorch's count of :attr:`torch_expression` (two bias vectors per gate group)."""
        if self.torch_expression is None:
            return None
        return sum(torch_count(d.spec(self.size)) for d in self.directions)

    @property
    def torch_note(self) -> str:
        """What to know about :attr:`torch_expression` (why there is none, or how to feed it)."""
        if self.blocker is not None:
            return f"no PyTorch equivalent: {self.blocker}"
        if self.backward is not None and not self.symmetric:
            return f"two modules, one per direction: {self.bidirectional_reason}"
        if self.forward.go_backwards:
            return "go_backwards=True: feed the module the input reversed in time, x.flip(1)"
        return ""

    @property
    def bidirectional_reason(self) -> str:
        """Why this Bidirectional is not ``bidirectional=True`` ("" when it is)."""
        b = self.backward
        if b is None or self.symmetric:
            return ""
        if self.merge_mode != "concat":
            return f"merge_mode={self.merge_mode!r}, while bidirectional=True concatenates the directions"
        if not self.forward.same_cell(b):
            return "the backward layer's settings differ from the forward layer's"
        return "the forward layer reads the sequence backwards (go_backwards=True)"

    def expected_weights(self) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
        """``(direction, role, shape)`` of every Keras weight, in Keras's order (forward first)."""
        names = ("forward", "backward")
        return tuple(
            (names[i], role, shape) for i, d in enumerate(self.directions) for role, shape in d.weight_shapes(self.size)
        )


def torch_count(spec: RNNSpec) -> int:
    """PyTorch's count for ``spec`` (two bias vectors per gate group)."""
    return count_params(
        spec.kind,
        spec.input_size,
        spec.hidden_size,
        spec.num_layers,
        bias=spec.bias,
        bidirectional=spec.bidirectional,
        proj_size=spec.proj_size,
    )


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ForeignFileError(f"{what} should be a positive int, got: {value!r}")
    return value


def _bool(config: Mapping[str, object], key: str, default: bool) -> bool:
    value = config.get(key, default)
    return value if isinstance(value, bool) else default


def _float(config: Mapping[str, object], key: str) -> float:
    value = config.get(key, 0.0)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _rnn(class_name: str, config: Mapping[str, object], path: str) -> KerasRNN:
    """One Keras recurrent layer's settings; missing keys take Keras 3's defaults."""
    name = config.get("name")
    return KerasRNN(
        name=name if isinstance(name, str) else path,
        class_name=class_name,
        units=_int(config.get("units"), f"layer {path!r} ({class_name}): units"),
        use_bias=_bool(config, "use_bias", True),
        activation=_activation(config.get("activation", "tanh")),
        recurrent_activation=(
            "" if class_name == "SimpleRNN" else _activation(config.get("recurrent_activation", "sigmoid"))
        ),
        reset_after=_bool(config, "reset_after", True),
        go_backwards=_bool(config, "go_backwards", False),
        return_sequences=_bool(config, "return_sequences", False),
        return_state=_bool(config, "return_state", False),
        dropout=_float(config, "dropout"),
        recurrent_dropout=_float(config, "recurrent_dropout"),
        unit_forget_bias=_bool(config, "unit_forget_bias", True),
    )


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _input_size(entry: Mapping[str, object]) -> int | None:
    """The last dimension of the layer's input shape, from ``build_config`` (Keras 3) or ``batch_input_shape``."""
    shape = _mapping(entry.get("build_config")).get("input_shape")
    if shape is None:
        shape = _mapping(entry.get("config")).get("batch_input_shape")
    if isinstance(shape, list | tuple) and shape and isinstance(shape[0], list | tuple):
        shape = shape[0]  # called with several inputs (initial states): the first is the sequence
    return _last_dim(shape)


def _recurrent_entry(entry: Mapping[str, object]) -> tuple[str, Mapping[str, object]] | None:
    """``(class_name, config)`` of a Keras LSTM/GRU/SimpleRNN entry, or of an ``RNN`` around one standard cell."""
    class_name = entry.get("class_name")
    config = _mapping(entry.get("config"))
    if isinstance(class_name, str) and class_name in KERAS_RECURRENT:
        return class_name, config
    if class_name == "RNN":
        cell = _mapping(config.get("cell"))
        cell_class = cell.get("class_name")
        if isinstance(cell_class, str) and cell_class in _CELLS:
            merged = {**_mapping(cell.get("config")), **{k: v for k, v in config.items() if k != "cell"}}
            return _CELLS[cell_class], merged
    return None


def is_recurrent(entry: Mapping[str, object]) -> bool:
    """Whether :func:`parse_layer` reads this config entry."""
    if entry.get("class_name") == "Bidirectional":
        return _recurrent_entry(_mapping(_mapping(entry.get("config")).get("layer"))) is not None
    return _recurrent_entry(entry) is not None


def parse_layer(
    entry: Mapping[str, object],
    path: str | None = None,
    inbound: tuple[str, ...] | None = None,
    input_hint: int | None = None,
) -> KerasLayer:
    """One config entry (``{"class_name": ..., "config": ..., "build_config": ...}``) -> :class:`KerasLayer`.

    ``input_hint`` is the input size as the enclosing model's config gives it (an inbound tensor's
    shape, an ``InputLayer``), used where the entry itself has no ``build_config``.
    """
    config = _mapping(entry.get("config"))
    class_name = str(entry.get("class_name"))
    name = config.get("name", entry.get("name"))
    path = path if path is not None else (name if isinstance(name, str) else class_name)
    size = _input_size(entry)
    if class_name == "Bidirectional":
        inner = _mapping(config.get("layer"))
        found = _recurrent_entry(inner)
        if found is None:
            raise ForeignFileError(
                f"layer {path!r}: Bidirectional around {inner.get('class_name')!r}, not LSTM, GRU or SimpleRNN"
            )
        forward = _rnn(found[0], found[1], f"{path}/forward")
        back_entry = _mapping(config.get("backward_layer"))
        back_found = _recurrent_entry(back_entry) if back_entry else None
        if back_found is not None:
            backward = _rnn(back_found[0], back_found[1], f"{path}/backward")
        else:  # Keras builds the backward layer from the forward one's config, reading the other way
            backward = replace(forward, name=f"backward_{forward.name}", go_backwards=not forward.go_backwards)
        merge = config.get("merge_mode", "concat")
        if merge not in _MERGE_MODES:
            raise ForeignFileError(f"layer {path!r}: merge_mode {merge!r} is not one of concat, sum, mul, ave, None")
        if size is None:
            size = _input_size(inner)
        if size is None:
            size = input_hint
        return KerasLayer(path, class_name, forward, backward, merge if isinstance(merge, str) else None, size, inbound)
    found = _recurrent_entry(entry)
    if found is None:
        raise ForeignFileError(f"layer {path!r} is a {class_name}, not LSTM, GRU, SimpleRNN or Bidirectional")
    size = size if size is not None else input_hint
    return KerasLayer(path, class_name, _rnn(found[0], found[1], path), None, "concat", size, inbound)


def _keras_tensors(value: object) -> Iterator[Mapping[str, object]]:
    """The configs of the Keras tensors in a Keras 3 inbound node's arguments, in order."""
    if isinstance(value, Mapping):
        if value.get("class_name") == "__keras_tensor__":
            yield _mapping(value.get("config"))
            return
        for item in value.values():
            yield from _keras_tensors(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _keras_tensors(item)


def _last_dim(shape: object) -> int | None:
    if isinstance(shape, list | tuple) and shape:
        last = shape[-1]
        if isinstance(last, int) and not isinstance(last, bool) and last > 0:
            return last
    return None


def _inbound_size(entry: Mapping[str, object]) -> int | None:
    """The last dimension of the first tensor a Functional layer is called on (Keras 3 configs record it)."""
    nodes = entry.get("inbound_nodes")
    if isinstance(nodes, list) and nodes and isinstance(nodes[0], Mapping):
        for tensor in _keras_tensors(nodes[0].get("args")):
            return _last_dim(tensor.get("shape"))
    return None


def _inbound(entry: Mapping[str, object], prefix: str) -> tuple[str, ...] | None:
    """The layers feeding a Functional model's layer (Keras 3 and Keras 2 formats); None if unknown."""
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, list):
        return None
    names: list[str] = []
    for node in nodes:
        if isinstance(node, Mapping):  # Keras 3: {"args": [...], "kwargs": {...}}
            for tensor in _keras_tensors(node.get("args")):
                history = tensor.get("keras_history")
                if isinstance(history, list | tuple) and history and isinstance(history[0], str):
                    names.append(history[0])
        elif isinstance(node, list):  # Keras 2: [["name", node_index, tensor_index, kwargs], ...]
            names.extend(item[0] for item in node if isinstance(item, list) and item and isinstance(item[0], str))
    return tuple(dict.fromkeys(prefix + n for n in names))


def _entry_name(entry: Mapping[str, object]) -> str:
    name = _mapping(entry.get("config")).get("name", entry.get("name"))
    return name if isinstance(name, str) else str(entry.get("class_name"))


def model_layers(config: Mapping[str, object]) -> tuple[tuple[KerasLayer, ...], tuple[str, ...]]:
    """Every recurrent layer in a model config (nested models included), and notes on what was not read.

    ``config`` is the whole serialized model (``{"class_name": "Sequential", "config": {...}}``) or
    a model's ``get_config()``.
    """
    inner = config.get("config")
    body = _mapping(inner) if isinstance(inner, Mapping) and "layers" in inner else config
    entries = body.get("layers")
    if not isinstance(entries, list):
        raise ForeignFileError("the model config has no 'layers' list: not a Sequential or Functional model")
    sequential = config.get("class_name") == "Sequential" or "build_input_shape" in body
    layers: list[KerasLayer] = []
    notes: list[str] = []
    _walk(entries, "", sequential, layers, notes, _last_dim(body.get("build_input_shape")))
    return tuple(layers), tuple(notes)


def _walk(
    entries: Sequence[object],
    prefix: str,
    sequential: bool,
    layers: list[KerasLayer],
    notes: list[str],
    first_size: int | None = None,
) -> None:
    """Collect the recurrent layers; ``first_size`` is a Sequential model's input size when its config says."""
    previous: str | None = None
    for raw in entries:
        entry = _mapping(raw)
        class_name = entry.get("class_name")
        config = _mapping(entry.get("config"))
        path = prefix + _entry_name(entry)
        if sequential:
            inbound: tuple[str, ...] | None = () if previous is None else (previous,)
            hint = first_size if previous is None else None
        else:
            inbound = _inbound(entry, prefix)
            hint = _inbound_size(entry)
        if class_name == "InputLayer":
            first_size = _last_dim(config.get("batch_shape", config.get("batch_input_shape")))
        if isinstance(config.get("layers"), list):
            nested = config["layers"]
            assert isinstance(nested, list)
            _walk(nested, path + "/", class_name == "Sequential", layers, notes, hint)
        elif is_recurrent(entry):
            layers.append(parse_layer(entry, path, inbound, hint))
        elif class_name in _OTHER_RECURRENT:
            notes.append(
                f"layer {path!r} ({class_name}) is not read as a recurrent layer (only LSTM, GRU, SimpleRNN, "
                "RNN around one of their cells, and Bidirectional around them are): its weights count as other weights"
            )
        if class_name == "Masking" or config.get("mask_zero") is True:
            notes.append(f"layer {path!r} ({class_name}) masks its input: masks are not read or converted")
        if class_name != "InputLayer":
            previous = path


def stack_blocker(lower: KerasLayer, upper: KerasLayer) -> str | None:
    """Why ``upper`` cannot be layer k+1 of one PyTorch module whose layer k is ``lower``; None when it can."""
    if upper.inbound is None or upper.inbound != (lower.path,):
        return f"{upper.path!r} is not fed by {lower.path!r} alone"
    if not lower.return_sequences:
        return f"{lower.path!r} returns its last step only (return_sequences=False)"
    for layer in (lower, upper):
        if layer.blocker is not None:
            return f"{layer.path!r} has no PyTorch equivalent"
        if layer.backward is not None and not layer.symmetric:
            return f"{layer.path!r}: {layer.bidirectional_reason}"
        if layer.backward is None and layer.forward.go_backwards:
            return f"{layer.path!r} reads its input backwards (go_backwards=True)"
    if lower.bidirectional != upper.bidirectional:
        return "one is Bidirectional and the other is not"
    if not lower.forward.same_cell(upper.forward):
        return "their class, units, bias or activations differ"
    if upper.size != lower.output_size:
        return f"{upper.path!r} takes {upper.size} inputs, {lower.path!r} gives {lower.output_size}"
    return None


def find_stacks(layers: Sequence[KerasLayer]) -> tuple[tuple[KerasLayer, ...], ...]:
    """Maximal runs of two or more layers that one ``nn`` module with ``num_layers`` expresses."""
    stacks: list[tuple[KerasLayer, ...]] = []
    run: list[KerasLayer] = []
    for layer in layers:
        if run and stack_blocker(run[-1], layer) is None:
            run.append(layer)
            continue
        if len(run) > 1:
            stacks.append(tuple(run))
        run = [layer]
    if len(run) > 1:
        stacks.append(tuple(run))
    return tuple(stacks)


def stack_expression(stack: Sequence[KerasLayer]) -> str:
    """The one ``nn`` module a stack maps to, e.g. ``nn.LSTM(3, 2, num_layers=2, batch_first=True)``."""
    first = stack[0]
    return first.forward.expression(first.size, bidirectional=first.bidirectional, num_layers=len(stack))
