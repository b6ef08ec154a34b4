"""Estimates for one batch: compute, returned state and saved activations, pure integer math from the settings.

Compute conventions (what the numbers mean, exactly):

- **MACs** are the multiply-accumulates of the matrix products, per time step
  and direction: ``g*h*(in_k + r)`` for the input and recurrent products plus
  ``p*h`` for the projection (``weight_hr``). One MAC is 2 FLOPs.
- **Elementwise ops** are everything else, one op per scalar add, multiply or
  activation: LSTM ``13h + 8h`` with bias (sum of the two products 4h, two bias
  vectors 8h, 3 sigmoids + 2 tanh 5h, ``f*c``, ``i*g``, their sum and ``o*tanh(c)``
  4h); GRU ``11h + 6h`` with bias; RNN ``2h + 2h`` with bias. They are reported
  apart from MACs, never folded in.
- **Tokens**: ``batch * seq_len`` for a padded batch, ``sum(lengths)`` for a packed
  one (padding is not computed). A cell is taken to run once per token (``seq_len``
  calls on the batch), so its figures are for the same sequence as a full-sequence module's.
- **Training** = forward + backward; backward is taken as 2x the forward MACs (the
  gradient with respect to the input and the one with respect to the weights each
  repeat every product). This is an upper bound: layer 0's input gradient is
  skipped when the input does not require grad.

>>> from torchlstm_params.formulas import RNNSpec
>>> step_macs(RNNSpec("LSTM", 10, 20))
2400

**Saved activations**: what autograd saves for backward in one training forward call.

The figure is for torch's *native* recurrence (``aten/src/ATen/native/RNN.cpp``),
the step-by-step implementation torch runs on the CPU for GRU, RNN, LSTM with
``proj_size``, and any LSTM when oneDNN is off or the dtype is not one it takes.
Counted the way the memory is really held: each saved tensor's whole storage,
each storage once, parameters and the caller's own tensors (the input, a
PackedSequence's data and, with ``enforce_sorted=False``, its index tensors) excluded. Measured with
``torch.autograd.graph.saved_tensors_hooks`` on torch 2.13, the figure equals
the saved storages to the byte for every setting in ``tests/test_estimates.py``
(tolerance 0). It is not exact in general, and these are the reasons:

- **Fused kernels save something else.** An LSTM without projection runs
  oneDNN on the CPU (float32; bfloat16 where the CPU supports it) and every
  kind runs cuDNN on CUDA. These keep the layer outputs and final states plus
  an opaque workspace whose size the kernel library chooses (measured on the
  CPU: never below 28 KiB, about 4x the gate activations above that). Entries
  on that path (float32 LSTM without projection on a padded batch, or a packed
  one whose lengths are all equal; other packed batches take the native
  recurrence; torch picks oneDNN for bfloat16 and float16 too on CPUs with
  native support for them) carry ``fused_on_cpu=True``, and the figure stays
  the native one.
- **Other torch versions** may reorder the steps and save other views; the
  figure is checked against 2.13 only.
- **States passed in by the caller** (``h0``/``c0``) are the caller's: the
  figure assumes none are passed, so torch makes zero states itself, which it
  then saves (``batch * r`` per layer and direction, and ``batch * h`` more for
  an LSTM's cell state). Passing states saves that much less.
- **Allocator rounding** is not included: storages are counted at their own
  size, not at the size of the block the allocator handed out.
- **Other recurrences** are not modelled: ``summarize`` gives no figure (``None``,
  ``n/a`` in the table) for a module whose forward is not torch's own: dynamic-
  quantized modules (no autograd), torch's quantizable LSTM (measured 1,280 B
  where the native figure says 1,344 B), registered classes, subclasses that
  override ``forward``, and modules with parametrized weights or forward hooks,
  which save tensors of their own (a weight-normed GRU(4, 8): 2,496 B measured).
- **Dtypes without a kernel** get no figure either: ``summarize`` gives bytes for the dtypes of
  :data:`ITEMSIZE` (complex ones included: a complex64 LSTM(4, 8) on batch 2 x 3 steps saves the
  native 336 elements at 8 bytes, 2,688 B measured), and none for float8 or complex32 weights, a
  complex ``relu`` RNN or a complex module with dropout between layers, which torch cannot run.

Parts, per layer ``k`` and direction, for ``N`` tokens (``batch * seq_len`` or
``sum(lengths)``), batch ``B``, hidden ``h``, recurrent width ``r``:

- ``recurrence``: LSTM ``N*(6h + r)``, plus ``N*h`` with a projection (the
  pre-projection state); GRU ``N*7h``; RNN ``N*h + B*h`` (the zero state is
  saved whole). These cover the gate activations, the states each step reads
  and writes, and the initial zero states.
- ``layer_inputs``: layer ``k >= 1`` saves its input, the previous layer's
  output: ``N*D*r`` (shared by both directions).
- ``dropout_masks``: with ``dropout > 0``, each of those inputs also has a
  dropout noise tensor of the same size (training mode).
- ``input_copies``: with ``batch_first=True`` and a padded batch, each
  direction of layer 0 saves a contiguous copy of the transposed input, ``N*I``
  (for a contiguous ``(B, T, I)`` input with ``B > 1`` and ``T > 1``; otherwise
  the transpose is contiguous already and nothing is copied).
- ``packed_overhang``: in a packed batch the batch shrinks over time; a state
  narrowed to fewer rows keeps its whole storage. Per layer, the forward and
  the reverse direction each keep ``(B - b_last) * w`` more, where ``b_last``
  is the number of longest sequences and ``w`` is ``h + r`` (LSTM) or ``h``
  (GRU). An RNN saves no narrowed state going forward, and going backward it
  saves each state it widens: ``sum over distinct lengths l < max of
  #(lengths >= l) * h``.

Cells are taken to run once per token: ``seq_len`` calls on ``batch`` rows, the
first with no state passed, each next one given the states the previous call
returned (a decoder loop). The first call saves LSTMCell ``6*B*h``, GRUCell
``7*B*h``, RNNCell ``2*B*h``; each later call LSTMCell ``7*B*h``, GRUCell
``7*B*h``, RNNCell ``B*h`` (measured, tolerance 0, in ``tests/test_estimates.py``).
A loop over a packed batch is the caller's own: no figure.

>>> saved_activations(RNNSpec("GRU", 8, 16), batch=2, seq_len=3).elements  # 7 * 16 per token, 6 tokens
672
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InvalidSettingsError
from .formulas import RNNSpec, require_dropout, require_spec

__all__ = [
    "BACKWARD_FACTOR",
    "ITEMSIZE",
    "Compute",
    "SavedActivations",
    "StateMemory",
    "compute",
    "require_dtype",
    "saved_activations",
    "state_memory",
    "step_elementwise",
    "step_macs",
    "tokens",
]

BACKWARD_FACTOR = 2  # backward MACs per forward MAC (input and weight gradients)
#: Bytes per element (``torch.dtype.itemsize``) of the dtypes torch's recurrent modules compute in, by
#: torch's name without the "torch." prefix: the floating and complex dtypes torch 2.13 runs an LSTM, GRU,
#: RNN or cell in on the CPU (``tests/test_estimates.py`` runs every floating and complex dtype torch has).
#: Others (float8, complex32, ...) hold weights that no recurrent kernel runs: no bytes are given for them.
ITEMSIZE = {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2, "complex128": 16, "complex64": 8}


def require_dtype(dtype: str) -> None:
    """Raise unless ``dtype`` names a dtype of :data:`ITEMSIZE`."""
    if not isinstance(dtype, str) or dtype not in ITEMSIZE:
        raise InvalidSettingsError(f"dtype must be one of {', '.join(ITEMSIZE)}, got: {dtype!r:.80}")


def _require_count(caller: str, name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidSettingsError(f"{caller}(): {name} must be an int >= {minimum}, got: {value!r:.80}")


def step_macs(spec: RNNSpec) -> int:
    """Matrix-product MACs for one time step of every layer and direction (one sequence element).

    Closed form in ``num_layers``: layer 0 sees ``input_size`` inputs, every layer above ``D*r``.
    """
    spec = require_spec(spec, "step_macs()")
    g, h, p, r, d = spec.gates, spec.hidden_size, spec.proj_size, spec.recurrent_size, spec.directions
    first = g * h * (spec.input_size + r) + p * h
    above = g * h * (d * r + r) + p * h
    return d * (first + (spec.num_layers - 1) * above)


def step_elementwise(spec: RNNSpec) -> int:
    """Elementwise ops (adds, multiplies, activations) for one time step of every layer and direction."""
    spec = require_spec(spec, "step_elementwise()")
    h, b = spec.hidden_size, int(spec.bias)
    per = {4: 13 * h + 8 * b * h, 3: 11 * h + 6 * b * h, 1: 2 * h + 2 * b * h}[spec.gates]
    return spec.directions * spec.num_layers * per


def tokens(batch: int | None = None, seq_len: int | None = None, lengths: Sequence[int] | None = None) -> int:
    """Sequence elements actually computed: ``batch*seq_len``, or ``sum(lengths)`` when packed."""
    if lengths is not None:
        if isinstance(lengths, str | bytes) or not isinstance(lengths, Sequence):
            raise InvalidSettingsError(f"lengths must be a sequence of ints (a packed batch), got: {lengths!r:.80}")
        if batch is not None or seq_len is not None:
            raise InvalidSettingsError("give either lengths= (a packed batch) or batch= and seq_len=, not both")
        bad = [n for n in lengths if isinstance(n, bool) or not isinstance(n, int) or n < 0]
        if bad or not lengths:
            raise InvalidSettingsError(f"lengths must be a non-empty list of ints >= 0, got: {list(lengths)!r}")
        return sum(lengths)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InvalidSettingsError(f"batch must be an int >= 1, got: {batch!r}")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise InvalidSettingsError(f"seq_len must be an int >= 1, got: {seq_len!r}")
    return batch * seq_len


@dataclass(frozen=True, slots=True)
class Compute:
    """Compute of one recurrent module for a given number of tokens (see the module conventions).

    Attributes:
        step_macs: matrix-product MACs of one token, all layers and directions (projection included).
        step_elementwise: elementwise ops of one token.
        tokens: the sequence elements the figures are for (batch x seq_len, or the sum of packed lengths).
        forward_macs: ``step_macs * tokens``; ``forward_flops`` is twice it.
        forward_elementwise: ``step_elementwise * tokens``.
        training_macs: forward plus backward, taken as ``BACKWARD_FACTOR`` (2) times the forward.
    """

    step_macs: int
    step_elementwise: int
    tokens: int
    forward_macs: int
    forward_elementwise: int
    training_macs: int  # forward + BACKWARD_FACTOR * forward

    @property
    def forward_flops(self) -> int:
        return 2 * self.forward_macs


def compute(spec: RNNSpec, n_tokens: int) -> Compute:
    """Forward and training compute of ``spec`` over ``n_tokens`` sequence elements."""
    spec = require_spec(spec, "compute()")
    _require_count("compute", "n_tokens", n_tokens, 0)
    macs, ew = step_macs(spec), step_elementwise(spec)
    forward = macs * n_tokens
    return Compute(macs, ew, n_tokens, forward, ew * n_tokens, forward * (1 + BACKWARD_FACTOR))


@dataclass(frozen=True, slots=True)
class StateMemory:
    """Elements of what a module returns for one batch; ``elements`` and ``bytes`` add them up.

    Attributes:
        output: the output sequence, ``tokens * D * r`` (a cell run once per token: ``h`` at every token).
        h_n: the final hidden state of every layer and direction, ``num_layers * D * batch * r`` (a cell: 0).
        c_n: an LSTM's final cell state, ``num_layers * D * batch * h`` (an LSTMCell: the last ``c``; else 0).
        dtype: the dtype the module computes in, which gives the bytes (``None``: one no kernel computes in).
    """

    output: int  # tokens * D * r (a cell: h')
    h_n: int  # num_layers * D * batch * r
    c_n: int  # num_layers * D * batch * h (LSTM only)
    dtype: str | None = "float32"  # what the module computes in (None: not a dtype of ITEMSIZE)

    @property
    def elements(self) -> int:
        return self.output + self.h_n + self.c_n

    @property
    def bytes(self) -> int | None:
        return None if self.dtype is None else self.elements * ITEMSIZE[self.dtype]


def state_memory(spec: RNNSpec, batch: int, n_tokens: int, dtype: str | None = "float32") -> StateMemory:
    """Exact sizes of the tensors the module returns (what forward hands back, not what autograd saves).

    ``n_tokens`` is ``batch * seq_len`` (padded) or ``sum(lengths)`` (a PackedSequence's data rows).
    A cell run once per token returns ``h`` at every token (``output``, as a full-sequence module's
    output) and, an LSTMCell, the last ``c``. ``dtype`` (a key of :data:`ITEMSIZE`) gives the bytes.
    """
    spec = require_spec(spec, "state_memory()")
    _require_count("state_memory", "batch", batch, 1)
    _require_count("state_memory", "n_tokens", n_tokens, 0)
    if dtype is not None:
        require_dtype(dtype)
    r, h, d = spec.recurrent_size, spec.hidden_size, spec.directions
    lstm = spec.gates == 4
    if spec.is_cell:
        return StateMemory(n_tokens * h, 0, batch * h if lstm else 0, dtype)
    return StateMemory(
        n_tokens * d * r,
        spec.num_layers * d * batch * r,
        spec.num_layers * d * batch * h if lstm else 0,
        dtype,
    )


_CELL_FIRST = {"LSTMCell": 6, "GRUCell": 7, "RNNCell": 2}  # elements per row and hidden unit, first call
_CELL_NEXT = {"LSTMCell": 7, "GRUCell": 7, "RNNCell": 1}  # each later call, given the previous states


@dataclass(frozen=True, slots=True)
class SavedActivations:
    """Elements autograd keeps for backward in one training forward call (see the module notes).

    ``elements`` adds the parts up; ``bytes`` multiplies by the dtype's ``itemsize``.

    Attributes:
        recurrence: gate activations and states of every step, with the zero initial states.
        layer_inputs: the inputs of layers 1 and above (the layer below's output).
        dropout_masks: the inter-layer dropout noise (with ``dropout > 0``).
        input_copies: contiguous copies of a ``batch_first`` input that layer 0 makes.
        packed_overhang: rows a packed batch's narrowed states keep.
        dtype: the module's parameter dtype, which its activations share.
        fused_on_cpu: True where the CPU runs oneDNN instead, which saves a workspace of its own.
    """

    recurrence: int
    layer_inputs: int
    dropout_masks: int
    input_copies: int
    packed_overhang: int
    dtype: str  # the module's parameter dtype, which its activations share
    fused_on_cpu: bool  # a float32 LSTM without projection on a rectangular batch: oneDNN saves a workspace

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.dtype]

    @property
    def elements(self) -> int:
        return self.recurrence + self.layer_inputs + self.dropout_masks + self.input_copies + self.packed_overhang

    @property
    def bytes(self) -> int:
        return self.elements * self.itemsize


def saved_activations(
    spec: RNNSpec,
    batch: int | None = None,
    seq_len: int | None = None,
    lengths: Sequence[int] | None = None,
    *,
    batch_first: bool = False,
    dropout: float = 0.0,
    dtype: str = "float32",
) -> SavedActivations:
    """Saved-for-backward elements of one training call of ``spec`` (padded, or packed with ``lengths``).

    A cell: ``seq_len`` calls on ``batch`` rows, each given the previous call's states (see the module notes).
    """
    spec = require_spec(spec, "saved_activations()")
    try:
        dropout = require_dropout(dropout)
    except InvalidSettingsError as exc:
        raise InvalidSettingsError(f"saved_activations(): {exc}") from None
    if not isinstance(batch_first, bool):
        raise InvalidSettingsError(f"saved_activations(): batch_first must be True or False, got: {batch_first!r:.80}")
    n = tokens(batch, seq_len, lengths)
    if lengths is not None and min(lengths) < 1:
        raise InvalidSettingsError(f"a packed batch has lengths >= 1 (pack_padded_sequence), got: {list(lengths)!r}")
    rows = len(lengths) if lengths is not None else batch
    assert rows is not None
    require_dtype(dtype)
    h, r, d, layers = spec.hidden_size, spec.recurrent_size, spec.directions, spec.num_layers
    # oneDNN takes a padded batch, and a packed one whose lengths are all equal (a rectangle after all).
    rectangular = lengths is None or min(lengths) == max(lengths)
    fused = spec.kind == "LSTM" and spec.proj_size == 0 and dtype == "float32" and rectangular
    if spec.is_cell:
        if lengths is not None:
            raise InvalidSettingsError("a cell's saved activations are for a padded batch: give batch= and seq_len=")
        assert seq_len is not None
        per_row = _CELL_FIRST[spec.kind] + (seq_len - 1) * _CELL_NEXT[spec.kind]
        return SavedActivations(per_row * rows * h, 0, 0, 0, 0, dtype, False)
    if spec.kind == "LSTM":
        per_direction = n * (6 * h + r + (h if spec.proj_size else 0))
    elif spec.kind == "GRU":
        per_direction = n * 7 * h
    else:  # RNN_TANH, RNN_RELU
        per_direction = n * h + rows * h
    between = (layers - 1) * n * d * r
    transposed_is_a_copy = batch_first and lengths is None and batch != 1 and seq_len != 1
    copies = d * n * spec.input_size if transposed_is_a_copy else 0
    return SavedActivations(
        recurrence=layers * d * per_direction,
        layer_inputs=between,
        dropout_masks=between if dropout > 0 else 0,
        input_copies=copies,
        packed_overhang=layers * _overhang(spec, lengths),
        dtype=dtype,
        fused_on_cpu=fused,
    )


def _overhang(spec: RNNSpec, lengths: Sequence[int] | None) -> int:
    """Extra saved elements of one layer (all directions) from a packed batch's changing batch size."""
    if lengths is None:
        return 0
    h, r = spec.hidden_size, spec.recurrent_size
    longest = max(lengths)
    shrink = sum(n < longest for n in lengths)  # rows that drop out before the last step
    if spec.kind in ("LSTM", "GRU"):
        width = h + r if spec.kind == "LSTM" else h
        return spec.directions * shrink * width
    if spec.directions == 1:
        return 0
    widened = sum(sum(n >= length for n in lengths) for length in set(lengths) if length < longest)
    return widened * h
