"""Exact parameter counts for PyTorch models, with first-class LSTM, GRU and RNN knowledge.

>>> from torch import nn
>>> import torchlstm_params as tlp
>>> tlp.summarize(nn.LSTM(10, 20)).total_params
2560
"""

from __future__ import annotations

from .activations import SavedActivations, saved_activations
from .check import CODES, Problem, check, find_problems
from .compute import closest_configs, fit_hidden_size
from .distributed import LocalFigures, gather_ranks, local_figures
from .errors import CheckFailedError, InvalidSettingsError, NotAModuleError, SpecError, TorchLstmParamsError
from .formulas import RNNSpec, count_params, expected_tensors, make_spec
from .hooks import install_sanity_hook
from .memory import training_memory
from .registry import Registry, default_registry, register_recurrent
from .report import ModuleRow, RecurrentEntry, Report, summarize

__version__ = "0.1.0"

__all__ = [
    "CODES",
    "CheckFailedError",
    "InvalidSettingsError",
    "LocalFigures",
    "ModuleRow",
    "NotAModuleError",
    "Problem",
    "RNNSpec",
    "RecurrentEntry",
    "Registry",
    "Report",
    "SavedActivations",
    "SpecError",
    "TorchLstmParamsError",
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
