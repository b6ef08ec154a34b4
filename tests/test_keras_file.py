"""Reading real Keras 3 files (.keras and legacy .h5) written by Keras on the torch backend."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import KERAS_NUMPY2_WARNING, import_keras, keras_model, numel, save_both, torch_module
from torchlstm_params.errors import ForeignFileError, TorchLstmParamsError
from torchlstm_params.formulas import count_params
from torchlstm_params.keras_file import KerasFile, read_keras_file

pytest.importorskip("h5py", reason="h5py is not installed: pip install 'torchlstm_params[keras]'")

pytestmark = pytest.mark.filterwarnings(KERAS_NUMPY2_WARNING)
ROOT = Path(__file__).parent.parent

# Measured with Keras 3.15 (torch backend), input dim 3, 2 units: RNN_FORMULAS.md's test vectors.
# (id, builder, Keras count, PyTorch count of the equivalent module or None where there is none)
PUBLISHED = [
    ("lstm", lambda L, x: L.LSTM(2)(x), 48, 56),
    ("lstm_no_bias", lambda L, x: L.LSTM(2, use_bias=False)(x), 40, 40),
    ("gru_reset_after", lambda L, x: L.GRU(2)(x), 42, 42),
    ("gru_reset_before", lambda L, x: L.GRU(2, reset_after=False)(x), 36, None),
    ("simple_rnn", lambda L, x: L.SimpleRNN(2)(x), 12, 14),
    ("bidirectional_lstm", lambda L, x: L.Bidirectional(L.LSTM(2))(x), 96, 112),
    ("bidirectional_gru", lambda L, x: L.Bidirectional(L.GRU(2))(x), 84, 84),
]


def _read_both(tmp_path: Path, model, stem: str) -> list[KerasFile]:
    return [read_keras_file(p) for p in save_both(model, tmp_path, stem)]


@pytest.mark.parametrize(("name", "build", "keras_count", "torch_count"), PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_published_figures(tmp_path, name, build, keras_count, torch_count):
    model = keras_model(build)
    keras_layer = model.layers[1]
    assert keras_layer.count_params() == keras_count  # Keras agrees with the published figure
    for report in _read_both(tmp_path, model, name):
        (row,) = report.layers
        assert row.layer.keras_params == keras_count
        assert row.stored_params == keras_count
        assert row.check == "ok"
        assert row.layer.torch_params == torch_count
        expression = row.layer.torch_expression
        if expression is None:
            assert torch_count is None
            assert "reset_after=False" in row.layer.torch_note
        else:
            assert numel(torch_module(expression)) == torch_count
        assert report.file_params == model.count_params()
        assert report.problems == ()


def test_the_48_to_56_example(tmp_path):
    model = keras_model(lambda L, x: L.LSTM(2)(x))
    keras_path, _ = save_both(model, tmp_path, "lstm")
    (row,) = read_keras_file(keras_path).layers
    assert row.layer.torch_expression == "nn.LSTM(3, 2, batch_first=True)"
    assert row.layer.keras_derivation == "[4·2·(3+2) + 4·2] = 48"
    assert [(w.role, w.found) for w in row.weights] == [
        ("kernel", (3, 8)),
        ("recurrent_kernel", (2, 8)),
        ("bias", (8,)),
    ]


def test_stacked_layers_are_one_module_with_num_layers(tmp_path):
    model = keras_model(lambda L, x: L.LSTM(2, name="top")(L.LSTM(2, return_sequences=True, name="bottom")(x)))
    assert model.count_params() == 88  # published: LSTM(2) stacked on LSTM(2)
    for report in _read_both(tmp_path, model, "stack"):
        assert [r.layer.path for r in report.layers] == ["bottom", "top"]
        assert report.keras_params == 88
        (stack,) = report.stacks
        assert stack.layers == ("bottom", "top")
        assert stack.torch_expression == "nn.LSTM(3, 2, num_layers=2, batch_first=True)"
        assert stack.torch_params == 104 == numel(torch_module(stack.torch_expression))
        assert stack.keras_params == count_params("LSTM", 3, 2, num_layers=2, convention="keras")


# Every layer kind: (builder, count_params arguments). The reader and count_params(convention="keras")
# must agree, and both must equal Keras's own layer.count_params().
KINDS = [
    (lambda L, x: L.LSTM(5)(x), {"kind": "LSTM"}),
    (lambda L, x: L.LSTM(5, use_bias=False)(x), {"kind": "LSTM", "bias": False}),
    (lambda L, x: L.GRU(5)(x), {"kind": "GRU"}),
    (lambda L, x: L.GRU(5, reset_after=False)(x), {"kind": "GRU", "reset_after": False}),
    (lambda L, x: L.GRU(5, use_bias=False)(x), {"kind": "GRU", "bias": False}),
    (lambda L, x: L.SimpleRNN(5)(x), {"kind": "RNN"}),
    (lambda L, x: L.SimpleRNN(5, activation="relu")(x), {"kind": "RNN_RELU"}),
    (lambda L, x: L.SimpleRNN(5, use_bias=False)(x), {"kind": "RNN", "bias": False}),
    (lambda L, x: L.Bidirectional(L.LSTM(5))(x), {"kind": "LSTM", "bidirectional": True}),
    (lambda L, x: L.Bidirectional(L.GRU(5))(x), {"kind": "GRU", "bidirectional": True}),
    (
        lambda L, x: L.Bidirectional(L.GRU(5, reset_after=False))(x),
        {"kind": "GRU", "bidirectional": True, "reset_after": False},
    ),
    (lambda L, x: L.Bidirectional(L.SimpleRNN(5))(x), {"kind": "RNN", "bidirectional": True}),
    (lambda L, x: L.RNN(L.LSTMCell(5))(x), {"kind": "LSTM"}),
    (lambda L, x: L.RNN(L.GRUCell(5, reset_after=False))(x), {"kind": "GRU", "reset_after": False}),
]


@pytest.mark.parametrize(("build", "settings"), KINDS, ids=[f"{i}-{k[1]}" for i, k in enumerate(KINDS)])
def test_count_params_keras_convention_agrees_with_the_reader(tmp_path, build, settings):
    model = keras_model(build, input_shape=(4, 7))
    settings = dict(settings)
    kind = settings.pop("kind")
    expected = count_params(kind, 7, 5, convention="keras", **settings)
    assert model.layers[1].count_params() == expected
    for report in _read_both(tmp_path, model, "kind"):
        (row,) = report.layers
        assert row.layer.keras_params == expected == row.stored_params
        assert row.check == "ok"


def test_stacks_agree_with_count_params_keras_convention(tmp_path):
    def build(L, x):
        x = L.Bidirectional(L.GRU(4, return_sequences=True))(x)
        x = L.Bidirectional(L.GRU(4, return_sequences=True))(x)
        return L.Bidirectional(L.GRU(4))(x)

    model = keras_model(build, input_shape=(5, 3))
    expected = count_params("GRU", 3, 4, num_layers=3, bidirectional=True, convention="keras")
    assert model.count_params() == expected
    for report in _read_both(tmp_path, model, "bigru"):
        (stack,) = report.stacks
        assert stack.keras_params == expected
        assert stack.torch_params == count_params("GRU", 3, 4, num_layers=3, bidirectional=True)


def test_file_total_is_keras_count_params_and_leaves_out_optimizer_state(tmp_path):
    np = pytest.importorskip("numpy", reason="numpy is not installed")

    def build(L, x):
        x = L.Dense(4)(x)
        x = L.LSTM(3, return_sequences=True)(x)
        x = L.BatchNormalization()(x)
        x = L.Bidirectional(L.SimpleRNN(2), merge_mode="sum")(x)
        return L.Dense(1)(x)

    model = keras_model(build, input_shape=(5, 3))
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((4, 5, 3), "float32"), np.zeros((4, 1), "float32"), epochs=1, verbose=0)
    for report in _read_both(tmp_path, model, "mixed"):
        assert report.file_params == model.count_params()  # Adam's moments are in the file, not counted
        assert report.keras_params == sum(layer.count_params() for layer in model.layers[2::2])
        assert report.other_params == model.count_params() - report.keras_params
        (bi,) = [r for r in report.layers if r.layer.bidirectional]
        assert bi.layer.torch_expression.startswith("nn.ModuleList([nn.RNN(3, 2")
        assert "merge_mode='sum'" in bi.layer.torch_note


def test_nested_models_and_sequential(tmp_path):
    keras = import_keras()
    inner = keras.Sequential(
        [keras.Input((5, 3)), keras.layers.GRU(4, return_sequences=True, name="low"), keras.layers.GRU(4, name="high")],
        name="encoder",
    )
    inputs = keras.Input((5, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
    for report in _read_both(tmp_path, model, "nested"):
        assert [r.layer.path for r in report.layers] == ["encoder/low", "encoder/high"]
        assert all(r.check == "ok" for r in report.layers)
        assert report.stacks[0].torch_expression == "nn.GRU(3, 4, num_layers=2, batch_first=True)"
        assert report.file_params == model.count_params()


def test_layers_not_read_and_masks_are_noted(tmp_path):
    def build(L, x):
        masked = L.LSTM(2, name="lstm")(L.Masking()(x))  # returns its last step: the mask ends here
        conv = L.Flatten()(L.ConvLSTM1D(2, 1)(L.Reshape((5, 3, 1))(x)))
        return L.Concatenate()([masked, conv])

    model = keras_model(build, input_shape=(5, 3))
    for report in _read_both(tmp_path, model, "other"):
        assert [r.layer.path for r in report.layers] == ["lstm"]
        notes = " ".join(report.notes)
        assert "ConvLSTM1D" in notes and "masks its input" in notes
        assert report.file_params == model.count_params()
        conv = [layer for layer in model.layers if type(layer).__name__ == "ConvLSTM1D"]
        assert report.other_params == conv[0].count_params() > 0


def _rewrite_config(source: Path, target: Path, edit) -> None:
    """A real .keras file whose config.json was edited afterwards (weights untouched)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            zout.writestr(item, data)


def test_a_config_that_does_not_fit_the_weights_is_a_mismatch(tmp_path):
    model = keras_model(lambda L, x: L.LSTM(2, name="enc")(x))
    keras_path, _ = save_both(model, tmp_path, "good")

    def widen(config):
        config["config"]["layers"][1]["config"]["units"] = 3

    bad = tmp_path / "bad.keras"
    _rewrite_config(keras_path, bad, widen)
    report = read_keras_file(bad)
    (row,) = report.layers
    assert row.check == "mismatch"
    assert report.problems[0] == (
        "layer 'enc' (LSTM) forward kernel: expected (3, 12) from the config, found (3, 8) at /layers/lstm/cell/vars/0"
    )
    assert len(report.problems) == 3

    def drop_bias(config):
        config["config"]["layers"][1]["config"]["use_bias"] = False

    _rewrite_config(keras_path, bad, drop_bias)
    assert read_keras_file(bad).problems == (
        "layer 'enc' (LSTM): the file holds a weight the config does not explain, at /layers/lstm/cell/vars/2",
    )


def test_read_weights_false_skips_the_shape_check_and_says_so(tmp_path):
    model = keras_model(lambda L, x: L.GRU(2)(x))
    keras_path, _ = save_both(model, tmp_path, "gru")
    report = read_keras_file(keras_path, read_weights=False)
    (row,) = report.layers
    assert row.check == "skipped (not asked to read weights)"
    assert row.layer.keras_params == 42
    assert report.file_params is None and report.other_params is None
    assert "weight shapes not read" in report.notes[0]


def test_without_h5py_the_config_is_still_read(tmp_path):
    model = keras_model(lambda L, x: L.LSTM(2)(x))
    keras_path, h5_path = save_both(model, tmp_path, "lstm")
    script = (
        "import sys; sys.modules['h5py'] = None\n"  # an import of h5py now raises ImportError
        "from torchlstm_params.keras_file import read_keras_file\n"
        "from torchlstm_params.errors import ForeignFileError\n"
        f"r = read_keras_file({str(keras_path)!r})\n"
        "print(r.layers[0].layer.keras_params, r.layers[0].check)\n"
        "try:\n"
        f"    read_keras_file({str(h5_path)!r})\n"
        "except ForeignFileError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    first, second = out.stdout.splitlines()
    assert first == "48 skipped (h5py is not installed (pip install 'torchlstm_params[keras]'))"
    assert second.startswith("reading the legacy HDF5 Keras file") and "needs h5py" in second


def test_importing_the_package_imports_no_keras_h5py_or_onnx():
    script = (
        "import sys, torchlstm_params, torchlstm_params.keras_file, torchlstm_params.keras_convert, "
        "torchlstm_params.onnx_file, torchlstm_params.file_render, torchlstm_params.cli\n"
        "print(sorted(m for m in ('keras', 'h5py', 'onnx', 'onnxscript', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = json.loads(out.stdout.replace("'", '"'))
    assert not {"keras", "h5py", "onnx", "onnxscript"} & set(loaded)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("dir", "is a directory"),
        (b"just text", "is neither a Keras 3 .keras zip nor an HDF5 (.h5) file"),
        (b"PK\x03\x04 broken", "is not a readable .keras zip"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "model.keras"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ForeignFileError) as caught:
        read_keras_file(path)
    assert message in str(caught.value)


def test_a_zip_without_config_and_a_config_that_is_not_json(tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("other.txt", "x")
    with pytest.raises(ForeignFileError, match=r"zip without config\.json"):
        read_keras_file(path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{not json")
    with pytest.raises(ForeignFileError, match=r"config\.json is not valid JSON"):
        read_keras_file(path)


def test_a_weights_only_h5_file_holds_no_settings(tmp_path):
    model = keras_model(lambda L, x: L.LSTM(2)(x))
    path = tmp_path / "only.weights.h5"
    model.save_weights(path)
    with pytest.raises(ForeignFileError, match="has no model_config attribute: a weights-only HDF5 file"):
        read_keras_file(path)
    assert issubclass(ForeignFileError, TorchLstmParamsError)


def test_to_dict_is_json_ready(tmp_path):
    model = keras_model(lambda L, x: L.Bidirectional(L.GRU(2, return_sequences=True))(x))
    keras_path, _ = save_both(model, tmp_path, "bigru")
    data = json.loads(json.dumps(read_keras_file(keras_path).to_dict()))
    (layer,) = data["layers"]
    assert layer["class"] == "Bidirectional(GRU)"
    assert (layer["keras_params"], layer["torch_params"], layer["stored_params"]) == (84, 84, 84)
    assert layer["torch_expression"] == "nn.GRU(3, 2, batch_first=True, bidirectional=True)"
    assert [w["found"] for w in layer["weights"]] == [[3, 6], [2, 6], [2, 6]] * 2
    assert data["file_params"] == model.count_params()
    assert data["problems"] == []
