"""Training memory of a model's parameters: weights, gradients and optimizer state.

Exact for what it counts: every unique parameter's elements times the bytes of
the dtype it (or its state) is kept in. Optimizer state follows torch's own
optimizers: SGD keeps none, SGD with momentum one ``momentum_buffer`` per
parameter, Adam/AdamW ``exp_avg`` and ``exp_avg_sq`` (and a scalar ``step``,
not counted) per parameter, in the parameter's dtype unless ``state_dtype`` says
otherwise (e.g. fp32 state for bf16 weights); ``master_weights=True`` adds an
fp32 copy of every trainable weight (mixed-precision training). Activations
are not included here: see :mod:`torchlstm_params.activations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

from .errors import InvalidSettingsError
from .walk import unique_parameters, walk

__all__ = ["OPTIMIZER_STATES", "TrainingMemory", "training_memory"]

#: Full-size state tensors per trainable parameter.
OPTIMIZER_STATES: Final = {"sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2}


@dataclass(frozen=True, slots=True)
class TrainingMemory:
    """Bytes held for training, by part."""

    optimizer: str
    weights: int
    gradients: int
    optimizer_state: int
    master_weights: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_state + self.master_weights


def training_memory(
    model: nn.Module,
    optimizer: str = "adam",
    *,
    state_dtype: torch.dtype | None = None,
    master_weights: bool = False,
) -> TrainingMemory:
    """Weights, gradients and optimizer state of ``model``'s unique parameters, in bytes."""
    key = optimizer.lower()
    if key not in OPTIMIZER_STATES:
        raise InvalidSettingsError(f"optimizer must be one of {', '.join(OPTIMIZER_STATES)}, got: {optimizer!r}")
    states = OPTIMIZER_STATES[key]
    weights = gradients = state = master = 0
    for _, _, p in unique_parameters(walk(model)):
        if isinstance(p, UninitializedParameter):
            continue
        n, size = p.numel(), p.element_size()
        weights += n * size
        if not p.requires_grad:
            continue
        gradients += n * size
        state += states * n * (size if state_dtype is None else state_dtype.itemsize)
        if master_weights:
            master += n * 4
    return TrainingMemory(key, weights, gradients, state, master)
