"""Training memory against real optimizer state."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from tests.helpers import WALK_COUNTED_PARAMS, WalkCountedModel
from torchlstm_params import InvalidSettingsError, NotAModuleError, summarize
from torchlstm_params.memory import training_memory


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    return sum(
        value.numel() * value.element_size()
        for state in optimizer.state.values()
        for name, value in state.items()
        if isinstance(value, torch.Tensor) and name != "step"
    )


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("adam", lambda p: torch.optim.Adam(p)),
        ("adamw", lambda p: torch.optim.AdamW(p)),
        ("sgd-momentum", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
        ("sgd", lambda p: torch.optim.SGD(p, lr=0.1)),
    ],
)
def test_training_memory_matches_a_real_optimizer_step(name, make):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(20, 5), nn.LSTM(5, 6, num_layers=2))
    model[0].weight.requires_grad_(False)
    optimizer = make([p for p in model.parameters() if p.requires_grad])
    out, _ = model[1](model[0](torch.randint(0, 20, (4, 2))))
    out.sum().backward()
    optimizer.step()
    memory = training_memory(model, name)
    assert memory.weights == sum(p.numel() * 4 for p in model.parameters())
    assert memory.gradients == sum(
        p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None
    )
    assert memory.optimizer_state == optimizer_state_bytes(optimizer)


def test_training_memory_state_dtype_and_master_weights():
    model = nn.GRU(4, 4).to(torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    memory = training_memory(model, "adam", state_dtype=torch.float32, master_weights=True)
    assert (memory.weights, memory.gradients, memory.optimizer_state, memory.master_weights) == (
        2 * n,
        2 * n,
        8 * n,
        4 * n,
    )
    with pytest.raises(InvalidSettingsError, match="optimizer must be one of sgd, sgd-momentum, adam, adamw"):
        training_memory(model, "lion")


def test_training_memory_walks_a_model_once_and_a_report_never():
    model = WalkCountedModel()  # all float32, trainable; embed.weight is tied to out.weight (counted once)
    model.record_walks()
    memory = training_memory(model, "adamw", master_weights=True)
    assert model.walks == ["walk.py:walk"]
    n = WALK_COUNTED_PARAMS
    assert (memory.weights, memory.gradients, memory.optimizer_state, memory.master_weights) == (
        4 * n,
        4 * n,
        8 * n,
        4 * n,
    )
    report = summarize(model)
    model.record_walks()
    assert training_memory(report, "adamw", master_weights=True) == memory
    assert model.walks == []


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((nn.Linear(2, 2), None), {}, InvalidSettingsError, "training_memory(): optimizer must be one of"),
        ((nn.Linear(2, 2),), {"state_dtype": "float32"}, InvalidSettingsError, "training_memory(): state_dtype must"),
        ((nn.Linear(2, 2),), {"master_weights": "no"}, InvalidSettingsError, "training_memory(): master_weights must"),
        ((nn.Linear(2, 2),), {"master_weights": 1}, InvalidSettingsError, "training_memory(): master_weights must"),
        ((5,), {}, NotAModuleError, "training_memory() expects a torch.nn.Module or a Report, got int"),
        ((None,), {}, NotAModuleError, "training_memory() expects a torch.nn.Module or a Report, got NoneType"),
    ],
)
def test_bad_arguments_are_named(args, kwargs, error, message):
    with pytest.raises(error, match="^" + re.escape(message)):
        training_memory(*args, **kwargs)
