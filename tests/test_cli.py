"""The command line, called in-process through main(argv) and once as real processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import KERAS_NUMPY2_WARNING, WALK_COUNTED_PARAMS, cell, flat
from tests.helpers import run_cli as run
from torchlstm_params.cli import main


def test_expression_prints_summary(capsys):
    code, out, err = run(capsys, "LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)", "--explain")
    assert code == 0 and err == ""
    assert "5,840" in out  # RNN_FORMULAS.md worked example
    assert "2·[4·20·(10+5) + 2·4·20 + 5·20] + 2·[4·20·(10+5) + 2·4·20 + 5·20] = 5,840" in out


@pytest.mark.parametrize(
    ("spec", "total"),
    [
        ("GRUCell(64, 128)", 3 * 128 * (64 + 128) + 2 * 3 * 128),
        ("nn.RNN(8, 16, nonlinearity='relu')", 16 * (8 + 16) + 2 * 16),
        ("torch.nn.GRU(10, 20, 2, bidirectional=True)", 11_280),
    ],
)
def test_expression_json(capsys, spec, total):
    code, out, _ = run(capsys, spec, "--format", "json")
    assert code == 0
    assert json.loads(out)["total_params"] == total


def test_keras_column(capsys):
    code, out, _ = run(capsys, "LSTM(3, 2)", "--keras", "--explain")
    assert code == 0
    assert "Keras: one bias per gate: [4·2·(3+2) + 4·2] = 48" in out


def test_factory_with_kwargs(capsys):
    code, out, _ = run(capsys, "tests.helpers:tagger", "--kwargs", '{"hidden": 8}', "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["total_params"] == 100 * 16 + 2 * (3 * 8 * (16 + 8) + 2 * 3 * 8) + 16 * 5 + 5


def test_factory_that_refuses_meta_is_built_for_real(capsys):
    code, out, _ = run(capsys, "tests.helpers:needs_real_device", "--format", "json")
    assert code == 0 and json.loads(out)["total_params"] == 4 * 4 * 8 + 8 * 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["LSTM(10, "], "cannot parse layer expression 'LSTM(10, '"),
        (
            ["Transformer(10, 20)"],
            "unknown layer 'Transformer'; expected one of LSTM, GRU, RNN, LSTMCell, GRUCell, RNNCell",
        ),
        (["LSTM(10, __import__('os').getpid())"], "layer expression arguments must be literals"),
        (["LSTM(10, 0)"], "LSTM(10, 0): hidden_size must be greater than zero"),
        (["GRU(4, 8, proj_size=2)"], "GRU(4, 8, proj_size=2): "),
        (["no_such_pkg_xyz.mod:build"], "cannot import 'no_such_pkg_xyz.mod' for factory"),
        (["tests.helpers:nothing"], "'tests.helpers' has no attribute 'nothing'"),
        (["tests.helpers:not_a_model"], "factory 'tests.helpers:not_a_model' returned int, not a torch.nn.Module"),
        (
            ["tests.helpers:broken"],
            "factory 'tests.helpers:broken' failed: KeyError: \"missing config entry 'layers'\"",
        ),
        (["tests.helpers:tagger", "--kwargs", "{oops"], "--kwargs is not valid JSON"),
        (["tests.helpers:tagger", "--kwargs", "[1]"], "--kwargs must be a JSON object, got list"),
        (["LSTM(2, 2)", "--depth", "-1"], "max_depth must be None or an int >= 0, got: -1"),
        (["justaword"], "a factory is 'package.module:callable', got 'justaword'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("torchlstm-params: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_real_processes_module_and_console_script():
    spec = "LSTM(300, 512, num_layers=2)"
    for cmd in ([sys.executable, "-m", "torchlstm_params", spec], ["torchlstm-params", spec]):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "Total params: 3,768,320" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "torchlstm_params", "LSTM("], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


# --- Keras and ONNX files (real files written by Keras 3 and torch.onnx.export) ---

TORCHSCRIPT_EXPORT_WARNINGS = pytest.mark.filterwarnings(
    "ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning",
    "ignore:The feature will be removed. Please remove usage of this function:DeprecationWarning:torch.onnx",
    "ignore:Converting a tensor to a Python boolean might cause the trace to be incorrect:torch.jit.TracerWarning",
    "ignore:Exporting a model to ONNX with a batch_size other than 1:UserWarning",
)


@pytest.fixture
def keras_files(tmp_path):
    pytest.importorskip("h5py", reason="h5py is not installed: pip install 'torchlstm_params[keras]'")
    from tests.helpers import keras_model, save_both

    model = keras_model(lambda L, x: L.LSTM(2, name="lstm")(x))
    return save_both(model, tmp_path, "lstm")


@pytest.mark.filterwarnings(KERAS_NUMPY2_WARNING)
@pytest.mark.parametrize("which", [0, 1], ids=["keras", "h5"])
def test_keras_file_table(capsys, keras_files, which):
    code, out, err = run(capsys, str(keras_files[which]), "--check")
    assert code == 0 and err == ""
    assert "nn.LSTM(3, 2, batch_first=True)" in out
    assert "  lstm: [4·2·(3+2) + 4·2] = 48" in out.splitlines()
    assert "Recurrent params: Keras 48, PyTorch 56 (+8: PyTorch keeps two bias vectors, bias_ih and bias_hh)" in out
    assert out.rstrip().endswith("Shape check: passed")


@pytest.mark.filterwarnings(KERAS_NUMPY2_WARNING)
@pytest.mark.parametrize(("fmt", "marker"), [("github", "| Layer "), ("markdown", "| Layer "), ("table", "Layer  ")])
def test_keras_file_formats(capsys, keras_files, fmt, marker):
    code, out, _ = run(capsys, str(keras_files[0]), "--format", fmt)
    assert code == 0 and any(line.startswith(marker) for line in out.splitlines())


@pytest.mark.filterwarnings(KERAS_NUMPY2_WARNING)
def test_keras_file_json_and_csv(capsys, keras_files):
    code, out, _ = run(capsys, str(keras_files[0]), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["layers"][0]["keras_params"] == 48 and data["layers"][0]["torch_params"] == 56
    assert data["shape_check"] == "passed" and data["problems"] == []
    code, out, _ = run(capsys, str(keras_files[1]), "--format", "csv")
    header, row = out.strip().splitlines()
    assert header.startswith("layer,class,input_size,units,")
    assert row == 'lstm,LSTM,3,2,False,48,"nn.LSTM(3, 2, batch_first=True)",56,48,ok'


@pytest.mark.filterwarnings(KERAS_NUMPY2_WARNING)
def test_keras_file_mismatch_exits_1_and_check_says_why(capsys, keras_files, tmp_path):
    import zipfile

    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(keras_files[0]) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                data = data.replace(b'"units": 2', b'"units": 3')
            zout.writestr(item, data)
    code, out, err = run(capsys, str(bad))
    assert code == 1 and err == ""
    assert "Shape mismatches: 3" in out
    code, out, err = run(capsys, str(bad), "--check")
    assert code == 1
    assert out.rstrip().endswith("Shape check: 3 mismatch(es)")
    assert err.splitlines() == [
        "torchlstm-params: check failed: 3 stored shape(s) do not fit their settings; first: layer 'lstm' (LSTM) "
        "forward kernel: expected (3, 12) from the config, found (3, 8) at /layers/lstm/cell/vars/0"
    ]


@TORCHSCRIPT_EXPORT_WARNINGS
def test_onnx_file(capsys, tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed: pip install 'torchlstm_params[onnx]'")
    import torch
    from torch import nn

    path = tmp_path / "gru.onnx"
    torch.onnx.export(
        nn.GRU(10, 20, num_layers=2, bidirectional=True).eval(), (torch.randn(5, 1, 10),), str(path), dynamo=False
    )
    code, out, err = run(capsys, str(path), "--check")
    assert code == 0 and err == ""
    assert "nn.GRU(10, 20, bidirectional=True)" in out and "nn.GRU(40, 20, bidirectional=True)" in out
    assert "Stored tensors: recurrent weights 11,280 + initial states 0" in out  # RNN_FORMULAS: GRU(10, 20, 2, bidir)
    assert out.rstrip().endswith("Shape check: passed")
    code, out, _ = run(capsys, str(path), "--format", "json")
    assert code == 0 and json.loads(out)["recurrent_params"] == 11_280
    code, out, _ = run(capsys, str(path), "--format", "csv")
    assert [line.split(",")[10] for line in out.strip().splitlines()[1:]] == ["3840", "7440"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.keras", None, "torchlstm-params: error: no such file: "),
        ("text.keras", b"not a model", "is neither a Keras 3 .keras zip nor an HDF5 (.h5) file"),
        ("text.h5", b"not a model", "is neither a Keras 3 .keras zip nor an HDF5 (.h5) file"),
        ("text.onnx", b"\x08\x07garbage", "is not a readable ONNX model"),
    ],
)
def test_unreadable_keras_and_onnx_files_exit_2_with_one_line(capsys, tmp_path, name, content, message):
    if name.endswith(".onnx"):
        pytest.importorskip("onnx", reason="onnx is not installed: pip install 'torchlstm_params[onnx]'")
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, out, err = run(capsys, str(path))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and message in err


def test_torch_only_options_are_refused_for_keras_files(capsys, tmp_path):
    code, _, err = run(capsys, str(tmp_path / "m.keras"), "--batch", "4")
    assert code == 2
    assert err.strip().endswith("--batch applies to torch models and checkpoints, not to " + str(tmp_path / "m.keras"))


def test_check_optimizer_and_batch_walk_the_model_once(capsys, tmp_path):
    """One summary serves the table, the check, the training memory and the batch figures."""
    log = tmp_path / "walks.txt"  # the factory's model writes a line for each walk of it
    argv = ["tests.helpers:walk_counted_model", "--kwargs", json.dumps({"log": str(log)}), "--check"]
    code, out, err = run(capsys, *argv, "--optimizer", "adam", "--batch", "2", "--seq-len", "3")
    assert (code, err) == (0, "")
    assert "Sanity check: passed" in out and cell(out, "Tokens", "encoder") == "6"
    assert f"Total params: {WALK_COUNTED_PARAMS:,}" in out
    assert f"weights {4 * WALK_COUNTED_PARAMS:,} B" in out and "training memory with adam" in out
    assert log.read_text(encoding="utf-8").splitlines() == ["walk.py:walk"]


def test_depth_fold_and_color_flags(capsys):
    code, out, _ = run(capsys, "tests.helpers:block_stack")
    assert code == 0 and "blocks.0–39 ×40" in out and "blocks.0–39.rnn" in out and len(out.splitlines()) < 60
    code, out, _ = run(capsys, "tests.helpers:block_stack", "--depth", "all", "--no-fold")
    assert "blocks.39.ff.2 " in out and "×40" not in out
    code, out, _ = run(capsys, "tests.helpers:block_stack", "--depth", "1")
    assert "blocks.0" not in out.split("\n\n")[0] and "40 more recurrent modules below depth 1" in flat(out)
    code, out, _ = run(capsys, "GRU(3, 4)", "--color", "always")
    assert "\x1b[32mok\x1b[0m" in out
    code, out, _ = run(capsys, "GRU(3, 4)", "--color", "never")
    assert "\x1b[" not in out


def test_per_module_seq_len(capsys):
    argv = ["tests.helpers:speech_recognizer", "--batch", "8", "--seq-len", "encoder=50,decoder=12"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert cell(out, "Tokens", "encoder") == "400" and cell(out, "Tokens", "decoder.cell") == "96†"
    # By hand: a step of the 4-layer bidirectional projected LSTM, 2 directions x (4h(in+r) + p·h) per layer.
    step = 2 * (4 * 768 * (512 + 256) + 256 * 768) * 4
    assert cell(out, "Fwd MACs", "encoder") == f"{step * 400:,}"
    code, out, _ = run(capsys, *argv[:-1], "200,decoder=12", "--format", "json")
    data = json.loads(out)
    assert data["seq_len"] == {"": 200, "decoder": 12}
    assert [e["compute"]["tokens"] for e in data["recurrent"]] == [1600, 96]
    with pytest.raises(SystemExit) as exit_info:
        main(["GRU(3, 4)", "--batch", "2", "--seq-len", "encoder=x"])
    assert exit_info.value.code == 2
    assert "expected an int or 'path=int,...'" in capsys.readouterr().err
