"""Keras config dicts -> recurrent layers: settings, counts, stacks (configs from real Keras layers where possible)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.helpers import KERAS_NUMPY2_WARNING, import_keras, keras_model
from torchlstm_params.errors import ForeignFileError
from torchlstm_params.formulas import count_params
from torchlstm_params.keras_config import find_stacks, model_layers, parse_layer, stack_blocker, stack_expression

pytestmark = pytest.mark.filterwarnings(KERAS_NUMPY2_WARNING)


def _entry(layer) -> dict[str, object]:
    """The config entry a saved model holds for a live Keras layer."""
    return {"class_name": type(layer).__name__, "config": layer.get_config(), "build_config": layer.get_build_config()}


def _layers(build, input_shape=(5, 3)):
    model = keras_model(build, input_shape)
    layers, notes = model_layers({"class_name": type(model).__name__, "config": model.get_config()})
    return model, layers, notes


def test_settings_read_from_a_real_config():
    keras = import_keras()
    layer = keras.layers.GRU(4, go_backwards=True, return_sequences=True, use_bias=False, reset_after=False)
    layer.build((None, 5, 3))
    parsed = parse_layer(_entry(layer))
    rnn = parsed.forward
    assert (parsed.input_size, rnn.units, rnn.use_bias, rnn.reset_after, rnn.go_backwards) == (3, 4, False, False, True)
    assert (
        parsed.keras_params
        == layer.count_params()
        == count_params("GRU", 3, 4, bias=False, convention="keras", reset_after=False)
    )
    assert parsed.torch_expression is None and parsed.torch_params is None


def test_a_bidirectional_rebuilds_its_backward_layer_like_keras():
    keras = import_keras()
    layer = keras.layers.Bidirectional(keras.layers.SimpleRNN(3, activation="relu"))
    layer.build((None, 5, 2))
    parsed = parse_layer(_entry(layer))
    assert parsed.backward is not None and parsed.backward.go_backwards and parsed.symmetric
    assert parsed.torch_expression == "nn.RNN(2, 3, nonlinearity='relu', batch_first=True, bidirectional=True)"
    assert parsed.keras_params == layer.count_params() == 2 * (3 * (2 + 3) + 3)


def test_stacks_need_connection_sequences_and_equal_settings():
    def build(L, x):
        a = L.LSTM(4, return_sequences=True, name="a")(x)
        b = L.LSTM(4, return_sequences=True, name="b")(a)
        c = L.LSTM(4, name="c")(b)  # returns its last step: nothing stacks on it
        d = L.LSTM(4, name="d")(L.RepeatVector(5)(c))
        return L.Concatenate()([c, d])

    _, layers, _ = _layers(build)
    a, b, c, d = layers
    assert [s.path for s in find_stacks(layers)[0]] == ["a", "b", "c"]
    assert stack_expression(find_stacks(layers)[0]) == "nn.LSTM(3, 4, num_layers=3, batch_first=True)"
    assert stack_blocker(c, d) == "'d' is not fed by 'c' alone"
    assert stack_blocker(b, a) == "'a' is not fed by 'b' alone"


@pytest.mark.parametrize(
    ("lower", "upper", "reason"),
    [
        (lambda L: L.LSTM(4, return_sequences=True), lambda L: L.GRU(4), "their class, units, bias or activations"),
        (lambda L: L.LSTM(4, return_sequences=True), lambda L: L.LSTM(5), "their class, units, bias or activations"),
        (
            lambda L: L.LSTM(4, return_sequences=True, go_backwards=True, name="lo"),
            lambda L: L.LSTM(4),
            "'lo' reads its input backwards",
        ),
        (
            lambda L: L.Bidirectional(L.LSTM(4, return_sequences=True)),
            lambda L: L.LSTM(4),
            "one is Bidirectional and the other is not",
        ),
        (
            lambda L: L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="sum", name="lo"),
            lambda L: L.Bidirectional(L.LSTM(4)),
            "'lo': merge_mode='sum'",
        ),
        (
            lambda L: L.GRU(4, return_sequences=True, reset_after=False, name="lo"),
            lambda L: L.GRU(4, reset_after=False),
            "'lo' has no PyTorch equivalent",
        ),
    ],
)
def test_what_stops_a_stack(lower, upper, reason):
    _, (low, high), _ = _layers(lambda L, x: upper(L)(lower(L)(x)))
    blocker = stack_blocker(low, high)
    assert blocker is not None and reason in blocker
    assert find_stacks([low, high]) == ()


def test_a_layer_that_returns_its_last_step_ends_a_stack():
    # Keras itself refuses to feed a 2-D output to an LSTM; a hand-edited config could claim it.
    _, (low, high), _ = _layers(lambda L, x: L.LSTM(4)(L.LSTM(4, return_sequences=True, name="lo")(x)))
    low = replace(low, forward=replace(low.forward, return_sequences=False))
    assert stack_blocker(low, high) == "'lo' returns its last step only (return_sequences=False)"


def test_keras_2_inbound_nodes_and_batch_input_shape():
    # The Keras 2 (tf.keras) layout of a Functional config: nested-list inbound nodes, batch_input_shape.
    config = {
        "class_name": "Functional",
        "config": {
            "layers": [
                {"class_name": "InputLayer", "name": "in", "config": {"name": "in"}, "inbound_nodes": []},
                {
                    "class_name": "LSTM",
                    "name": "low",
                    "config": {"name": "low", "units": 4, "return_sequences": True, "batch_input_shape": [None, 5, 3]},
                    "inbound_nodes": [[["in", 0, 0, {}]]],
                },
                {
                    "class_name": "LSTM",
                    "name": "high",
                    "config": {"name": "high", "units": 4},
                    "inbound_nodes": [[["low", 0, 0, {}]]],
                },
            ]
        },
    }
    (low, high), notes = model_layers(config)
    assert (low.input_size, high.input_size) == (3, None) and notes == ()
    assert high.inbound == ("low",)
    with pytest.raises(ForeignFileError, match="its input size is neither in the config"):
        _ = high.keras_params


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"class_name": "Bidirectional", "config": {"name": "bi", "layer": {"class_name": "Dense"}}},
            "layer 'bi': Bidirectional around 'Dense', not LSTM, GRU or SimpleRNN",
        ),
        (
            {
                "class_name": "Bidirectional",
                "config": {"name": "bi", "merge_mode": "max", "layer": {"class_name": "GRU", "config": {"units": 2}}},
            },
            "layer 'bi': merge_mode 'max' is not one of concat, sum, mul, ave, None",
        ),
        ({"class_name": "LSTM", "config": {"name": "x", "units": "2"}}, "layer 'x' (LSTM): units should be"),
        ({"class_name": "Dense", "config": {"name": "d"}}, "layer 'd' is a Dense, not LSTM"),
    ],
)
def test_configs_that_are_not_recurrent_layers(entry, message):
    with pytest.raises(ForeignFileError) as caught:
        parse_layer(entry)
    assert str(caught.value).startswith(message)


def test_a_config_without_layers():
    with pytest.raises(ForeignFileError, match="has no 'layers' list"):
        model_layers({"class_name": "Functional", "config": {"name": "m"}})
