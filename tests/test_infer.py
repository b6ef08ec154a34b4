"""Recurrent settings from names and shapes: every torch setting is read back, nothing is guessed."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import within
from tests.strategies import Config, configs
from torchlstm_params.formulas import RNNSpec
from torchlstm_params.infer import infer
from torchlstm_params.names import parse_tensor_name


def shapes_of(config: Config) -> dict[str, tuple[int, ...]]:
    """The names and shapes torch itself registers for ``config`` (built on meta: no weights)."""
    with torch.device("meta"):
        module = config.build()
    return {name: tuple(t.shape) for name, t in module.state_dict().items()}


def torch_spec(config: Config) -> RNNSpec:
    spec = config.spec()
    return dataclasses.replace(spec, kind="RNN_TANH") if spec.kind == "RNN_RELU" else spec  # same shapes


@settings(max_examples=150, deadline=None)
@given(configs())
def test_every_torch_setting_is_read_back_from_its_own_tensors(config: Config):
    result = infer(shapes_of(config))
    assert result.spec == torch_spec(config)
    assert result.problems == ()


@settings(max_examples=150, deadline=None)
@given(configs(), st.data())
def test_with_one_tensor_deleted_the_answer_is_the_true_setting_or_none_never_another(config: Config, data):
    found = shapes_of(config)
    if len(found) < 2:
        return
    victim = data.draw(st.sampled_from(sorted(found)))
    del found[victim]
    result = infer(found)
    if result.spec is not None:
        assert result.spec == torch_spec(config)  # recognised: the cross-check reports the deleted tensor
    else:
        assert [code for code, _ in result.problems] in (["RNN_TENSOR_MISSING"], ["RNN_UNRECOGNISED"])


def test_a_custom_cell_is_unrecognised_with_the_closest_setting_named():
    result = infer({"weight_ih": (60, 20), "weight_hh": (20, 20), "bias_ih": (60,), "bias_hh": (20,)})
    assert result.spec is None
    ((code, message),) = result.problems
    assert code == "RNN_UNRECOGNISED"
    assert "closest is GRUCell(20, 20), which has weight_hh (60, 20), not (20, 20)" in message


def test_a_deleted_weight_that_leaves_two_kinds_open_names_both():
    result = infer({"weight_ih_l0": (80, 10), "bias_ih_l0": (80,), "bias_hh_l0": (80,)})
    assert result.spec is None
    ((code, message),) = result.problems
    assert code == "RNN_TENSOR_MISSING"
    assert message.startswith("weight_hh_l0 missing; the tensors present fit LSTM(10, 20) or RNN(10, 80)")


def test_layers_past_a_gap_are_reported_and_never_sized_by_their_number():
    with within(10):  # a guard, not a timing: anything sized by the layer number runs for minutes
        result = infer({"weight_ih_l0": (8, 3), "weight_hh_l0": (8, 2), "weight_ih_l99999999": (8, 2)})
    assert result.spec == RNNSpec("LSTM", 3, 2, 1, bias=False)
    ((code, message),) = result.problems
    assert code == "RNN_TENSOR_MISSING" and "no tensors for layer(s) 1 to 99,999,998" in message
    gaps = infer(
        {f"{role}_l{k}": s for k in (0, 1, 3, 7) for role, s in (("weight_ih", (8, 2)), ("weight_hh", (8, 2)))}
    )
    assert gaps.spec is not None and gaps.spec.num_layers == 2
    assert "no tensors for layer(s) 2, 4 to 6" in gaps.problems[0][1]


def test_no_layer_zero_and_mixed_cell_names_are_unrecognised():
    assert infer({"weight_ih_l3": (8, 2), "weight_hh_l3": (8, 2)}).problems[0][0] == "RNN_UNRECOGNISED"
    assert infer({"weight_ih": (8, 2), "weight_hh_l0": (8, 2)}).problems[0][0] == "RNN_UNRECOGNISED"


def test_only_names_in_torch_grammar_are_accepted():
    assert parse_tensor_name("weight_ih_l01") is None
    with pytest.raises(ValueError, match="not a torch recurrent tensor name"):
        infer({"weight_ih_l01": (8, 2)})
