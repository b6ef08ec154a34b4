"""Formula counts and tensor shapes against real torch modules and published figures."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from torch import nn

from tests import helpers
from tests.helpers import numel
from tests.strategies import CELL_KINDS, FULL_KINDS, Config, configs
from torchlstm_params import InvalidSettingsError, count_params, expected_tensors, make_spec, summarize
from torchlstm_params.formulas import breakdown, derivation, keras_count, keras_derivation


def torch_shapes(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(n, tuple(p.shape)) for n, p in module.named_parameters()]


# Every combination of layers, directions, bias and projection, on two size pairs.
FULL_GRID = [
    Config(kind, i, h, layers, bias, bidi, proj)
    for kind, (i, h), layers, bias, bidi, proj in itertools.product(
        FULL_KINDS, [(3, 2), (10, 20)], [1, 2, 3], [True, False], [False, True], [0, 1]
    )
    if proj == 0 or kind == "LSTM"
]
CELL_GRID = [
    Config(kind, i, h, bias=bias) for kind in CELL_KINDS for (i, h) in [(3, 2), (10, 20)] for bias in (True, False)
]


@pytest.mark.parametrize("config", FULL_GRID + CELL_GRID, ids=repr)
def test_count_and_shapes_match_torch(config: Config):
    module = config.build()
    count = count_params(
        config.kind,
        config.input_size,
        config.hidden_size,
        config.num_layers,
        bias=config.bias,
        bidirectional=config.bidirectional,
        proj_size=config.proj_size,
    )
    assert count == numel(module)
    spec = config.spec()
    assert [(t.name, t.shape) for t in expected_tensors(spec)] == torch_shapes(module)
    assert sum(layer.params for layer in breakdown(spec)) == count
    assert derivation(spec).endswith(f"= {count:,}")


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_formula_equals_torch_tensors_on_meta(config: Config):
    """For any settings torch accepts, formula == sum of numels, name by name."""
    with torch.device("meta"):
        module = config.build()
    spec = config.spec()
    report = summarize(module)
    (entry,) = report.recurrent
    real = {name: tuple(p.shape) for name, p in module.named_parameters()}
    expected = {t.name: t.shape for layer in entry.formula.layers for t in layer.tensors}
    assert expected == real
    assert entry.spec == spec
    assert entry.formula_params == sum(p.numel() for p in module.parameters())
    assert entry.tensor_params == entry.formula_params
    assert entry.matches
    assert report.total_params == entry.formula_params


# Hand-derived figures from RNN_FORMULAS.md (worked examples), not from this code.
@pytest.mark.parametrize(
    ("kind", "args", "kwargs", "expected"),
    [
        ("LSTM", (3, 2), {}, 56),
        ("LSTM", (10, 20), {}, 2_560),
        ("LSTM", (10, 20, 2), {"bidirectional": True, "proj_size": 5}, 5_840),
        ("GRU", (10, 20, 2), {"bidirectional": True}, 11_280),
        ("RNN", (10, 20, 3), {"bias": False}, 2_200),
        ("LSTM", (300, 512, 2), {}, 3_768_320),
        ("lstmcell", (3, 2), {}, 4 * 2 * (3 + 2) + 2 * 4 * 2),
        ("GRUCell", (3, 2), {"bias": False}, 3 * 2 * (3 + 2)),
        ("rnn_relu", (3, 2), {}, 14),
    ],
)
def test_published_pytorch_figures(kind, args, kwargs, expected):
    assert count_params(kind, *args, **kwargs) == expected


# Keras 3.15 measurements quoted in RNN_FORMULAS.md (input dim 3, 2 units).
@pytest.mark.parametrize(
    ("kind", "kwargs", "keras", "pytorch"),
    [
        ("LSTM", {}, 48, 56),
        ("LSTM", {"bias": False}, 40, 40),
        ("GRU", {"reset_after": True}, 42, 42),
        ("GRU", {"reset_after": False}, 36, None),
        ("RNN", {}, 12, 14),
        ("LSTM", {"bidirectional": True}, 96, 112),
        ("GRU", {"bidirectional": True}, 84, 84),
        ("LSTM", {"num_layers": 2}, 88, 104),
    ],
)
def test_keras_convention_measured_figures(kind, kwargs, keras, pytorch):
    assert count_params(kind, 3, 2, convention="keras", **kwargs) == keras
    if pytorch is not None:
        kwargs.pop("reset_after", None)
        assert count_params(kind, 3, 2, **kwargs) == pytorch


def test_derivation_strings_are_readable():
    assert derivation(make_spec("LSTM", 10, 20)) == "[4·20·(10+20) + 2·4·20] = 2,560"
    assert derivation(make_spec("LSTM", 3, 2)) == "[4·2·(3+2) + 2·4·2] = 56"
    assert keras_derivation(make_spec("LSTM", 3, 2)) == "[4·2·(3+2) + 4·2] = 48"
    assert keras_derivation(make_spec("RNN", 3, 2)) == "[2·(3+2) + 2] = 12"
    assert derivation(make_spec("RNN", 10, 20, 3, bias=False)) == "[20·(10+20)] + 2·[20·(20+20)] = 2,200"
    assert derivation(make_spec("GRU", 3, 2, bidirectional=True)) == "2·[3·2·(3+2) + 2·3·2] = 84"
    # Keras 3's GRU (reset_after=True) keeps an input and a recurrent bias per gate: 2·g·h, as PyTorch does.
    assert keras_derivation(make_spec("GRU", 3, 2)) == "[3·2·(3+2) + 2·3·2] = 42"
    assert keras_derivation(make_spec("GRU", 3, 2), reset_after=False) == "[3·2·(3+2) + 3·2] = 36"


def _evaluate(text: str) -> tuple[int, int]:
    """(value of the written-out expression, the total it claims), read as plain arithmetic."""
    expression, total = text.split(" = ")
    value = eval(expression.replace("·", "*").replace("[", "(").replace("]", ")"), {"__builtins__": {}})
    return value, int(total.replace(",", ""))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"])
@pytest.mark.parametrize(("layers", "bidirectional", "bias"), [(1, False, True), (2, True, True), (4, True, False)])
def test_every_derivation_is_one_notation_that_adds_up(kind, layers, bidirectional, bias):
    """PyTorch's and Keras's derivations share one bracket notation (one bracket per layer and direction, a
    factor for the alike ones) and each evaluates, as arithmetic, to the count (hand formulas in RNN_FORMULAS.md)."""
    if kind.endswith("Cell"):
        layers, bidirectional = 1, False
    spec = make_spec(kind, 7, 5, layers, bias=bias, bidirectional=bidirectional)
    torch_text, keras_text = derivation(spec), keras_derivation(spec)
    assert _evaluate(torch_text) == (count_params(kind, 7, 5, layers, bias=bias, bidirectional=bidirectional),) * 2
    assert _evaluate(keras_text)[0] == _evaluate(keras_text)[1] == keras_count(spec)
    assert torch_text.count("[") == keras_text.count("[") == (1 if layers == 1 else 2)
    directions = 2 if bidirectional else 1
    assert torch_text.startswith("[" if directions == 1 else f"{directions}·[")


def test_keras_count_refuses_projection():
    with pytest.raises(InvalidSettingsError, match="proj_size has no Keras equivalent, got proj_size=1"):
        keras_count(make_spec("LSTM", 3, 2, proj_size=1))


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("LSTM", 0, 2), {}, "input_size must be >= 1, got: 0"),
        (("LSTM", 3, -1), {}, "hidden_size must be >= 1, got: -1"),
        (("LSTM", 3, 2.5), {}, "hidden_size should be of type int, got: float (2.5)"),
        (("LSTM", 3, True), {}, "hidden_size should be of type int, got: bool (True)"),
        (("LSTM", 3, "2"), {}, "hidden_size should be of type int, got: str ('2')"),
        (("LSTM", 3, 2, 0), {}, "num_layers must be >= 1, got: 0"),
        (("GRU", 3, 4), {"proj_size": 2}, "proj_size is only supported by LSTM, got proj_size=2 for GRU"),
        (
            ("LSTM", 3, 4),
            {"proj_size": 4},
            "proj_size has to be smaller than hidden_size, got proj_size=4, hidden_size=4",
        ),
        (("LSTM", 3, 4), {"proj_size": -1}, "proj_size must be >= 0, got: -1"),
        (("Transformer", 3, 4), {}, "kind 'Transformer' is not a recurrent kind"),
        ((4, 3, 4), {}, "kind should be of type str, got: int"),
        (("LSTM", 3, 4), {"convention": "tf"}, "convention must be one of pytorch, keras, got: 'tf'"),
        (("LSTMCell", 3, 4, 2), {}, "LSTMCell has exactly one layer, got num_layers=2"),
        (("GRUCell", 3, 4), {"bidirectional": True}, "GRUCell has one direction"),
        (("LSTM", 3, 4), {"bias": 1}, "bias should be of type bool, got: int (1)"),
        (("GRU", 3, 4), {"convention": "keras", "reset_after": "yes"}, "reset_after should be of type bool"),
    ],
)
def test_invalid_settings_name_field_and_value(args: tuple[Any, ...], kwargs: dict[str, Any], message: str):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        count_params(*args, **kwargs)


def test_invalid_settings_error_is_library_error_and_value_error():
    with pytest.raises(InvalidSettingsError) as info:
        count_params("LSTM", 3, 0)
    assert isinstance(info.value, ValueError)


def test_counts_are_closed_forms_in_num_layers():
    """10**15 layers: instant (a loop over the layers would never end), and the hand-derived figure."""
    n = 10**15
    with helpers.within(5):
        # LSTM(3, 4): layer 0 is 4·4·(3+4) + 2·4·4 = 144, every layer above 4·4·(4+4) + 2·4·4 = 160.
        assert count_params("LSTM", 3, 4, num_layers=n) == 144 + (n - 1) * 160
        # Keras: 4·(4·(3+4) + 4) = 128, above 4·(4·(4+4) + 4) = 144.
        assert count_params("LSTM", 3, 4, num_layers=n, convention="keras") == 128 + (n - 1) * 144
        # Bidirectional with a projection: the hand-written loop's first two layers fix the line.
        one = helpers.lstm_count(5, 7, 1, bidirectional=True, proj=3)
        step = helpers.lstm_count(5, 7, 2, bidirectional=True, proj=3) - one
        assert count_params("LSTM", 5, 7, n, bidirectional=True, proj_size=3) == one + (n - 1) * step
        assert derivation(make_spec("LSTM", 3, 4, n)) == (
            "[4·4·(3+4) + 2·4·4] + 999999999999999·[4·4·(4+4) + 2·4·4] = 159,999,999,999,999,984"
        )
        assert keras_derivation(make_spec("LSTM", 3, 4, n)).endswith(f"= {128 + (n - 1) * 144:,}")


@pytest.mark.parametrize("layers", [1, 2, 3, 50])
def test_a_collapsed_breakdown_sums_to_the_count(layers):
    spec = make_spec("LSTM", 7, 5, layers, bidirectional=True, proj_size=3)
    rows = breakdown(spec, collapse=True)
    assert len(rows) == 2 * min(layers, 2)
    assert sum(row.params * row.repeat for row in rows) == count_params(
        "LSTM", 7, 5, layers, bidirectional=True, proj_size=3
    )
    assert sum(row.params for row in breakdown(spec)) == sum(row.params * row.repeat for row in rows)
