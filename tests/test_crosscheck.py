"""The cross-check of a recurrent module's registered tensors against its formula: ties, parametrizations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import numel, problems_of
from torchlstm_params import CheckFailedError, Registry, check, summarize
from torchlstm_params.crosscheck import TensorFinding


def test_a_tensor_tied_under_two_recurrent_names_is_a_finding():
    model = nn.LSTM(8, 8)
    model.weight_hh_l0 = model.weight_ih_l0  # one (32, 8) tensor under two names
    (entry,) = summarize(model).recurrent
    assert entry.tensor_params == numel(model) == 4 * 8 * (8 + 8) + 2 * 4 * 8 - 32 * 8
    assert entry.status == "mismatch"
    assert entry.findings == (TensorFinding("weight_hh_l0", "tied", (32, 8), (32, 8), same_as="weight_ih_l0"),)
    assert entry.explanations == ()  # no "elements in submodules": there are none
    message = (
        "weight_hh_l0: the same tensor as weight_ih_l0 (tied inside one recurrent module); "
        "the formula counts both, the module holds 256 elements once"
    )
    assert problems_of(model) == [("RNN_TENSOR_TIED", "", message)]
    with pytest.raises(CheckFailedError, match="RNN_TENSOR_TIED"):
        check(model)
    assert entry.to_dict()["findings"][0]["same_as"] == "weight_ih_l0"


def test_a_recurrent_tensor_under_a_second_non_recurrent_name_is_counted_once():
    model = nn.GRU(3, 4)
    weight = model.weight_ih_l0
    assert isinstance(weight, nn.Parameter)
    model.register_parameter("gate_weights", weight)
    (entry,) = summarize(model).recurrent
    assert entry.tensor_params == numel(model) == 3 * 4 * (3 + 4) + 2 * 3 * 4
    assert entry.findings == ()
    assert [(e.tensor, e.kind, e.delta) for e in entry.explanations] == [("gate_weights", "shared", 0)]
    assert entry.explanations[0].message == "gate_weights is another name for weight_ih_l0; counted once"


def test_a_registered_class_mapping_two_roles_to_one_tensor_is_a_finding():
    class Cell(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Linear(2, 8)

    registry = Registry()
    registry.register(
        Cell,
        lambda m: {"kind": "LSTMCell", "input_size": 2, "hidden_size": 2},
        tensors=lambda m: {"weight_ih": m.w.weight, "weight_hh": m.w.weight, "bias_ih": m.w.bias, "bias_hh": m.w.bias},
    )
    (entry,) = summarize(Cell(), registry=registry).recurrent
    assert [(f.tensor, f.problem, f.same_as) for f in entry.findings] == [
        ("weight_hh", "tied", "weight_ih"),
        ("bias_hh", "tied", "bias_ih"),
    ]
    assert entry.explanations == ()


def test_matched_tensors_that_are_not_parameters_are_not_called_submodules():
    class BufferCell(nn.Module):  # keeps its weights as buffers: no parameters at all
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("w_ih", torch.zeros(6, 2))
            self.register_buffer("w_hh", torch.zeros(6, 2))

    registry = Registry()
    registry.register(
        BufferCell,
        lambda m: {"kind": "GRUCell", "input_size": 2, "hidden_size": 2, "bias": False},
        tensors=lambda m: {"weight_ih": m.w_ih, "weight_hh": m.w_hh},
    )
    (entry,) = summarize(BufferCell(), registry=registry).recurrent
    assert entry.tensor_params == numel(BufferCell()) == 0
    assert entry.findings == ()
    assert [(e.tensor, e.kind, e.delta) for e in entry.explanations] == [("(not parameters)", "not_parameters", -24)]
