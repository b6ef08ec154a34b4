"""Exact parameter counts for PyTorch models, with first-class LSTM, GRU and RNN knowledge.

>>> from torch import nn
>>> import torchlstm_params as tlp
>>> tlp.summarize(nn.LSTM(10, 20)).total_params
2560
"""

from __future__ import annotations

from .errors import InvalidSettingsError, NotAModuleError, TorchLstmParamsError
from .formulas import RNNSpec, count_params, expected_tensors, make_spec
from .report import ModuleRow, RecurrentEntry, Report, summarize

__version__ = "0.1.0"

__all__ = [
    "InvalidSettingsError",
    "ModuleRow",
    "NotAModuleError",
    "RNNSpec",
    "RecurrentEntry",
    "Report",
    "TorchLstmParamsError",
    "__version__",
    "count_params",
    "expected_tensors",
    "make_spec",
    "summarize",
]
