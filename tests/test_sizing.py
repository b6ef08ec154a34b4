"""Sizing: fit_hidden_size against the closed form, closest configurations."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import helpers
from torchlstm_params import InvalidSettingsError, count_params
from torchlstm_params.sizing import closest_configs, fit_hidden_size


@given(
    kind=st.sampled_from(["LSTM", "GRU", "RNN_TANH", "LSTMCell", "GRUCell", "RNNCell"]),
    input_size=st.integers(1, 512),
    budget=st.integers(0, 50_000_000),
    layers=st.integers(1, 4),
    bidirectional=st.booleans(),
    bias=st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_fit_hidden_size_is_the_largest_that_fits(kind, input_size, budget, layers, bidirectional, bias):
    if kind.endswith("Cell"):
        layers, bidirectional = 1, False

    def count(h: int) -> int:
        return count_params(kind, input_size, h, layers, bias=bias, bidirectional=bidirectional)

    if count(1) > budget:
        with pytest.raises(InvalidSettingsError, match="is below the smallest"):
            fit_hidden_size(kind, input_size, budget, layers, bidirectional=bidirectional, bias=bias)
        return
    h = fit_hidden_size(kind, input_size, budget, layers, bidirectional=bidirectional, bias=bias)
    assert count(h) <= budget < count(h + 1)


def test_fit_hidden_size_with_projection():
    h = fit_hidden_size("LSTM", 80, 1_000_000, 2, proj_size=64)
    count = lambda n: count_params("LSTM", 80, n, 2, proj_size=64)  # noqa: E731
    assert h > 64 and count(h) <= 1_000_000 < count(h + 1)


def test_closest_configs_table():
    rows = closest_configs("LSTM", 300, 3_768_320)
    assert rows[0] == (2, False, 512, 3_768_320)  # the published LSTM(300, 512, num_layers=2) is exact
    distances = [abs(params - 3_768_320) for _, _, _, params in rows]
    assert distances == sorted(distances)
    for layers, bidi, hidden, params in rows:
        assert params == count_params("LSTM", 300, hidden, layers, bidirectional=bidi)
    assert len(rows) == 8


def test_sizing_is_instant_for_any_num_layers():
    n = 10**15
    with helpers.within(5):
        exact = helpers.lstm_count(3, 5, 1) + (n - 1) * (helpers.lstm_count(3, 5, 2) - helpers.lstm_count(3, 5, 1))
        assert fit_hidden_size("LSTM", 3, exact, n) == 5
        assert fit_hidden_size("LSTM", 3, exact - 1, n) == 4
        assert closest_configs("LSTM", 3, exact, layers=(n,), directions=(False,)) == [(n, False, 5, exact)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"proj_size": None}, "fit_hidden_size(): proj_size must be an int >= 0, got: NoneType (None)"),
        ({"proj_size": "2"}, "fit_hidden_size(): proj_size must be an int >= 0, got: str ('2')"),
        ({"proj_size": -1}, "fit_hidden_size(): proj_size must be an int >= 0, got: int (-1)"),
        ({"budget": 2.5}, "fit_hidden_size(): budget must be an int >= 0, got: float (2.5)"),
        ({"kind": "LSMT"}, "kind 'LSMT' is not a recurrent kind"),
        ({"num_layers": "2"}, "num_layers should be of type int, got: str ('2')"),
    ],
)
def test_fit_hidden_size_names_the_bad_argument(kwargs, message):
    args = {"kind": "LSTM", "input_size": 3, "budget": 10_000} | kwargs
    with pytest.raises(InvalidSettingsError, match="^" + re.escape(message)):
        fit_hidden_size(**args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": None}, "closest_configs(): target must be an int >= 0, got: NoneType (None)"),
        ({"target": "x"}, "closest_configs(): target must be an int >= 0, got: str ('x')"),
        ({"target": -5}, "closest_configs(): target must be an int >= 0, got: int (-5)"),
        ({"target": 3.0}, "closest_configs(): target must be an int >= 0, got: float (3.0)"),
        ({"target": torch.tensor(5)}, "closest_configs(): target must be an int >= 0, got: Tensor (tensor(5))"),
        ({"target": True}, "closest_configs(): target must be an int >= 0, got: bool (True)"),
        ({"layers": 2}, "closest_configs(): layers must be a sequence, got: 2"),
        ({"directions": "yes"}, "closest_configs(): directions must be a sequence, got: 'yes'"),
        ({"layers": ["2"]}, "num_layers should be of type int, got: str ('2')"),
        ({"directions": [1]}, "bidirectional should be of type bool, got: int (1)"),
    ],
)
def test_closest_configs_names_the_bad_argument(kwargs, message):
    args = {"kind": "LSTM", "input_size": 3, "target": 10_000} | kwargs
    with pytest.raises(InvalidSettingsError, match="^" + re.escape(message)):
        closest_configs(**args)
