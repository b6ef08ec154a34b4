"""The cross-check of a recurrent module's registered tensors against its formula: ties, parametrizations."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

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


class Shrink(nn.Module):
    """Keeps the first two columns: a shape-changing parametrization (torch allows it with unsafe=True)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :2]


class Counting(nn.Module):
    """Shape-preserving, and counts its calls in a buffer: evaluating it on the model would change the model."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        calls = self.calls
        assert isinstance(calls, torch.Tensor)
        calls += 1
        return 2 * x


class RankOne(nn.Module):
    """Two originals (torch's own docs example): the weight is their outer product."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1) @ y.unsqueeze(-2)

    def right_inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u, s, vh = torch.linalg.svd(z, full_matrices=False)
        root = s[0].sqrt()
        return u[:, 0] * root, vh[0, :] * root


class DataDependent(nn.Module):
    """Its output shape depends on the values: no meta evaluation can tell it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[: int(x.abs().sum().item() > 0) + x.shape[0] - 1]


def state(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(n, t.detach().clone()) for n, t in [*model.named_parameters(), *model.named_buffers()]]


def unchanged(before: list[tuple[str, torch.Tensor]], model: nn.Module) -> bool:
    after = state(model)
    return [n for n, _ in before] == [n for n, _ in after] and all(
        torch.equal(a, b) for (_, a), (_, b) in zip(before, after, strict=True)
    )


def test_a_shape_changing_parametrization_is_a_mismatch():
    model = nn.LSTM(3, 4)
    parametrize.register_parametrization(model, "weight_ih_l0", Shrink(), unsafe=True)
    weight = model.weight_ih_l0  # what torch computes for it
    assert isinstance(weight, torch.Tensor) and tuple(weight.shape) == (16, 2)
    (entry,) = summarize(model).recurrent
    assert entry.status == "mismatch"
    assert entry.findings == (TensorFinding("weight_ih_l0", "wrong_shape", (16, 3), (16, 2)),)
    assert problems_of(model) == [("RNN_SHAPE_MISMATCH", "", "weight_ih_l0: expected shape (16, 3), found (16, 2)")]


def test_parametrizations_are_never_run_on_the_model():
    model = nn.LSTM(3, 4)
    parametrize.register_parametrization(model, "weight_hh_l0", Counting(), unsafe=True)  # evaluated on a meta copy
    parametrizations.spectral_norm(model, "weight_ih_l0")  # safe: its shape is known without running it
    before = state(model)
    (entry,) = summarize(model).recurrent
    assert unchanged(before, model)  # spectral_norm's power-iteration buffers and the call count included
    assert entry.status == "explained" and entry.findings == ()
    assert [(e.tensor, e.kind) for e in entry.explanations] == [
        ("weight_ih_l0", "parametrized"),
        ("weight_hh_l0", "parametrized"),
    ]


def test_several_originals_give_the_computed_shape():
    model = nn.LSTM(3, 4)
    parametrize.register_parametrization(model, "weight_ih_l0", RankOne())  # originals (16,) and (3,)
    (entry,) = summarize(model).recurrent
    assert entry.findings == ()
    (explanation,) = entry.explanations
    assert (explanation.kind, explanation.delta) == ("parametrized", 16 + 3 - 16 * 3)
    assert entry.tensor_params == numel(model)


def test_torchs_own_parametrizations_are_explained():
    model = nn.GRU(3, 4, num_layers=2)
    parametrizations.weight_norm(model, "weight_ih_l0")
    parametrizations.orthogonal(model, "weight_hh_l0")
    parametrizations.spectral_norm(model, "weight_ih_l1")
    (entry,) = summarize(model).recurrent
    assert entry.status == "explained" and entry.findings == ()
    assert entry.tensor_params == numel(model)


def test_a_shape_that_only_the_values_decide_is_said_to_be_unchecked():
    model = nn.LSTM(3, 4)
    parametrize.register_parametrization(model, "weight_ih_l0", DataDependent(), unsafe=True)
    (entry,) = summarize(model).recurrent
    assert entry.findings == ()
    (explanation,) = entry.explanations
    assert explanation.kind == "parametrized"
    assert "its shape is not checked: working it out would run it on the weights" in explanation.message
