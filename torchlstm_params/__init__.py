"""Exact parameter counts for PyTorch models, with first-class LSTM, GRU and RNN knowledge.

>>> from torch import nn
>>> import torchlstm_params as tlp
>>> tlp.summarize(nn.LSTM(10, 20)).total_params
2560
"""

from __future__ import annotations

from .distributed import LocalFigures, gather_ranks, local_figures
from .errors import (
    CheckFailedError,
    CheckpointError,
    InvalidSettingsError,
    NotAModuleError,
    Problem,
    SpecError,
    TorchLstmParamsError,
)
from .estimates import Compute, SavedActivations, StateMemory, saved_activations
from .formulas import RNNSpec, count_params, expected_tensors, make_spec
from .memory import TrainingMemory, training_memory
from .registry import Registry, default_registry, register_recurrent
from .results import DtypeUsage, ModuleAlias, ModuleRow, RecurrentEntry, Report, SharedTensor
from .sanity import CODES, check, find_problems, install_sanity_hook
from .sizing import closest_configs, fit_hidden_size
from .summarize import summarize

__version__ = "0.2.0"

__all__ = [
    "CODES",
    "CheckFailedError",
    "CheckpointError",
    "Compute",
    "DtypeUsage",
    "InvalidSettingsError",
    "LocalFigures",
    "ModuleAlias",
    "ModuleRow",
    "NotAModuleError",
    "Problem",
    "RNNSpec",
    "RecurrentEntry",
    "Registry",
    "Report",
    "SavedActivations",
    "SharedTensor",
    "SpecError",
    "StateMemory",
    "TorchLstmParamsError",
    "TrainingMemory",
    "__version__",
    "check",
    "closest_configs",
    "count_params",
    "default_registry",
    "expected_tensors",
    "find_problems",
    "fit_hidden_size",
    "gather_ranks",
    "install_sanity_hook",
    "local_figures",
    "make_spec",
    "register_recurrent",
    "saved_activations",
    "summarize",
    "training_memory",
]
