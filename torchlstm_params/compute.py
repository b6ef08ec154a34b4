"""Compute, state memory and sizing of recurrent layers: pure integer math from the settings.

Conventions (what the numbers mean, exactly):

- **MACs** are the multiply-accumulates of the matrix products, per time step
  and direction: ``g*h*(in_k + r)`` for the input and recurrent products plus
  ``p*h`` for the projection (``weight_hr``). One MAC is 2 FLOPs.
- **Elementwise ops** are everything else, one op per scalar add, multiply or
  activation: LSTM ``13h + 8h`` with bias (sum of the two products 4h, two bias
  vectors 8h, 3 sigmoids + 2 tanh 5h, ``f*c``, ``i*g``, their sum and ``o*tanh(c)``
  4h); GRU ``11h + 6h`` with bias; RNN ``2h + 2h`` with bias. They are reported
  apart from MACs, never folded in.
- **Tokens**: ``batch * seq_len`` for a padded batch, ``sum(lengths)`` for a packed
  one (padding is not computed). A cell is counted per call.
- **Training** = forward + backward; backward is taken as 2x the forward MACs (the
  gradient with respect to the input and the one with respect to the weights each
  repeat every product). This is an upper bound: layer 0's input gradient is
  skipped when the input does not require grad.

>>> from torchlstm_params.formulas import RNNSpec
>>> step_macs(RNNSpec("LSTM", 10, 20))
2400
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InvalidSettingsError
from .formulas import RNNSpec, count_params

__all__ = [
    "BACKWARD_FACTOR",
    "ITEMSIZE",
    "Compute",
    "StateMemory",
    "closest_configs",
    "compute",
    "fit_hidden_size",
    "require_dtype",
    "state_memory",
    "step_elementwise",
    "step_macs",
    "tokens",
]

BACKWARD_FACTOR = 2  # backward MACs per forward MAC (input and weight gradients)
#: Bytes per element of the floating dtypes a recurrent module can hold (torch's names, no "torch." prefix).
ITEMSIZE = {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2}


def require_dtype(dtype: str) -> None:
    """Raise unless ``dtype`` names a dtype of :data:`ITEMSIZE`."""
    if dtype not in ITEMSIZE:
        raise InvalidSettingsError(f"dtype must be one of {', '.join(ITEMSIZE)}, got: {dtype!r}")


def _layer_step_macs(spec: RNNSpec, layer: int) -> int:
    g, h, p, r = spec.gates, spec.hidden_size, spec.proj_size, spec.recurrent_size
    return g * h * (spec.layer_input_size(layer) + r) + p * h


def step_macs(spec: RNNSpec) -> int:
    """Matrix-product MACs for one time step of every layer and direction (one sequence element)."""
    return spec.directions * sum(_layer_step_macs(spec, k) for k in range(spec.num_layers))


def step_elementwise(spec: RNNSpec) -> int:
    """Elementwise ops (adds, multiplies, activations) for one time step of every layer and direction."""
    h, b = spec.hidden_size, int(spec.bias)
    per = {4: 13 * h + 8 * b * h, 3: 11 * h + 6 * b * h, 1: 2 * h + 2 * b * h}[spec.gates]
    return spec.directions * spec.num_layers * per


def tokens(batch: int | None = None, seq_len: int | None = None, lengths: Sequence[int] | None = None) -> int:
    """Sequence elements actually computed: ``batch*seq_len``, or ``sum(lengths)`` when packed."""
    if lengths is not None:
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
    """Compute of one recurrent module for a given number of tokens (see the module conventions)."""

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
    macs, ew = step_macs(spec), step_elementwise(spec)
    forward = macs * n_tokens
    return Compute(macs, ew, n_tokens, forward, ew * n_tokens, forward * (1 + BACKWARD_FACTOR))


@dataclass(frozen=True, slots=True)
class StateMemory:
    """Elements of what a full-sequence module returns for one batch (cells: h and c of one step)."""

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

    ``n_tokens`` is ``batch * seq_len`` (padded) or ``sum(lengths)`` (a PackedSequence's data rows);
    a cell's figures are for one step of ``batch``. ``dtype`` (a key of :data:`ITEMSIZE`) gives the bytes.
    """
    if dtype is not None:
        require_dtype(dtype)
    r, h, d = spec.recurrent_size, spec.hidden_size, spec.directions
    lstm = spec.gates == 4
    if spec.is_cell:
        return StateMemory(batch * h, 0, batch * h if lstm else 0, dtype)
    return StateMemory(
        n_tokens * d * r,
        spec.num_layers * d * batch * r,
        spec.num_layers * d * batch * h if lstm else 0,
        dtype,
    )


def fit_hidden_size(
    kind: str,
    input_size: int,
    budget: int,
    num_layers: int = 1,
    *,
    bidirectional: bool = False,
    proj_size: int = 0,
    bias: bool = True,
) -> int:
    """The largest hidden size whose PyTorch parameter count fits ``budget`` (exact).

    >>> fit_hidden_size("LSTM", 10, 2560)
    20
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise InvalidSettingsError(f"budget must be an int >= 0, got: {budget!r}")

    def count(h: int) -> int:
        return count_params(
            kind, input_size, h, num_layers, bias=bias, bidirectional=bidirectional, proj_size=proj_size
        )

    low = proj_size + 1  # the smallest hidden size these settings allow
    if count(low) > budget:
        raise InvalidSettingsError(
            f"budget {budget:,} is below the smallest {kind} with these settings: hidden_size={low} "
            f"needs {count(low):,} parameters"
        )
    high = low + 1
    while count(high) <= budget:  # the count grows at least quadratically: few doublings
        high *= 2
    while high - low > 1:  # invariant: count(low) <= budget < count(high)
        mid = (low + high) // 2
        if count(mid) <= budget:
            low = mid
        else:
            high = mid
    return low


def closest_configs(
    kind: str,
    input_size: int,
    target: int,
    *,
    layers: Sequence[int] = (1, 2, 3, 4),
    directions: Sequence[bool] = (False, True),
    bias: bool = True,
) -> list[tuple[int, bool, int, int]]:
    """For each (num_layers, bidirectional), the hidden size whose count is closest to ``target``.

    Returns ``(num_layers, bidirectional, hidden_size, params)`` sorted by distance to the target.
    """
    rows = []
    for n in layers:
        for bidi in directions:
            try:
                h = fit_hidden_size(kind, input_size, target, n, bidirectional=bidi, bias=bias)
            except InvalidSettingsError:
                h = 0
            candidates = [c for c in (h, h + 1) if c >= 1]
            counted = [(count_params(kind, input_size, c, n, bias=bias, bidirectional=bidi), c) for c in candidates]
            params, best = min(counted, key=lambda pc: (abs(pc[0] - target), pc[1]))
            rows.append((n, bidi, best, params))
    rows.sort(key=lambda row: (abs(row[3] - target), row[0], row[1]))
    return rows
