"""Keras layers converted to torch modules compute what Keras computes (real Keras 3, torch backend)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import KERAS_NUMPY2_WARNING, import_keras, keras_model, keras_predict, numel, save_both
from torchlstm_params import summarize
from torchlstm_params.errors import ConversionError
from torchlstm_params.keras_convert import KerasConversion, convert_keras, from_keras

pytest.importorskip("h5py", reason="h5py is not installed: pip install 'torchlstm_params[keras]'")
pytestmark = pytest.mark.filterwarnings(KERAS_NUMPY2_WARNING)

ATOL = 1e-5  # float32


def _stack(*layers):
    def build(L, x):
        for make in layers:
            x = make(L)(x)
        return x

    return build


# (id, builder, the torch module's class, its settings (num_layers, bidirectional, bias) or None for a ModuleList)
CASES = [
    ("lstm", _stack(lambda L: L.LSTM(4)), nn.LSTM, (1, False, True)),
    ("lstm_sequences", _stack(lambda L: L.LSTM(4, return_sequences=True)), nn.LSTM, (1, False, True)),
    ("lstm_backwards", _stack(lambda L: L.LSTM(4, go_backwards=True)), nn.LSTM, (1, False, True)),
    (
        "lstm_backwards_sequences",
        _stack(lambda L: L.LSTM(4, go_backwards=True, return_sequences=True)),
        nn.LSTM,
        (1, False, True),
    ),
    ("lstm_no_bias", _stack(lambda L: L.LSTM(4, use_bias=False)), nn.LSTM, (1, False, False)),
    ("lstm_no_unit_forget_bias", _stack(lambda L: L.LSTM(4, unit_forget_bias=False)), nn.LSTM, (1, False, True)),
    ("gru", _stack(lambda L: L.GRU(4)), nn.GRU, (1, False, True)),
    (
        "gru_backwards_sequences",
        _stack(lambda L: L.GRU(4, go_backwards=True, return_sequences=True)),
        nn.GRU,
        (1, False, True),
    ),
    ("gru_no_bias", _stack(lambda L: L.GRU(4, use_bias=False)), nn.GRU, (1, False, False)),
    ("simple_rnn", _stack(lambda L: L.SimpleRNN(4)), nn.RNN, (1, False, True)),
    (
        "simple_rnn_relu_sequences",
        _stack(lambda L: L.SimpleRNN(4, activation="relu", return_sequences=True)),
        nn.RNN,
        (1, False, True),
    ),
    (
        "simple_rnn_no_bias_backwards",
        _stack(lambda L: L.SimpleRNN(4, use_bias=False, go_backwards=True)),
        nn.RNN,
        (1, False, False),
    ),
    ("rnn_around_lstm_cell", _stack(lambda L: L.RNN(L.LSTMCell(4))), nn.LSTM, (1, False, True)),
    ("bidirectional_lstm", _stack(lambda L: L.Bidirectional(L.LSTM(4))), nn.LSTM, (1, True, True)),
    (
        "bidirectional_lstm_sequences",
        _stack(lambda L: L.Bidirectional(L.LSTM(4, return_sequences=True))),
        nn.LSTM,
        (1, True, True),
    ),
    ("bidirectional_gru", _stack(lambda L: L.Bidirectional(L.GRU(4))), nn.GRU, (1, True, True)),
    (
        "bidirectional_gru_sequences_no_bias",
        _stack(lambda L: L.Bidirectional(L.GRU(4, return_sequences=True, use_bias=False))),
        nn.GRU,
        (1, True, False),
    ),
    ("bidirectional_simple_rnn", _stack(lambda L: L.Bidirectional(L.SimpleRNN(4))), nn.RNN, (1, True, True)),
    (
        "bidirectional_sum",
        _stack(lambda L: L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="sum")),
        nn.ModuleList,
        None,
    ),
    ("bidirectional_mul", _stack(lambda L: L.Bidirectional(L.GRU(4), merge_mode="mul")), nn.ModuleList, None),
    (
        "bidirectional_ave",
        _stack(lambda L: L.Bidirectional(L.SimpleRNN(4, return_sequences=True), merge_mode="ave")),
        nn.ModuleList,
        None,
    ),
    (
        "bidirectional_other_backward_layer",
        _stack(
            lambda L: L.Bidirectional(
                L.LSTM(4, return_sequences=True),
                backward_layer=L.LSTM(3, go_backwards=True, return_sequences=True),
            )
        ),
        nn.ModuleList,
        None,
    ),
    (
        "stacked_lstm",
        _stack(
            lambda L: L.LSTM(4, return_sequences=True),
            lambda L: L.LSTM(4, return_sequences=True),
            lambda L: L.LSTM(4),
        ),
        nn.LSTM,
        (3, False, True),
    ),
    (
        "stacked_bidirectional_gru",
        _stack(
            lambda L: L.Bidirectional(L.GRU(4, return_sequences=True)),
            lambda L: L.Bidirectional(L.GRU(4)),
        ),
        nn.GRU,
        (2, True, True),
    ),
    (
        "stacked_simple_rnn_sequences",
        _stack(lambda L: L.SimpleRNN(4, return_sequences=True), lambda L: L.SimpleRNN(4, return_sequences=True)),
        nn.RNN,
        (2, False, True),
    ),
    (
        "stacked_mixed_kinds",
        _stack(lambda L: L.LSTM(4, return_sequences=True), lambda L: L.GRU(5)),
        nn.ModuleList,
        None,
    ),
    (
        "stacked_with_go_backwards",
        _stack(lambda L: L.GRU(4, return_sequences=True, go_backwards=True), lambda L: L.GRU(4)),
        nn.ModuleList,
        None,
    ),
    (
        "stacked_bidirectional_then_lstm",
        _stack(lambda L: L.Bidirectional(L.LSTM(4, return_sequences=True)), lambda L: L.LSTM(4)),
        nn.ModuleList,
        None,
    ),
]


@pytest.fixture(scope="module")
def inputs() -> torch.Tensor:
    return torch.randn(5, 7, 3, generator=torch.Generator().manual_seed(0))


def _check_output(conversion: KerasConversion, model, x: torch.Tensor) -> None:
    expected = keras_predict(model, x)
    with torch.no_grad():
        found = conversion.keras_output(x)
    assert found.dtype == torch.float32
    assert found.shape == expected.shape
    torch.testing.assert_close(found, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize(("name", "build", "cls", "settings"), CASES, ids=[c[0] for c in CASES])
def test_converted_output_equals_keras(tmp_path, inputs, name, build, cls, settings):
    model = keras_model(build, input_shape=(7, 3))
    keras_path, h5_path = save_both(model, tmp_path, name)
    recurrent = sum(layer.count_params() for layer in model.layers[1:])
    for source in (model, keras_path, h5_path):
        conversion = convert_keras(source)
        module = conversion.module
        assert type(module) is cls
        if settings is not None:
            assert (module.num_layers, module.bidirectional, module.bias, module.batch_first) == (*settings, True)
        _check_output(conversion, model, inputs)
        # The counts the reader states: Keras's own count on the Keras side, torch's numel on the torch side.
        assert sum(layer.keras_params for layer in conversion.layers) == recurrent
        torch_counts = [layer.torch_params for layer in conversion.layers]
        assert None not in torch_counts
        assert sum(c for c in torch_counts if c is not None) == numel(module)
        assert summarize(module).total_params == numel(module)


def test_lstm_bias_goes_to_bias_ih_and_unit_forget_bias_survives(tmp_path):
    keras = import_keras()
    inputs = keras.Input((5, 3))
    model = keras.Model(inputs, keras.layers.LSTM(2, unit_forget_bias=True)(inputs))  # Keras's own initial weights
    keras_path, _ = save_both(model, tmp_path, "ufb")
    lstm = from_keras(keras_path)
    assert isinstance(lstm, nn.LSTM)
    # Keras initializes the forget-gate block (the second of i, f, c, o) to ones, the rest to zeros.
    torch.testing.assert_close(lstm.bias_ih_l0, torch.tensor([0.0, 0, 1, 1, 0, 0, 0, 0]))
    torch.testing.assert_close(lstm.bias_hh_l0, torch.zeros(8))
    kernel = keras.ops.convert_to_numpy(model.layers[1].cell.kernel.value)
    torch.testing.assert_close(lstm.weight_ih_l0, torch.from_numpy(kernel).T)
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        torch.testing.assert_close(lstm(x)[0][:, -1], keras_predict(model, x), atol=ATOL, rtol=0)


def test_gru_gates_reorder_and_the_bias_splits(tmp_path):
    model = keras_model(_stack(lambda L: L.GRU(2)))
    keras_path, _ = save_both(model, tmp_path, "gru")
    gru = from_keras(keras_path)
    cell = model.layers[1].cell
    keras = import_keras()
    kernel = torch.from_numpy(keras.ops.convert_to_numpy(cell.kernel.value))  # columns z, r, h
    bias = torch.from_numpy(keras.ops.convert_to_numpy(cell.bias.value))  # (2, 6): input row, recurrent row
    z, r, h = kernel[:, 0:2], kernel[:, 2:4], kernel[:, 4:6]
    torch.testing.assert_close(gru.weight_ih_l0, torch.cat((r, z, h), dim=1).T)  # torch rows r, z, n
    torch.testing.assert_close(gru.bias_ih_l0, torch.cat((bias[0, 2:4], bias[0, 0:2], bias[0, 4:6])))
    torch.testing.assert_close(gru.bias_hh_l0, torch.cat((bias[1, 2:4], bias[1, 0:2], bias[1, 4:6])))


def test_reset_after_false_gru_raises_a_clear_error(tmp_path):
    model = keras_model(_stack(lambda L: L.GRU(2, reset_after=False, name="old_gru")))
    keras_path, h5_path = save_both(model, tmp_path, "old")
    for source in (model, keras_path, h5_path):
        with pytest.raises(ConversionError) as caught:
            from_keras(source)
        message = str(caught.value)
        assert message.startswith("layer 'old_gru' (GRU) has no PyTorch equivalent: reset_after=False applies")
        assert "nn.GRU applies it after" in message


def test_activations_torch_does_not_compute_raise(tmp_path):
    model = keras_model(_stack(lambda L: L.LSTM(2, activation="relu", name="relu_lstm")))
    with pytest.raises(ConversionError, match=r"activation='relu'.*nn\.LSTM computes tanh and sigmoid only"):
        from_keras(model)


def test_a_live_layer_converts_on_its_own(inputs):
    model = keras_model(_stack(lambda L: L.Bidirectional(L.GRU(3, return_sequences=True))), input_shape=(7, 3))
    conversion = convert_keras(model.layers[1])
    assert isinstance(conversion.module, nn.GRU) and conversion.module.bidirectional
    _check_output(conversion, model, inputs)


def test_layer_picks_one_branch_and_a_stack_must_be_connected(tmp_path, inputs):
    keras = import_keras()
    x = keras.Input((7, 3))
    left = keras.layers.LSTM(4, name="left")(x)
    right = keras.layers.GRU(4, return_sequences=True, name="right")(x)
    top = keras.layers.GRU(4, name="top")(right)
    model = keras.Model(x, keras.layers.Concatenate()([left, top]))
    keras_path, _ = save_both(model, tmp_path, "branches")
    with pytest.raises(ConversionError, match="are not one stack: pick one"):
        from_keras(keras_path)
    assert isinstance(from_keras(keras_path, layer="left"), nn.LSTM)
    gru = from_keras(keras_path, layer=["right", "top"])
    assert isinstance(gru, nn.GRU) and gru.num_layers == 2
    with pytest.raises(ConversionError, match="'left' is not fed by 'right' alone"):
        from_keras(keras_path, layer=["right", "left"])
    with pytest.raises(ConversionError) as caught:
        from_keras(keras_path, layer="dense")
    assert str(caught.value) == "no recurrent layer named 'dense'; the recurrent layers are: 'right', 'left', 'top'"
    with torch.no_grad():
        both = torch.cat((from_keras(model, "left")(inputs)[0][:, -1], gru(inputs)[0][:, -1]), dim=-1)
    torch.testing.assert_close(both, keras_predict(model, inputs), atol=ATOL, rtol=0)


def test_nested_layers_are_named_by_path(tmp_path):
    keras = import_keras()
    inner = keras.Sequential([keras.Input((7, 3)), keras.layers.LSTM(4, name="lstm")], name="encoder")
    x = keras.Input((7, 3))
    model = keras.Model(x, inner(x))
    keras_path, h5_path = save_both(model, tmp_path, "nested")
    for source in (model, keras_path, h5_path):
        assert isinstance(from_keras(source, layer="encoder/lstm"), nn.LSTM)
        assert isinstance(from_keras(source, layer="lstm"), nn.LSTM)


def test_notes_say_what_is_not_carried_over(tmp_path):
    def build(L, x):
        x = L.Masking()(x)
        return L.LSTM(2, dropout=0.2, recurrent_dropout=0.1, name="lstm")(x)

    model = keras_model(build)
    keras_path, _ = save_both(model, tmp_path, "notes")
    notes = " ".join(convert_keras(keras_path).notes)
    assert "dropout=0.2, recurrent_dropout=0.1 act in training only" in notes
    assert "masks its input: masks are not read or converted" in notes


def test_not_keras_at_all():
    with pytest.raises(ConversionError, match=r"takes a \.keras/\.h5 path or a Keras model or layer, got int"):
        from_keras(3)
    keras = import_keras()
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    with pytest.raises(ConversionError, match="Dense is not LSTM, GRU, SimpleRNN or Bidirectional"):
        from_keras(dense)


def test_a_model_without_recurrent_layers(tmp_path):
    model = keras_model(lambda L, x: L.Dense(2)(x))
    keras_path, _ = save_both(model, tmp_path, "dense")
    with pytest.raises(ConversionError, match="holds no LSTM, GRU or SimpleRNN layer"):
        from_keras(keras_path)
