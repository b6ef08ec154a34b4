"""The command line, called in-process through main(argv) and once as real processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from torchlstm_params.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_expression_prints_summary(capsys):
    code, out, err = run(capsys, "LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)", "--explain")
    assert code == 0 and err == ""
    assert "5,840" in out  # RNN_FORMULAS.md worked example
    assert "[2·(4·20·(10+5) + 2·4·20 + 5·20)]" in out


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
    assert "Keras (one bias per gate): 4·(2·(3+2) + 2) = 48" in out


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
