"""ONNX files -> their ``LSTM``, ``GRU`` and ``RNN`` nodes: settings, counts, PyTorch equivalents, shape checks.

Reads with the ``onnx`` package (the ``onnx`` extra) and ``load_external_data=False``: shapes come
from each ``TensorProto``'s ``dims``, so external-data files are never opened and no weight value is
read. ONNX's recurrent tensors, per node (``D`` directions, ``g`` gates, ``h`` = ``hidden_size``):

- ``W`` ``[D, g·h, input]``, ``R`` ``[D, g·h, h]``;
- ``B`` ``[D, 2·g·h]``: the input and recurrent bias halves, exactly PyTorch's ``bias_ih`` and ``bias_hh``;
- ``P`` ``[D, 3h]``: LSTM peepholes, which no ``torch.nn`` module has.

Every stored tensor of the file (initializers, sparse initializers, ``Constant`` nodes, in every
subgraph) is counted once, so the report's total is the file's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .errors import ForeignFileError
from .formulas import count_params

if TYPE_CHECKING:
    from onnx import GraphProto, ModelProto, NodeProto, TensorProto

__all__ = ["ONNX_MISSING", "OnnxFile", "OnnxNode", "OnnxTensor", "read_onnx_file"]

ONNX_MISSING: Final = "the onnx package is not installed (pip install 'torchlstm_params[onnx]')"
_GATES: Final = {"LSTM": 4, "GRU": 3, "RNN": 1}
# Input positions after X, per operator (ONNX operator specs).
_INPUTS: Final = {
    "LSTM": ("W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"),
    "GRU": ("W", "R", "B", "sequence_lens", "initial_h"),
    "RNN": ("W", "R", "B", "sequence_lens", "initial_h"),
}
_WEIGHT_ROLES: Final = ("W", "R", "B", "P")
_STATE_ROLES: Final = ("initial_h", "initial_c")
_DEFAULT_ACTIVATIONS: Final = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh"), "RNN": ("Tanh",)}
_FLOAT_TYPES: Final = frozenset({1, 10, 11, 16, 17, 18, 19, 20, 23, 24, 27, 28})  # TensorProto float kinds


@dataclass(frozen=True, slots=True)
class OnnxTensor:
    """One input of a recurrent node: the shape its settings imply and the shape the file stores.

    Attributes:
        role: ``W``, ``R``, ``B``, ``P``, ``initial_h`` or ``initial_c``.
        name: the tensor's name in the graph.
        expected: the shape its settings imply (None: a dimension they do not fix).
        found: the stored shape (None: not stored in the file).
        source: where it is stored (``initializer``, ``Constant node``...).
    """

    role: str  # W, R, B, P, initial_h, initial_c
    name: str  # the tensor's name in the graph
    expected: tuple[int | None, ...]  # None: a dimension the settings do not fix (input size, batch)
    found: tuple[int, ...] | None  # None: not stored in the file (computed, or a graph input)
    source: str  # "initializer", "initializer (external data)", "sparse initializer", "Constant node", ...

    @property
    def matches(self) -> bool:
        """True when stored and every fixed dimension fits; a tensor not stored cannot be checked (True)."""
        if self.found is None:
            return True
        return len(self.found) == len(self.expected) and all(
            e is None or e == f for e, f in zip(self.expected, self.found, strict=True)
        )

    @property
    def numel(self) -> int | None:
        if self.found is None:
            return None
        n = 1
        for d in self.found:
            n *= d
        return n

    def to_dict(self) -> dict[str, object]:
        return {
            "role": self.role,
            "name": self.name,
            "expected": list(self.expected),
            "found": None if self.found is None else list(self.found),
            "source": self.source,
            "matches": self.matches,
        }


@dataclass(frozen=True, slots=True)
class OnnxNode:
    """An ONNX ``LSTM``, ``GRU`` or ``RNN`` node, read from its attributes and inputs.

    Attributes:
        name: the node's name.
        op_type: ``LSTM``, ``GRU`` or ``RNN``.
        graph: ``""`` for the main graph, else the subgraph's path.
        direction: ``forward``, ``reverse`` or ``bidirectional``.
        hidden_size: the hidden size.
        input_size: W's last dimension (None when W is not stored).
        layout: 0: [seq, batch, feature]; 1: [batch, seq, feature].
        linear_before_reset: GRU only.
        activations: the activation functions.
        clip: the cell clip threshold (None: none).
        input_forget: LSTM only: coupled input and forget gates.
        tensors: its inputs, expected and stored shapes.
        notes: what to know about it.
    """

    name: str
    op_type: str  # "LSTM", "GRU" or "RNN"
    graph: str  # "" for the main graph, else the subgraph's path ("Loop 'loop' body")
    direction: str  # "forward", "reverse" or "bidirectional"
    hidden_size: int
    input_size: int | None  # W's last dimension; None when W is not stored
    layout: int  # 0: [seq, batch, feature]; 1: [batch, seq, feature] (batch_first)
    linear_before_reset: int  # GRU only
    activations: tuple[str, ...]
    clip: float | None
    input_forget: int  # LSTM only
    tensors: tuple[OnnxTensor, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1

    @property
    def has_bias(self) -> bool:
        return any(t.role == "B" for t in self.tensors)

    @property
    def has_peepholes(self) -> bool:
        return any(t.role == "P" for t in self.tensors)

    @property
    def kind(self) -> str:
        """The PyTorch kind: ``LSTM``, ``GRU``, ``RNN_TANH`` or ``RNN_RELU``."""
        if self.op_type == "RNN":
            return "RNN_RELU" if self._activations_per_direction() == ("Relu",) else "RNN_TANH"
        return self.op_type

    def _activations_per_direction(self) -> tuple[str, ...] | None:
        """The activation list of one direction, when both directions use the same; None otherwise."""
        default = _DEFAULT_ACTIVATIONS[self.op_type]
        if not self.activations:
            return default
        n = len(default)
        if len(self.activations) != n * self.directions:
            return None
        first = self.activations[:n]
        return first if self.activations[n:] in ((), first) else None

    @property
    def params(self) -> int | None:
        """Elements of the stored W, R, B and P; None when one of them is not stored in the file."""
        counts = [t.numel for t in self.tensors if t.role in _WEIGHT_ROLES]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)

    @property
    def formula_params(self) -> int | None:
        """``D·(g·h·(input + h) + 2·g·h·b + 3·h·p)``; None when the input size is unknown."""
        if self.input_size is None:
            return None
        g, h = _GATES[self.op_type], self.hidden_size
        per_direction = g * h * (self.input_size + h) + 2 * g * h * self.has_bias + 3 * h * self.has_peepholes
        return self.directions * per_direction

    @property
    def blocker(self) -> str | None:
        """Why no ``torch.nn`` module computes this node, or None when one does."""
        acts = self._activations_per_direction()
        if self.op_type == "RNN":
            if acts not in (("Tanh",), ("Relu",)):
                return f"activations={list(self.activations)}: nn.RNN computes Tanh or Relu only"
        elif acts != _DEFAULT_ACTIVATIONS[self.op_type]:
            return f"activations={list(self.activations)}: nn.{self.op_type} computes the default ones only"
        if self.clip is not None:
            return f"clip={self.clip}: torch does not clip the cell input"
        if self.op_type == "LSTM" and self.input_forget:
            return "input_forget=1 couples the input and forget gates, which nn.LSTM does not"
        if self.op_type == "LSTM" and self.has_peepholes:
            return "peepholes (P) feed the cell state into the gates, which nn.LSTM does not"
        if self.op_type == "GRU" and not self.linear_before_reset:
            return (
                "linear_before_reset=0 applies the reset gate before the recurrent product, while nn.GRU "
                "applies it after (linear_before_reset=1)"
            )
        if self.input_size is None:
            return "W is not stored in the file, so its input size is unknown"
        return None

    @property
    def torch_expression(self) -> str | None:
        """The ``torch.nn`` module holding the same tensors, e.g. ``nn.LSTM(3, 2, bidirectional=True)``."""
        if self.blocker is not None:
            return None
        torch_class = "RNN" if self.op_type == "RNN" else self.op_type
        args = [str(self.input_size), str(self.hidden_size)]
        if self.kind == "RNN_RELU":
            args.append("nonlinearity='relu'")
        if not self.has_bias:
            args.append("bias=False")
        if self.layout == 1:
            args.append("batch_first=True")
        if self.direction == "bidirectional":
            args.append("bidirectional=True")
        return f"nn.{torch_class}({', '.join(args)})"

    @property
    def torch_params(self) -> int | None:
        if self.torch_expression is None or self.input_size is None:
            return None
        return count_params(
            self.kind,
            self.input_size,
            self.hidden_size,
            bias=self.has_bias,
            bidirectional=self.direction == "bidirectional",
        )

    @property
    def torch_note(self) -> str:
        if self.blocker is not None:
            return f"no PyTorch equivalent: {self.blocker}"
        if self.direction == "reverse":
            return "direction='reverse': feed the module the input reversed in time"
        return ""

    @property
    def problems(self) -> tuple[str, ...]:
        where = f" in {self.graph}" if self.graph else ""
        label = f"{self.op_type} node {self.name!r}{where}"
        found = [
            f"{label} {t.role} {t.name!r}: expected {_shape(t.expected)} from its attributes, found {_shape(t.found)}"
            for t in self.tensors
            if not t.matches and t.found is not None
        ]
        if self.params is not None and self.formula_params is not None and self.params != self.formula_params:
            found.append(
                f"{label}: its stored weights hold {self.params:,} elements, the formula says {self.formula_params:,}"
            )
        return tuple(found)

    def to_dict(self) -> dict[str, object]:
        return {
            "node": self.name,
            "op_type": self.op_type,
            "graph": self.graph,
            "direction": self.direction,
            "hidden_size": self.hidden_size,
            "input_size": self.input_size,
            "layout": self.layout,
            "linear_before_reset": self.linear_before_reset if self.op_type == "GRU" else None,
            "activations": list(self.activations),
            "clip": self.clip,
            "input_forget": self.input_forget if self.op_type == "LSTM" else None,
            "bias": self.has_bias,
            "peepholes": self.has_peepholes,
            "params": self.params,
            "formula_params": self.formula_params,
            "torch_expression": self.torch_expression,
            "torch_params": self.torch_params,
            "torch_note": self.torch_note,
            "tensors": [t.to_dict() for t in self.tensors],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class OnnxFile:
    """An ONNX file's recurrent nodes and the elements of every tensor it stores.

    Attributes:
        path: the file read.
        producer: what wrote it (``pytorch 2.13.0``; ``""`` when the file does not say).
        opset: the default-domain opset.
        nodes: every recurrent node.
        stored: every stored tensor: name -> (elements, whether it is a float initializer).
        external: how many stored tensors keep their data in external files (never opened).
        notes: what the reader could not tell or had to assume.
    """

    path: str
    producer: str  # "pytorch 2.13.0", or "" when the file does not say
    opset: int | None  # the default-domain opset
    nodes: tuple[OnnxNode, ...]
    stored: Mapping[str, tuple[int, bool]]  # every stored tensor: name -> (elements, a float initializer)
    external: int  # how many stored tensors keep their data in external files (not opened)
    notes: tuple[str, ...]

    @property
    def recurrent_params(self) -> int:
        """Elements of the stored tensors that are a recurrent node's W, R, B or P (each tensor once)."""
        return sum(self.stored[n][0] for n in self._names(_WEIGHT_ROLES))

    @property
    def state_elements(self) -> int:
        """Elements of stored initial states (``initial_h``, ``initial_c``): constants, not weights."""
        return sum(self.stored[n][0] for n in self._names(_STATE_ROLES) - self._names(_WEIGHT_ROLES))

    @property
    def other_params(self) -> int:
        """Floating-point initializers outside the recurrent nodes (Linear, Embedding, ... weights)."""
        used = self._names(_WEIGHT_ROLES + _STATE_ROLES)
        return sum(n for name, (n, is_float) in self.stored.items() if is_float and name not in used)

    @property
    def constant_elements(self) -> int:
        """Other stored tensors outside the recurrent nodes: integer initializers (shapes, indices), Constant nodes."""
        used = self._names(_WEIGHT_ROLES + _STATE_ROLES)
        return sum(n for name, (n, is_float) in self.stored.items() if not is_float and name not in used)

    @property
    def total_elements(self) -> int:
        """Every stored tensor's elements: the four figures above add up to it."""
        return sum(n for n, _ in self.stored.values())

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(p for node in self.nodes for p in node.problems)

    def _names(self, roles: tuple[str, ...]) -> set[str]:
        return {t.name for node in self.nodes for t in node.tensors if t.role in roles and t.name in self.stored}

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.path,
            "producer": self.producer,
            "opset": self.opset,
            "nodes": [n.to_dict() for n in self.nodes],
            "recurrent_params": self.recurrent_params,
            "state_elements": self.state_elements,
            "other_params": self.other_params,
            "constant_elements": self.constant_elements,
            "total_elements": self.total_elements,
            "external_tensors": self.external,
            "notes": list(self.notes),
            "problems": list(self.problems),
        }


def _shape(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "nothing"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _onnx() -> Any:
    try:
        import onnx  # the `onnx` extra
    except ImportError:
        raise ForeignFileError(f"reading ONNX files needs onnx: {ONNX_MISSING}") from None
    return onnx


def _load(path: Path) -> ModelProto:
    onnx = _onnx()
    if not path.exists():
        raise ForeignFileError(f"no such file: {path}")
    if path.is_dir():
        raise ForeignFileError(f"{path} is a directory, not an ONNX file")
    try:
        model: ModelProto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError, RuntimeWarning-derived and others
        raise ForeignFileError(f"{path} is not a readable ONNX model: {type(exc).__name__}: {exc}") from None
    if not model.HasField("graph"):
        raise ForeignFileError(f"{path} holds no ONNX graph")
    return model


def _graphs(graph: GraphProto, path: str) -> Iterator[tuple[str, GraphProto]]:
    """The graph and every subgraph (If branches, Loop and Scan bodies), with a readable path."""
    yield path, graph
    for node in graph.node:
        for attr in node.attribute:
            label = f"{node.op_type} {node.name!r} {attr.name}"
            prefix = f"{path} / {label}" if path else label
            if attr.HasField("g"):
                yield from _graphs(attr.g, prefix)
            for i, sub in enumerate(attr.graphs):
                yield from _graphs(sub, f"{prefix}[{i}]")


def _numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _constant(node: NodeProto) -> tuple[int, ...] | None:
    """The shape of a ``Constant`` node's value, without reading it."""
    for attr in node.attribute:
        if attr.name == "value":
            return tuple(int(d) for d in attr.t.dims)
        if attr.name == "sparse_value":
            return tuple(int(d) for d in attr.sparse_tensor.dims)
        if attr.name in ("value_float", "value_int", "value_string"):
            return ()
        if attr.name in ("value_floats", "value_ints", "value_strings"):
            return (
                len({"value_floats": attr.floats, "value_ints": attr.ints, "value_strings": attr.strings}[attr.name]),
            )
    return None


@dataclass(slots=True)
class _Index:
    """What every graph stores: name -> (shape, float, source), and how many tensors are external."""

    shapes: dict[str, tuple[tuple[int, ...], bool, str]] = field(default_factory=dict)
    external: int = 0


def _is_external(tensor: TensorProto) -> bool:
    return tensor.data_location == 1  # TensorProto.EXTERNAL


def _index(model: ModelProto) -> _Index:
    index = _Index()
    for _, graph in _graphs(model.graph, ""):
        for tensor in graph.initializer:
            external = _is_external(tensor)
            index.external += external
            source = "initializer (external data)" if external else "initializer"
            index.shapes[tensor.name] = (tuple(int(d) for d in tensor.dims), tensor.data_type in _FLOAT_TYPES, source)
        for sparse in graph.sparse_initializer:
            index.shapes[sparse.values.name] = (
                tuple(int(d) for d in sparse.dims),
                sparse.values.data_type in _FLOAT_TYPES,
                "sparse initializer",
            )
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                found = _constant(node)
                if found is not None:  # a Constant node's value counts as a constant, whatever its type
                    index.shapes[node.output[0]] = (found, False, "Constant node")
    return index


def _attributes(node: NodeProto) -> dict[str, Any]:
    onnx = _onnx()
    return {attr.name: onnx.helper.get_attribute_value(attr) for attr in node.attribute}


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _source(name: str, graph: GraphProto) -> str:
    if any(i.name == name for i in graph.input):
        return "graph input"
    for node in graph.node:
        if name in node.output:
            return f"computed by a {node.op_type} node"
    return "not found in the graph"


def _read_node(node: NodeProto, graph_path: str, graph: GraphProto, index: _Index) -> OnnxNode:
    op = node.op_type
    attrs = _attributes(node)
    direction = _text(attrs.get("direction", "forward"))
    dirs = 2 if direction == "bidirectional" else 1
    layout = int(attrs.get("layout", 0))
    g = _GATES[op]
    inputs = dict(zip(_INPUTS[op], list(node.input)[1:], strict=False))
    inputs = {role: name for role, name in inputs.items() if name}
    notes = []

    def found(name: str) -> tuple[tuple[int, ...] | None, str]:
        if name in index.shapes:
            shape, _, source = index.shapes[name]
            return shape, source
        return None, _source(name, graph)

    hidden = attrs.get("hidden_size")
    r_shape = found(inputs["R"])[0] if "R" in inputs else None
    if hidden is None:
        if r_shape is None or len(r_shape) != 3:
            raise ForeignFileError(f"{op} node {node.name!r}: no hidden_size attribute and no stored R to read it from")
        hidden = r_shape[-1]
        notes.append(f"hidden_size not set: read from R's shape ({hidden})")
    h = int(hidden)
    w_shape = found(inputs["W"])[0] if "W" in inputs else None
    input_size = w_shape[-1] if w_shape is not None and len(w_shape) == 3 else None
    state: tuple[int | None, ...] = (dirs, None, h) if layout == 0 else (None, dirs, h)
    expected: dict[str, tuple[int | None, ...]] = {
        "W": (dirs, g * h, input_size),
        "R": (dirs, g * h, h),
        "B": (dirs, 2 * g * h),
        "P": (dirs, 3 * h),
        "initial_h": state,
        "initial_c": state,
    }
    tensors = []
    for role, name in inputs.items():
        if role not in expected:
            continue
        shape, source = found(name)
        tensors.append(OnnxTensor(role, name, expected[role], shape, source))
        if shape is None and role in _WEIGHT_ROLES:
            notes.append(f"{role} {name!r} is not stored in the file ({source}): not counted")
    activations = tuple(_text(a) for a in attrs.get("activations", ()))
    clip = attrs.get("clip")
    return OnnxNode(
        name=node.name,
        op_type=op,
        graph=graph_path,
        direction=direction,
        hidden_size=h,
        input_size=input_size,
        layout=layout,
        linear_before_reset=int(attrs.get("linear_before_reset", 0)),
        activations=activations,
        clip=None if clip is None else float(clip),
        input_forget=int(attrs.get("input_forget", 0)),
        tensors=tuple(tensors),
        notes=tuple(notes),
    )


def read_onnx_file(path: str | os.PathLike[str]) -> OnnxFile:
    """Read an ONNX file's recurrent nodes and stored tensors, without loading external data.

    Raises :class:`~torchlstm_params.errors.ForeignFileError` when onnx is missing or the file
    cannot be read.
    """
    source = Path(path)
    model = _load(source)
    index = _index(model)
    nodes = []
    notes = []
    for graph_path, graph in _graphs(model.graph, ""):
        for node in graph.node:
            if node.op_type in _GATES and node.domain in ("", "ai.onnx"):
                nodes.append(_read_node(node, graph_path, graph, index))
    for function in model.functions:
        if any(n.op_type in _GATES for n in function.node):
            notes.append(
                f"function {function.name!r} holds recurrent nodes: their weights are function inputs, not read here"
            )
    if not nodes:
        notes.append(
            "no LSTM, GRU or RNN node: a recurrent layer exported as separate MatMul/Add nodes is not recognised, "
            "and its weights count as other initializers"
        )
    if index.external:
        notes.append(f"{index.external} tensor(s) keep their data in external files, which were not opened")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    stored = {name: (_numel(shape), is_float) for name, (shape, is_float, _) in index.shapes.items()}
    return OnnxFile(str(source), producer, opset, tuple(nodes), stored, index.external, tuple(notes))
