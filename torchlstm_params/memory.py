"""Training memory of a model's parameters: weights, gradients and optimizer state.

Exact for what it counts: every unique parameter's elements times the bytes of
the dtype it (or its state) is kept in. Optimizer state follows torch's own
optimizers: SGD keeps none, SGD with momentum one ``momentum_buffer`` per
parameter, Adam/AdamW ``exp_avg`` and ``exp_avg_sq`` (and a scalar ``step``,
not counted) per parameter, in the parameter's dtype unless ``state_dtype`` says
otherwise (e.g. fp32 state for bf16 weights); ``master_weights=True`` adds an
fp32 copy of every trainable weight (mixed-precision training). Activations
are not included here: see :mod:`torchlstm_params.estimates`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import torch
from torch import nn

from .errors import InvalidSettingsError, NotAModuleError
from .results import Report
from .summary import summarize

__all__ = ["OPTIMIZER_STATES", "TrainingMemory", "training_memory"]

#: Full-size state tensors per trainable parameter.
OPTIMIZER_STATES: Final = {"sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2}


@dataclass(frozen=True, slots=True)
class TrainingMemory:
    """Bytes held for training, by part; ``total`` adds them up.

    Attributes:
        optimizer: the optimizer the state is counted for (``sgd``, ``sgd-momentum``, ``adam``, ``adamw``).
        weights: bytes of the parameters themselves.
        gradients: bytes of one gradient per trainable parameter.
        optimizer_state: bytes of the optimizer's buffers (momentum, Adam's two moments...).
        master_weights: bytes of float32 master copies kept for low-precision weights (0 without them).
    """

    optimizer: str
    weights: int
    gradients: int
    optimizer_state: int
    master_weights: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_state + self.master_weights


def training_memory(
    model: nn.Module | Report,
    optimizer: str = "adam",
    *,
    state_dtype: torch.dtype | None = None,
    master_weights: bool = False,
) -> TrainingMemory:
    """Weights, gradients and optimizer state of ``model``'s unique parameters, in bytes.

    ``model`` is a module or the :class:`Report` of one (no second walk): the figures
    come from the report's per-dtype element counts, trainable and not.

    >>> from torch import nn
    >>> training_memory(nn.Linear(3, 2), "adam").total  # 8 float32 weights, 8 gradients, 16 state values
    128
    """
    if not isinstance(model, Report | nn.Module):
        raise NotAModuleError(f"training_memory() expects a torch.nn.Module or a Report, got {type(model).__name__}")
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZER_STATES:
        raise InvalidSettingsError(
            f"training_memory(): optimizer must be one of {', '.join(OPTIMIZER_STATES)}, got: {optimizer!r:.80}"
        )
    if state_dtype is not None and not isinstance(state_dtype, torch.dtype):
        raise InvalidSettingsError(
            f"training_memory(): state_dtype must be a torch.dtype or None, got: {state_dtype!r:.80}"
        )
    if not isinstance(master_weights, bool):
        raise InvalidSettingsError(
            f"training_memory(): master_weights must be True or False, got: {master_weights!r:.80}"
        )
    report = model if isinstance(model, Report) else summarize(model)  # arguments first: no walk for a typo
    key = optimizer.lower()
    states = OPTIMIZER_STATES[key]
    weights = gradients = state = master = 0
    for usage in report.dtypes:
        weights += usage.bytes
        train = usage.trainable_params
        gradients += train * usage.itemsize
        state += states * train * (usage.itemsize if state_dtype is None else state_dtype.itemsize)
        if master_weights:
            master += train * 4
    return TrainingMemory(key, weights, gradients, state, master)
