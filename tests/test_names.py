"""The recurrent tensor-name grammar and its exact inverse, against the names torch really registers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.ao.nn.quantizable import LSTM as QuantizableLSTM

from tests.strategies import CELL_KINDS, Config, configs
from torchlstm_params.names import ROLES, TensorName, parse_tensor_name, qualified, tensor_name

layers = st.none() | st.integers(0, 10**9)


@given(st.sampled_from(ROLES), layers, st.booleans())
def test_round_trip_over_roles_layers_and_directions(role: str, layer: int | None, reverse: bool):
    reverse = reverse and layer is not None  # a cell's tensors have no direction suffix
    name = tensor_name(role, layer, reverse=reverse)
    parsed = parse_tensor_name(name)
    assert parsed == TensorName(role, layer, reverse)
    assert str(parsed) == name


def test_names_are_spelled_as_torch_spells_them():
    # torch/nn/modules/rnn.py: f"{w}_l{layer}{suffix}" with suffix "_reverse" for direction 1
    assert tensor_name("weight_ih", 0) == "weight_ih_l0"
    assert tensor_name("bias_hh", 12, reverse=True) == "bias_hh_l12_reverse"
    assert tensor_name("weight_hr", None) == "weight_hr"
    assert str(TensorName("weight_hh", 3, True)) == "weight_hh_l3_reverse"


def test_roles_are_in_torchs_registration_order():
    lstm = nn.LSTM(3, 4, proj_size=2)
    assert tuple(name.removesuffix("_l0") for name, _ in lstm.named_parameters()) == ROLES
    assert lstm._flat_weights_names == [f"{role}_l0" for role in ROLES]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_every_name_torch_registers_parses_back(config: Config):
    with torch.device("meta"):
        module = config.build()
    names = [name for name, _ in module.named_parameters()]
    assert names  # every recurrent module registers tensors
    for name in names:
        parsed = parse_tensor_name(name)
        assert parsed is not None, name
        assert str(parsed) == name
        assert parsed.role in ROLES
        if config.kind in CELL_KINDS:
            assert (parsed.layer, parsed.reverse) == (None, False)
        else:
            assert parsed.layer is not None and 0 <= parsed.layer < config.num_layers
            assert parsed.reverse == name.endswith("_reverse") and (config.bidirectional or not parsed.reverse)


def test_names_of_torchs_other_recurrent_modules():
    """Names torch writes that are not a recurrent tensor's are not taken for one."""
    quantizable = QuantizableLSTM(3, 4, num_layers=2, bidirectional=True)
    names = [name.rpartition(".")[2] for name, _ in quantizable.named_parameters()]
    assert set(names) == {"weight", "bias"}  # its gates are Linear layers
    assert all(parse_tensor_name(name) is None for name in names)
    norm = nn.LSTM(3, 4)
    nn.utils.parametrizations.weight_norm(norm, "weight_hh_l0")
    params = dict(norm.named_parameters())
    assert "parametrizations.weight_hh_l0.original0" in params
    assert parse_tensor_name("original0") is None
    assert parse_tensor_name("weight_hh_l0_raw") is None  # weight-drop's raw copy
    assert parse_tensor_name("weight_hh_l0_g") is None  # legacy weight_norm
    assert parse_tensor_name("weight_hh_l0_v") is None


@pytest.mark.parametrize(
    "name",
    [
        "",
        "weight",
        "bias",
        "weight_ih_l",  # no layer number
        "weight_ih_l01",  # torch never writes a leading zero
        "weight_ih_l00",
        "weight_ih_l-1",
        "weight_ih_l+1",
        "weight_ih_l1.0",
        "weight_ih_l 1",
        "weight_ih_l١",  # an Arabic-Indic digit: int() would read it, torch never writes it
        "weight_ih_l１",  # a fullwidth digit
        "weight_ih_reverse",  # a direction without a layer
        "weight_ih_l0_reverse_reverse",
        "weight_ih_l0_rev",
        "weight_ih_l0_reverse_",
        "weight_ih_l0_",
        "weight_ih_L0",
        "Weight_ih_l0",
        "WEIGHT_IH_L0",
        "weight_hi_l0",
        "weight_hr_reverse",
        "bias_hr_l0",  # torch has no projection bias
        "weight_ih0",
        " weight_ih_l0",
        "weight_ih_l0 ",
        "weight_ih_l0\n",
        "layer.weight_ih_l0",  # a dotted path is a module path plus a name, not a name
        "weight_ih_l0.weight",
        "h0",
        "c0",
    ],
)
def test_names_torch_never_writes_are_rejected(name: str):
    assert parse_tensor_name(name) is None


PIECES = st.sampled_from(
    [*ROLES, "_l", "_l0", "_l1", "0", "1", "01", "9", "١", "_reverse", "_rev", "_", "-", ".", " ", "\n", "x", "L"]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(PIECES, max_size=6).map("".join) | st.text(max_size=24))
def test_parse_accepts_exactly_what_tensor_name_writes(text: str):
    """The exact inverse in both directions: whatever parses, writes back to the same text."""
    parsed = parse_tensor_name(text)
    if parsed is not None:
        assert parsed.role in ROLES
        assert tensor_name(parsed.role, parsed.layer, reverse=parsed.reverse) == text


def test_qualified_names_a_registration_as_torch_does():
    model = nn.Sequential(nn.LSTM(2, 3), nn.ModuleDict({"head": nn.Linear(3, 1)}))
    model.register_parameter("scale", nn.Parameter(torch.ones(1)))
    ours = [qualified(path, name) for path, m in model.named_modules() for name, _ in m.named_parameters(recurse=False)]
    assert sorted(ours) == sorted(name for name, _ in model.named_parameters())  # torch's own full names
    assert qualified("", "scale") == "scale" and qualified("1.head", "weight") == "1.head.weight"
