"""install_sanity_hook: runs check() once, on the first forward call, and leaves nothing behind."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchlstm_params import CheckFailedError, install_sanity_hook


def test_hook_runs_once_then_is_gone():
    model = nn.GRU(3, 4)
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(1))  # the user's own hook stays
    handle = install_sanity_hook(model, expect_params=3 * 4 * (3 + 4) + 2 * 3 * 4)
    assert handle.id in model._forward_pre_hooks
    model(torch.zeros(2, 3))
    assert handle.id not in model._forward_pre_hooks
    assert len(model._forward_pre_hooks) == 1
    model(torch.zeros(2, 3))
    assert len(calls) == 2


def test_failing_check_raises_on_first_call_and_still_removes_itself():
    model = nn.LSTM(3, 4)
    handle = install_sanity_hook(model, expect_params=1)
    with pytest.raises(CheckFailedError, match=r"\[PARAMS_MISMATCH\] \(root\): expected 1 parameters, found 144"):
        model(torch.zeros(2, 3))
    assert handle.id not in model._forward_pre_hooks
    out, _ = model(torch.zeros(2, 3))  # the next call trains on, unchecked
    assert out.shape == (2, 4)


def test_context_manager_removes_an_unused_hook():
    model = nn.RNN(2, 2)
    with install_sanity_hook(model) as handle:
        assert handle.id in model._forward_pre_hooks
    assert not model._forward_pre_hooks


def test_hook_on_a_parent_module_checks_the_whole_model():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    model.add_module("rnn", nn.GRUCell(3, 3))
    install_sanity_hook(model, expect={"rnn": {"hidden_size": 4}})
    with pytest.raises(CheckFailedError, match=r"\[SETTING_MISMATCH\] rnn: hidden_size expected 4, found 3"):
        model(torch.zeros(1, 2))
    assert not model._forward_pre_hooks


def test_unknown_option_fails_at_install_time():
    model = nn.LSTM(2, 2)
    with pytest.raises(TypeError, match=r"install_sanity_hook\(\) got unknown options \['expect_parms'\]"):
        install_sanity_hook(model, expect_parms=3)
    assert not model._forward_pre_hooks


def test_not_a_module():
    with pytest.raises(TypeError, match=r"install_sanity_hook\(\) expects a torch.nn.Module, got str"):
        install_sanity_hook("model")  # type: ignore[arg-type]
