"""Exact parameter counts for PyTorch models, with first-class LSTM, GRU and RNN knowledge.

>>> from torch import nn
>>> import torchlstm_params as tlp
>>> tlp.summarize(nn.LSTM(10, 20)).total_params
2560
"""

from __future__ import annotations

from .crosscheck import Explanation, TensorFinding
from .distributed import LocalFigures, ShardedTensor, gather_ranks, local_figures
from .errors import (
    CheckFailedError,
    CheckpointError,
    ConversionError,
    ForeignFileError,
    InvalidSettingsError,
    NotAModuleError,
    Problem,
    SpecError,
    TorchLstmParamsError,
)
from .estimates import Compute, SavedActivations, StateMemory, saved_activations
from .formulas import Formula, LayerCount, RNNSpec, SpecLike, TensorSpec, count_params, expected_tensors, make_spec
from .hints import Hint
from .keras_config import KerasLayer, KerasRNN
from .keras_convert import KerasConversion, convert_keras, from_keras
from .keras_file import KerasFile, KerasLayerReport, KerasStack, WeightShape, read_keras_file
from .memory import TrainingMemory, training_memory
from .onnx_file import OnnxFile, OnnxNode, OnnxTensor, read_onnx_file
from .packed import PackedStorage
from .recurrence import Part, Recurrence, RecurrenceLayer
from .registry import Registry, default_registry, register_recurrent
from .results import (
    CheckResult,
    DtypeUsage,
    ModuleAlias,
    ModulePath,
    ModuleRow,
    ModuleRows,
    OwnParams,
    PackedModule,
    PrunedTensor,
    RecurrentEntry,
    Report,
    SharedTensor,
)
from .sanity import CODES, SEVERITIES, check, find_problems, install_sanity_hook
from .scan import NonFinite, ValueScan
from .sizing import closest_configs, fit_hidden_size
from .summary import summarize

__version__ = "0.2.0"

__all__ = [
    "CODES",
    "SEVERITIES",
    "CheckFailedError",
    "CheckResult",
    "CheckpointError",
    "Compute",
    "ConversionError",
    "DtypeUsage",
    "Explanation",
    "ForeignFileError",
    "Formula",
    "Hint",
    "InvalidSettingsError",
    "KerasConversion",
    "KerasFile",
    "KerasLayer",
    "KerasLayerReport",
    "KerasRNN",
    "KerasStack",
    "LayerCount",
    "LocalFigures",
    "ModuleAlias",
    "ModulePath",
    "ModuleRow",
    "ModuleRows",
    "NonFinite",
    "NotAModuleError",
    "OnnxFile",
    "OnnxNode",
    "OnnxTensor",
    "OwnParams",
    "PackedModule",
    "PackedStorage",
    "Part",
    "Problem",
    "PrunedTensor",
    "RNNSpec",
    "Recurrence",
    "RecurrenceLayer",
    "RecurrentEntry",
    "Registry",
    "Report",
    "SavedActivations",
    "ShardedTensor",
    "SharedTensor",
    "SpecError",
    "SpecLike",
    "StateMemory",
    "TensorFinding",
    "TensorSpec",
    "TorchLstmParamsError",
    "TrainingMemory",
    "ValueScan",
    "WeightShape",
    "__version__",
    "check",
    "closest_configs",
    "convert_keras",
    "count_params",
    "default_registry",
    "expected_tensors",
    "find_problems",
    "fit_hidden_size",
    "from_keras",
    "gather_ranks",
    "install_sanity_hook",
    "local_figures",
    "make_spec",
    "read_keras_file",
    "read_onnx_file",
    "register_recurrent",
    "saved_activations",
    "summarize",
    "training_memory",
]
