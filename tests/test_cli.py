"""The command line, called in-process through main(argv) and once as real processes."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.helpers import KERAS_NUMPY2_WARNING, WALK_COUNTED_PARAMS, cell, flat, lstm_count
from tests.helpers import run_cli as run
from torchlstm_params.cli import main

ROOT = Path(__file__).parent.parent
# Real processes import this worktree's package, not whichever copy the environment installed.
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


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
        (["LSTM(2, 2)", "--depth", "-1"], "--depth must be an int >= 0, got: -1"),
        (["justaword"], "a factory is 'package.module:callable' or 'path/to/file.py:callable', got 'justaword'"),
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
    why = [
        "torchlstm-params: exit 1: 3 stored shape(s) do not fit their settings; first: layer 'lstm' (LSTM) "
        "forward kernel: expected (3, 12) from the config, found (3, 8) at /layers/lstm/cell/vars/0"
    ]
    code, out, err = run(capsys, str(bad))
    assert code == 1 and err.splitlines() == why  # every exit 1 says why on stderr
    assert "Shape mismatches: 3" in out
    code, out, err = run(capsys, str(bad), "--check")
    assert code == 1
    assert out.rstrip().endswith("Shape check: 3 mismatch(es)")
    assert err.splitlines() == why


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
    argv = ["tests.helpers:walk_counted_model", "--kwargs", json.dumps({"log": str(log)}), "--check", "--build-real"]
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


def cli(*argv: str, cwd: Path = ROOT, **kwargs) -> subprocess.CompletedProcess[str]:
    """``python -m torchlstm_params ARGV`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "torchlstm_params", *argv],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=ENV,
        check=False,
        **kwargs,
    )


# --- 1. a check that did not run is never "passed" ---


def test_check_of_a_meta_built_factory_says_the_value_scan_was_skipped(capsys):
    code, out, _ = run(capsys, "tests.helpers:with_nan", "--check")
    assert code == 0
    assert "passed" not in out
    assert (
        "Sanity check: NOT COMPLETE, no problems in the parts that ran; values skipped: the factory was built on the "
        "meta device, so its tensors hold no values; --build-real builds it on the CPU so that they can be scanned"
    ) in out


def test_build_real_lets_the_check_scan_a_factory(capsys):
    code, out, err = run(capsys, "tests.helpers:with_nan", "--check", "--build-real")
    assert code == 1
    assert "  [NON_FINITE] (root): weight_ih_l0 holds 2 NaN and 0 Inf of 48 values" in out  # 4·3 x 4, by hand
    assert "  [NON_FINITE] (root): bias_hh_l0 holds 0 NaN and 1 Inf of 12 values" in out
    n = lstm_count(4, 3)
    assert f"Values: 4 tensors, {n} values, {4 * n} B scanned from the model's parameters" in out
    assert err == "torchlstm-params: exit 1: the sanity check failed: 2 problems (NON_FINITE)\n"


def _nan_state() -> dict[str, torch.Tensor]:
    model = nn.Sequential(nn.Embedding(6, 4), nn.GRU(4, 5))
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["1.weight_hh_l0"][3, 3] = float("nan")
    state["1.bias_ih_l0"][0] = float("-inf")
    state["1.bias_ih_l0"][1] = float("inf")
    return state


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_check_scans_a_checkpoint_values(capsys, tmp_path, suffix):
    state = _nan_state()
    path = tmp_path / f"model{suffix}"
    if suffix == ".pt":
        torch.save({"state_dict": state, "epoch": 3}, path)
    else:
        safetensors = pytest.importorskip("safetensors.torch", reason="the safetensors package is not installed")
        safetensors.save_file(state, str(path))
    code, out, err = run(capsys, str(path), "--check", "--format", "json")
    assert code == 1
    check = json.loads(out)["check"]
    assert check["status"] == "failed" and check["passed"] is False
    assert check["ran"]["values"] is True
    assert sorted(check["problems"], key=lambda p: p["message"]) == [
        {
            "code": "NON_FINITE",
            "severity": "error",
            "path": "1",
            "message": "bias_ih_l0 holds 0 NaN and 2 Inf of 15 values",
        },
        {
            "code": "NON_FINITE",
            "severity": "error",
            "path": "1",
            "message": "weight_hh_l0 holds 1 NaN and 0 Inf of 75 values",
        },
    ]
    floats = [t for t in state.values() if t.is_floating_point()]
    values = check["values"]
    assert (values["tensors"], values["elements"], values["bytes"]) == (
        len(floats),
        sum(t.numel() for t in floats),
        sum(t.numel() * t.element_size() for t in floats),
    )
    assert values["mapped"] is True
    assert err == "torchlstm-params: exit 1: the sanity check failed: 2 problems (NON_FINITE)\n"


def test_clean_checkpoint_passes_and_says_how_much_was_scanned(capsys, tmp_path):
    model = nn.LSTM(3, 2)
    path = tmp_path / "clean.pt"
    torch.save(model.state_dict(), path)
    code, out, _ = run(capsys, str(path), "--check")
    assert code == 0
    assert "Sanity check: passed" in out
    assert f"Values: 4 tensors, 56 values, 224 B scanned from {path} (memory-mapped, one tensor at a time" in out


# --- 2. severities ---


def test_a_warning_is_listed_and_strict_makes_it_fail(capsys):
    code, out, err = run(capsys, "LSTM(3, 2, dropout=0.3)", "--check")
    assert code == 0, err
    assert "  warning [RNN_DROPOUT_NO_EFFECT] (root): dropout=0.3 has no effect with num_layers=1" in out
    assert "Note: while building: UserWarning: dropout option adds dropout after all but last recurrent layer" in out
    code, out, err = run(capsys, "LSTM(3, 2, dropout=0.3)", "--check", "--strict")
    assert code == 1
    assert "Sanity check: FAILED, 1 warning (strict: warnings fail too)" in out
    assert err == (
        "torchlstm-params: exit 1: the sanity check failed: 1 problem (RNN_DROPOUT_NO_EFFECT) "
        "(--strict: warnings fail too)\n"
    )


# --- 3. every answer readable by a program ---


def test_json_carries_the_check_and_a_skipped_part_is_named(capsys):
    code, out, err = run(capsys, "GRU(4, 8)", "--check", "--format", "json")
    assert code == 0
    check = json.loads(out)["check"]
    assert check["status"] == "incomplete" and check["passed"] is False
    assert check["ran"] == {
        "tensors": True,
        "counts": False,
        "expect": False,
        "settings": True,
        "values": "skipped: a layer expression is built on the meta device: it has shapes, no values",
    }
    assert check["values"] is None  # nothing was read: no figures of an empty scan
    assert err.startswith("torchlstm-params: note: the sanity check is not complete: values skipped")


def test_a_mismatch_says_why_on_stderr_in_every_format(capsys, tmp_path):
    path = tmp_path / "bad.pt"
    state = nn.LSTM(3, 4, num_layers=2).state_dict()
    del state["bias_hh_l1"]  # the formula has it, the file does not
    torch.save(state, path)
    for fmt in ("table", "json", "csv", "github"):
        code, _, err = run(capsys, str(path), "--format", fmt)
        assert code == 1
        why = [line for line in err.splitlines() if line.startswith("torchlstm-params: exit 1:")]
        assert why == ["torchlstm-params: exit 1: 1 recurrent module(s) do not match their formula ((root))"]


def test_csv_carries_keras_explain_and_batch_and_says_what_it_left_out(capsys):
    code, out, err = run(
        capsys,
        "LSTM(3, 2)",
        "--format",
        "csv",
        "--keras",
        "--explain",
        "--batch",
        "2",
        "--seq-len",
        "5",
        "--optimizer",
        "adam",
        "--check",
    )
    assert code == 0
    (row,) = csv.DictReader(io.StringIO(out))
    assert row["keras_params"] == "48"  # 4(nm + n² + n) with n=2, m=3
    assert row["derivation"] == "[4·2·(3+2) + 2·4·2] = 56"
    assert row["forward_macs"] == str(4 * 2 * (3 + 2) * 2 * 5)  # g·h·(in+h) per step, 10 tokens
    assert row["tokens"] == "10"
    assert err.splitlines()[0] == (
        "torchlstm-params: note: --format csv holds one row per module; here on stderr instead: --optimizer, --check"
    )
    assert any(line.startswith("training memory with adam: weights 224 B") for line in err.splitlines())
    assert any(line.startswith("Sanity check: NOT COMPLETE") for line in err.splitlines())


def test_json_carries_training_memory_as_fields(capsys):
    code, out, _ = run(capsys, "LSTM(3, 2)", "--format", "json", "--optimizer", "adam")
    assert code == 0
    memory = json.loads(out)["training_memory"]
    params = lstm_count(3, 2)  # 56 float32 weights; Adam keeps exp_avg and exp_avg_sq
    assert memory == {
        "trainable_recorded": True,
        "optimizer": "adam",
        "weights": 4 * params,
        "gradients": 4 * params,
        "optimizer_state": 2 * 4 * params,
        "master_weights": 0,
        "total": 16 * params,
        "recurrent_saved_activations": None,
        "total_with_recurrent_saved_activations": None,
        "not_included": "activations (give --batch and --seq-len)",
    }


def _largest_hidden(budget: int, i: int, layers: int) -> int:
    h = 1
    while lstm_count(i, h + 1, layers) <= budget:  # brute force over the hand-written count
        h += 1
    return h


def test_budget_takes_an_expression_without_a_hidden_size_and_answers_first(capsys):
    code, out, err = run(capsys, "LSTM(300, num_layers=2)", "--budget", "5000000")
    assert code == 0 and err == ""
    h = _largest_hidden(5_000_000, 300, 2)
    assert out.splitlines()[0] == (
        f"Budget 5,000,000: hidden_size={h} is the largest for LSTM(input_size=300, num_layers=2, "
        f"bidirectional=False, proj_size=0, bias=True): {lstm_count(300, h, 2):,} parameters "
        f"({5_000_000 - lstm_count(300, h, 2):,} under)"
    )
    assert "Total params" not in out  # no summary of a stand-in model
    code, out, _ = run(capsys, "LSTM(300, num_layers=2)", "--budget", "5000000", "--format", "json")
    answer = json.loads(out)["budget"]
    assert (answer["hidden_size"], answer["params"]) == (h, lstm_count(300, h, 2))
    assert answer["closest"][0].keys() == {"num_layers", "bidirectional", "hidden_size", "params", "difference"}


# --- 6. pipes, 11. a full disk, an interrupt ---


def test_a_closed_pipe_exits_quietly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "torchlstm_params", "tests.helpers:wide"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=ENV,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before a byte is written
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=180) == 141
    assert err == ""


def test_head_takes_one_line_and_nothing_complains():
    done = subprocess.run(
        f"{sys.executable} -m torchlstm_params tests.helpers:wide | head -1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
        timeout=180,
        check=False,
    )
    whole = cli("tests.helpers:wide")
    assert whole.returncode == 0
    assert done.stdout == whole.stdout.splitlines(keepends=True)[0]
    assert done.stderr == ""


def test_stdout_on_a_full_disk_is_one_line_and_exit_2():
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "torchlstm_params", "LSTM(3, 2)", "--format", "json"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=ENV,
            timeout=180,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr == "torchlstm-params: error: cannot write the output: [Errno 28] No space left on device\n"


def test_ctrl_c_exits_130_quietly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "torchlstm_params", "tests.helpers:slow_to_build"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=ENV,
        text=True,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline() == "building\n"  # the factory runs: interrupt it mid-build
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert (out, err) == ("", "")


# --- 7, 11. every build error is one line, exit 2, with a suggestion where one exists ---


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "LSTM(10, 20, num_layer=2)",
            "LSTM(10, 20, num_layer=2): LSTM has no argument 'num_layer' (did you mean 'num_layers'?)",
        ),
        ("lstm(10,20)", "unknown layer 'lstm' (did you mean 'LSTM'?)"),
        ("nn.GRUcell(2, 3)", "unknown layer 'nn.GRUcell' (did you mean 'GRUCell'?)"),
        ("LSTM(10, 20, dtype='flaot16')", "dtype 'flaot16' is not a torch dtype (did you mean 'float16'?)"),
        ("LSTM(10, 20, device='cdua')", "device 'cdua' is not a torch device"),
        (
            "LSTM(1000000000000, 1000000000000)",
            "LSTM(1000000000000, 1000000000000): Storage size calculation overflowed",
        ),
        ("LSTM(1, " + "-" * 30_000 + "1)", "a layer expression has at most 10,000 characters, got 'LSTM(1, ---"),
        ("LSTM(1, " + "a." * 30_000 + "b)", "a layer expression has at most 10,000 characters, got 'LSTM(1, a.a."),
        ("LSTM(1, " + "+" * 30_000 + "1)", "a layer expression has at most 10,000 characters"),
        ("LSTM(1, " + "-" * 3_000 + "1)", "layer expression nested too deeply to parse: 'LSTM(1, ---"),
        ("LSTM(1, " + "(" * 4_000 + "1" + ")" * 4_000 + ")", "too many nested parentheses"),
        ("..:good", "a factory names an absolute module ('package.module:callable') or a file"),
        ("LSTM(10, 20, 2, True, False, 0.0, False, 0, 'cpu', 'float32', 9)", "LSTM takes at most 10 arguments, got 11"),
        ("LSTM(10, 20, num_layers=2, num_layers=3)", "keyword argument repeated: 'num_layers'"),
    ],
)
def test_expression_and_factory_errors_are_one_line(capsys, spec, message):
    code, out, err = run(capsys, spec)
    assert code == 2 and out == ""
    assert err.startswith("torchlstm-params: error: ")
    assert message in err
    assert err.count("\n") == 1 and len(err) < 600


def test_a_huge_expression_is_quoted_as_a_short_excerpt(capsys):
    code, _, err = run(capsys, "LSTM(" + "1" * 10_000_000 + ")")
    assert code == 2
    assert err.startswith("torchlstm-params: error: a layer expression has at most 10,000 characters, got 'LSTM(111")
    assert err.endswith("...' (10,000,006 characters)\n") and len(err) < 200


@pytest.mark.parametrize("dtype", ["'float16'", "'torch.float16'", "torch.float16"])
def test_dtype_is_accepted_as_a_name(capsys, dtype):
    code, out, err = run(capsys, f"LSTM(10, 20, dtype={dtype})", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["dtypes"] == [
        {"dtype": "float16", "params": 2560, "bytes": 2 * 2560, "trainable_params": 2560, "itemsize": 2}
    ]


def test_a_device_is_set_aside_with_a_note(capsys):
    code, out, err = run(capsys, "LSTM(10, 20, device='cuda')")
    assert code == 0, err
    assert "Total params: 2,560" in out
    assert "Note: device='cuda' set aside: a layer expression is built on the meta device" in out


# --- 8. factories from the console script and from files ---


def test_console_script_imports_factories_from_the_working_directory(tmp_path):
    (tmp_path / "mymod.py").write_text("from torch import nn\n\ndef build():\n    return nn.GRU(3, 5)\n")
    script = Path(sys.executable).parent / "torchlstm-params"
    done = subprocess.run(
        [str(script), "mymod:build", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env=ENV,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_params"] == 3 * 5 * (3 + 5) + 2 * 3 * 5


def test_factory_from_a_file_path(capsys, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "zoo.py").write_text(
        "from torch import nn\n\ndef build(hidden=4):\n    return nn.LSTM(2, hidden, bidirectional=True)\n"
    )
    code, out, err = run(capsys, f"{models / 'zoo.py'}:build", "--kwargs", '{"hidden": 3}', "--format", "json")
    assert code == 0, err
    assert json.loads(out)["total_params"] == lstm_count(2, 3, bidirectional=True)
    code, _, err = run(capsys, f"{tmp_path / 'nope.py'}:build")
    assert code == 2 and "no such file" in err


# --- 9. messages name the flags typed ---


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["LSTM(2, 2)", "--batch", "2", "--seq-len", "0"], "--seq-len must be an int >= 1, got: 0"),
        (["LSTM(2, 2)", "--seq-len", "4"], "--seq-len needs --batch too (or give --lengths for a packed batch)"),
        (["LSTM(2, 2)", "--lengths", "3,x"], "--lengths must be comma-separated integers >= 1, got '3,x'"),
        (["LSTM(2, 2)", "--budget", "-5"], "--budget must be an int >= 0, got: -5"),
        (["LSTM(2, 2)", "--kwargs", "{}"], "--kwargs applies to a factory, not to an expression"),
        (
            ["tests.helpers:tagger", "--budget", "100"],
            "--budget takes a layer expression such as 'LSTM(300, num_layers=2)'",
        ),
        (["LSTM(300, 2)", "--budget", "10", "--check"], "it does not combine with --check"),
        (["LSTM(2, 2)", "--strict"], "--strict apply to --check; add --check"),
    ],
)
def test_messages_name_the_flags(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


# --- 10. remedies the command line can follow ---


def test_frozen_remedy_is_a_flag_and_the_flags_work(capsys):
    code, out, err = run(capsys, "tests.helpers:frozen_rnn", "--check")
    assert code == 1
    assert "pass --allow-frozen 1 if intended" in out
    assert run(capsys, "tests.helpers:frozen_rnn", "--check", "--allow-frozen", "1")[0] == 0
    assert run(capsys, "tests.helpers:frozen_rnn", "--check", "--allow", "RNN_FROZEN")[0] == 0
    code, _, err = run(capsys, "tests.helpers:frozen_rnn", "--check", "--allow", "RNN_FROZN")
    assert code == 2
    assert "--allow names unknown problem codes 'RNN_FROZN' (did you mean 'RNN_FROZEN'?)" in err


# --- 12. huge layer counts answer from the settings ---


def test_a_million_layers_answer_from_the_settings():
    started = time.monotonic()
    done = cli("LSTM(10, 20, num_layers=1000000)", "--check", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 60
    data = json.loads(done.stdout)
    layer0, above = 4 * 20 * (10 + 20) + 2 * 4 * 20, 4 * 20 * (20 + 20) + 2 * 4 * 20  # by hand
    assert data["total_params"] == layer0 + 999_999 * above
    assert data["recurrent"][0]["num_layers"] == 1_000_000
    assert data["recurrent"][0]["status"] == "ok"
    assert [(b["layer"], b["repeat"]) for b in data["recurrent"][0]["breakdown"]] == [(0, 1), (1, 999_999)]


def test_a_deep_stack_counts_as_torch_does(capsys):
    spec = "GRU(6, 5, num_layers=70, bidirectional=True)"
    with torch.device("meta"):
        real = nn.GRU(6, 5, num_layers=70, bidirectional=True)
    code, out, _ = run(capsys, spec, "--format", "json", "--batch", "2", "--seq-len", "3")
    assert code == 0
    data = json.loads(out)
    assert data["total_params"] == sum(p.numel() for p in real.parameters())
    assert data["param_bytes"] == 4 * data["total_params"]
    assert data["recurrent"][0]["state"]["h_n"] == 70 * 2 * 2 * 5  # layers · directions · batch · hidden
    assert any("num_layers=70: counted from the settings" in n for n in data["notes"])


# --- 13. other rough edges ---


def test_a_factory_that_prints_does_not_corrupt_json(capsys):
    code, out, err = run(capsys, "tests.helpers:chatty", "--format", "json")
    assert code == 0
    assert json.loads(out)["total_params"] == 3 * 3 * (2 + 3) + 2 * 3 * 3
    assert "building the model, please wait" in err


def test_trust_pickle_says_what_it_trusts(capsys, tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(nn.GRU(2, 3), path)
    code, _, err = run(capsys, str(path), "--trust-pickle")
    assert code == 0
    first = err.splitlines()[0]
    assert first.startswith(
        "torchlstm-params: --trust-pickle: torch.load(weights_only=False) imports and may run code of what "
        f"{path} names: "
    )
    assert "torch.nn.modules.rnn.GRU" in first


def test_a_pipe_in_a_module_name_keeps_markdown_tables_whole(capsys):
    code, out, _ = run(capsys, "tests.helpers:piped_names", "--format", "github")
    assert code == 0
    assert "| enc\\|dec " in out
    tables: list[list[int]] = []
    previous = False
    for line in out.splitlines():
        row = line.startswith("|")
        if row and not previous:
            tables.append([])
        if row:
            tables[-1].append(line.replace("\\|", "").count("|"))  # unescaped cell borders
        previous = row
    assert len(tables) >= 2
    for borders in tables:
        assert len(set(borders)) == 1, borders  # every row has as many cells as its header
