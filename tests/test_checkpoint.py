"""Checkpoint inspection: read_checkpoint and build_model directly, and through the command line, on real
torch.save, safetensors and Lightning files."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from tests.helpers import cell, numel, within
from tests.helpers import run_cli as run
from torchlstm_params import CheckpointError, summarize
from torchlstm_params.checkpoint import build_model, read_checkpoint
from torchlstm_params.cli import main


class Speech(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(30, 8)
        self.encoder = nn.LSTM(8, 16, num_layers=3, bidirectional=True, proj_size=4)
        self.gru = nn.GRU(8, 6, bias=False)
        self.rnn = nn.RNN(6, 5, nonlinearity="relu")
        self.decoder = nn.ModuleList([nn.LSTMCell(8, 8), nn.GRUCell(8, 8)])
        self.norm = nn.BatchNorm1d(8)
        self.out = nn.Linear(8, 30)


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "model_state_dict"])
def test_torch_save_state_dict_infers_every_recurrent_module(tmp_path: Path, capsys, wrap: str):
    model = Speech()
    state = model.state_dict()
    path = tmp_path / "speech.pt"
    torch.save(state if wrap == "plain" else {wrap: state, "epoch": 3}, path)
    code, out, _ = run(capsys, path, "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["total_params"] == sum(p.numel() for p in model.parameters())  # BatchNorm stats are buffers
    assert data["buffer_count"] == 3
    by_name = {e["name"]: e for e in data["recurrent"]}
    assert list(by_name) == ["encoder", "gru", "rnn", "decoder.0", "decoder.1"]
    enc = by_name["encoder"]
    assert (enc["kind"], enc["input_size"], enc["hidden_size"], enc["num_layers"], enc["bidirectional"]) == (
        "LSTM",
        8,
        16,
        3,
        True,
    )
    assert enc["proj_size"] == 4 and enc["status"] == "ok"
    assert enc["formula_params"] == sum(p.numel() for p in model.encoder.parameters())
    assert by_name["gru"]["bias"] is False
    assert by_name["rnn"]["kind"] == "RNN_TANH"  # relu cannot be told from shapes: said in a note
    assert any("tanh or relu cannot be told apart" in n for n in data["notes"])
    assert [by_name[n]["kind"] for n in ("decoder.0", "decoder.1")] == ["LSTMCell", "GRUCell"]
    assert all(e["status"] == "ok" for e in data["recurrent"])


def test_safetensors_header_gives_the_same_report(tmp_path: Path, capsys):
    model = Speech()
    torch.save(model.state_dict(), tmp_path / "a.pt")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "a.safetensors"))
    _, from_pt, _ = run(capsys, tmp_path / "a.pt", "--format", "csv")
    code, from_st, _ = run(capsys, tmp_path / "a.safetensors", "--format", "csv")
    assert code == 0
    assert sorted(from_st.splitlines()) == sorted(from_pt.splitlines())  # safetensors stores names sorted
    assert from_st.splitlines()[0] == "module,type,depth,params,trainable,kind,formula_params,tensor_params,status"


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore:.*LeafSpec.*:FutureWarning")
def test_real_lightning_checkpoint(tmp_path: Path, capsys):
    import lightning.pytorch as pl

    from tests.helpers import lightning_tagger as Tagger

    model = Tagger(hidden=7)
    trainer = pl.Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model)
    path = tmp_path / "last.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = read_checkpoint(path)
    assert checkpoint.found_under == "state_dict"
    code, out, _ = run(capsys, path, "--format", "json")
    data = json.loads(out)
    assert code == 0
    (entry,) = data["recurrent"]
    assert (entry["name"], entry["kind"], entry["input_size"], entry["hidden_size"]) == ("rnn", "LSTM", 4, 7)
    assert data["total_params"] == sum(p.numel() for p in model.parameters())


def test_inconsistent_layers_are_a_note_naming_the_closest_setting_and_fail_the_check(tmp_path: Path, capsys):
    state = nn.LSTM(10, 20, num_layers=2).state_dict()
    state["weight_ih_l1"] = torch.zeros(80, 30)  # layer 1 input must be layer 0's output, 20
    torch.save(state, tmp_path / "bad.pt")
    code, out, _ = run(capsys, tmp_path / "bad.pt", "--check")
    assert code == 1
    assert "fit no torch LSTM/GRU/RNN setting" in out
    assert "closest is LSTM(10, 20, num_layers=2), which has weight_ih_l1 (80, 20), not (80, 30)" in out
    assert "[RNN_UNRECOGNISED] (root)" in out and "Sanity check: passed" not in out


def test_tied_tensors_in_a_checkpoint_are_counted_once(tmp_path: Path, capsys):
    model = nn.Sequential(nn.Embedding(50, 8), nn.LSTM(8, 8), nn.Linear(8, 50))
    model[2].weight = model[0].weight
    torch.save(model.state_dict(), tmp_path / "tied.pt")
    code, out, _ = run(capsys, tmp_path / "tied.pt", "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert data["total_params"] == sum(p.numel() for p in model.parameters())
    assert data["shared"][0]["names"] == ["0.weight", "2.weight"]


def test_full_pickled_model_is_read_without_running_it_or_trusted(tmp_path: Path, capsys):
    path = tmp_path / "whole.pt"
    torch.save(nn.GRU(3, 4), path)
    count = 3 * 4 * (3 + 4) + 2 * 3 * 4
    code, out, err = run(capsys, path, "--format", "json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["total_params"] == data["trainable_params"] == count  # a pickled module records requires_grad
    assert data["recurrent"][0]["kind"] == "GRU"
    code, out, err = run(capsys, path, "--trust-pickle", "--format", "json")
    assert code == 0
    assert json.loads(out)["total_params"] == count
    assert "torch.load(weights_only=False) imports and may run code of what" in err
    assert "torch.nn.modules.rnn.GRU" in err  # what it trusts, listed by the safe reader


class Payload:
    """Unpickling this calls ``call(*args)``: with a marker path in the arguments, proof that code ran."""

    def __init__(self, call: object, *args: object) -> None:
        self.call, self.args = call, args

    def __reduce__(self):
        return (self.call, self.args)


def hostile_payloads(marker: Path) -> dict[str, object]:
    import os
    import subprocess

    return {
        "os.system": Payload(os.system, f"touch {marker}"),
        "eval": Payload(eval, f"open({str(marker)!r}, 'w')"),
        "exec": Payload(exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": Payload(subprocess.Popen, ["touch", str(marker)]),
        "open": Payload(open, str(marker), "w"),
    }


def getattr_chain(marker: Path) -> bytes:
    """getattr(__import__('os'), 'system')('touch MARKER'), as protocol-0 pickle opcodes."""
    return (
        b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR(S'touch "
        + str(marker).encode()
        + b"'\ntR."
    )


@pytest.mark.parametrize("suffix", [".pt", ".pkl", ".ckpt", ".bin", ""])
def test_item7_a_pickle_that_carries_code_is_never_run(tmp_path: Path, capsys, suffix: str):
    marker = tmp_path / "PWNED"
    for what, payload in hostile_payloads(marker).items():
        beside = tmp_path / f"beside-{what}{suffix}"  # a healthy state dict with a payload beside it
        torch.save({"weight": torch.zeros(2), "x": payload}, beside)
        alone = tmp_path / f"alone-{what}{suffix}"
        with alone.open("wb") as fh:
            pickle.dump({"x": payload}, fh)
        assert not marker.exists()
        code, out, err = run(capsys, beside, "--format", "json")
        assert code == 0 and no_traceback(err) and not marker.exists()
        data = json.loads(out)
        assert data["total_params"] == 2
        assert any("1 state dict entries are not tensors and are not counted: x" in n for n in data["notes"])
        code, out, err = run(capsys, alone)
        assert (code, out) == (2, "") and "torchlstm-params: error:" in err and no_traceback(err)
        assert not marker.exists()
    chain = tmp_path / f"chain{suffix}"
    chain.write_bytes(getattr_chain(marker))
    code, out, err = run(capsys, chain)
    assert (code, out) == (2, "") and no_traceback(err) and "not a state dict of tensors or a module" in err
    assert not marker.exists()


def safetensors_bytes(header: dict[str, object], data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.pt", b"", "is empty (0 bytes), not a checkpoint"),
        ("truncated.pt", None, "cannot be read safely: not a readable torch zip archive (truncated or corrupt?)"),
        ("notes.pt", b"just some text, not a checkpoint\n", "cannot be read safely"),
        ("list.pt", "list", "holds a list, not a state dict of tensors or a module"),
        ("huge.safetensors", struct.pack("<Q", 10**15) + b"{}", "is not a valid safetensors file"),
        (
            "offsets.safetensors",
            safetensors_bytes({"w": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 4 * 10**10]}}),
            "is not a valid safetensors file",
        ),
        ("garbage.safetensors", b"\x01\x02\x03", "is not a valid safetensors file"),
        ("corrupt.pt", b"PK\x03\x04" + bytes(range(256)) * 4, "cannot be read safely"),
    ],
)
def test_bad_files_exit_2_with_one_clear_line(tmp_path: Path, capsys, name: str, content, message: str):
    path = tmp_path / name
    if content is None:
        torch.save(nn.LSTM(2, 2).state_dict(), path)
        path.write_bytes(path.read_bytes()[:200])
    elif content == "list":
        torch.save([torch.zeros(2)], path)
    else:
        path.write_bytes(content)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run(capsys, path)
    assert (code, out) == (2, "")
    assert message in err
    assert "Traceback" not in err and err.count("\n") <= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_missing_file_and_directory(tmp_path: Path, capsys):
    code, _, err = run(capsys, tmp_path / "nope.pt")
    assert code == 2 and f"no such file: {tmp_path / 'nope.pt'}" in err
    code, _, err = run(capsys, tmp_path, "--checkpoint")
    assert code == 2 and "is a directory, not a checkpoint file" in err


def test_output_formats_and_options(tmp_path: Path, capsys):
    path = tmp_path / "m.pt"
    torch.save(Speech().state_dict(), path)
    code, out, _ = run(capsys, path, "--format", "github", "--depth", "1")
    assert code == 0 and out.startswith("| Module")
    assert "decoder.0" not in out.split("\n\n")[0]  # module table cut at depth 1
    code, out, _ = run(capsys, path, "--format", "markdown", "--keras", "--explain")
    assert "|:" in out or "|-" in out
    assert "Derivations" in out and "Keras" in out
    code, out, _ = run(capsys, path, "--check")
    assert code == 0 and "Sanity check: passed" in out


def test_check_sets_the_exit_code(capsys):
    code, out, _ = run(capsys, "LSTM(3, 2, dropout=0.5)", "--check", "--strict")  # a warning fails under --strict
    assert code == 1
    assert "warning [RNN_DROPOUT_NO_EFFECT] (root): dropout=0.5 has no effect with num_layers=1" in out


def test_usage_errors(capsys, tmp_path: Path):
    code, _, err = run(capsys, "LSTM(2, 2)", "--trust-pickle")
    assert code == 2 and "--trust-pickle applies to a checkpoint, not to an expression" in err
    code, _, err = run(capsys, "LSTM(2, 2)", "--kwargs", "{}")
    assert code == 2 and "--kwargs applies to a factory" in err


def test_debug_shows_the_traceback(tmp_path: Path):
    from torchlstm_params.errors import CheckpointError

    with pytest.raises(CheckpointError, match="no such file"):
        main([str(tmp_path / "nope.pt"), "--debug"])


def test_cli_compute_memory_and_budget(capsys):
    code, out, _ = run(capsys, "GRU(10, 20)", "--batch", "2", "--seq-len", "3", "--optimizer", "sgd-momentum")
    assert code == 0
    assert cell(out, "Tokens", "(root)") == "6"
    n = 3 * 20 * 30 + 6 * 20
    assert f"optimizer state {4 * n:,} B" in out  # one momentum buffer, float32
    code, out, _ = run(capsys, "GRU(10, 20)", "--lengths", "3,2,1")
    assert code == 0 and cell(out, "Tokens", "(root)") == "6"
    code, out, _ = run(capsys, "LSTM(300)", "--budget", "3768320", "--format", "json")
    answer = json.loads(out)["budget"]
    assert {"num_layers": 2, "bidirectional": False, "hidden_size": 512, "params": 3_768_320, "difference": 0} in (
        answer["closest"]
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["GRU(2, 2)", "--lengths", "3,x"], "--lengths must be comma-separated integers >= 1, got '3,x'"),
        (["GRU(2, 2)", "--batch", "2"], "--batch needs --seq-len too"),
        (["GRU(2, 2)", "--budget", "1"], "budget 1 is below the smallest GRU"),
    ],
)
def test_cli_compute_errors(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert message in err


def test_checkpoint_with_a_batch_gives_saved_activations_and_says_what_it_assumed(tmp_path: Path, capsys):
    model = nn.Sequential(nn.Embedding(100, 16), nn.GRU(16, 32, num_layers=2)).to(torch.bfloat16)
    path = tmp_path / "gru.pt"
    torch.save(model.state_dict(), path)
    code, out, _ = run(capsys, path, "--batch", "4", "--seq-len", "10", "--format", "json")
    assert code == 0
    data = json.loads(out)
    (entry,) = data["recurrent"]
    # 40 tokens: 2 layers x 7 x 32 per token (GRU) + layer 1's 32-wide input, 2 bytes each (bfloat16)
    assert entry["saved"]["bytes"] == (2 * 40 * 7 * 32 + 40 * 32) * 2
    assert any("stores no dropout or batch_first" in note for note in data["notes"])


# --- read_checkpoint and build_model, called directly ---


def torch_settings(module: nn.Module) -> dict[str, object]:
    """A recurrent module's settings as torch stores them."""
    names = ("mode", "input_size", "hidden_size", "num_layers", "bias", "bidirectional", "proj_size")
    return {name: getattr(module, name) for name in names if hasattr(module, name)}


@pytest.mark.parametrize(("nesting", "found_under"), [(None, ""), ("state_dict", "state_dict"), ("model", "model")])
def test_read_checkpoint_gives_every_tensors_name_shape_and_dtype(tmp_path: Path, nesting, found_under):
    model = Speech()
    model.out.to(torch.bfloat16)
    state = model.state_dict()
    path = tmp_path / "speech.pt"
    torch.save(state if nesting is None else {nesting: state, "epoch": 3, "optimizer": {}}, path)
    checkpoint = read_checkpoint(path)
    assert (checkpoint.path, checkpoint.format, checkpoint.found_under, checkpoint.module) == (
        str(path),
        "torch.save",
        found_under,
        None,
    )
    assert {n: (m.shape, m.dtype) for n, m in checkpoint.tensors.items()} == {
        n: (tuple(t.shape), t.dtype) for n, t in state.items()
    }
    assert list(checkpoint.tensors) == list(state)  # the checkpoint's order


def test_read_checkpoint_finds_a_state_dict_nested_twice(tmp_path: Path):
    state = nn.GRU(2, 3).state_dict()
    torch.save({"model": {"state_dict": state}}, tmp_path / "nested.pt")
    checkpoint = read_checkpoint(tmp_path / "nested.pt")
    assert checkpoint.found_under == "model.state_dict"
    assert set(checkpoint.tensors) == set(state)


def test_read_checkpoint_tells_tied_tensors_by_their_storage(tmp_path: Path):
    model = nn.Sequential(nn.Embedding(50, 8), nn.LSTM(8, 8), nn.Linear(8, 50))
    model[2].weight = model[0].weight
    torch.save(model.state_dict(), tmp_path / "tied.pt")
    tensors = read_checkpoint(tmp_path / "tied.pt").tensors
    assert tensors["0.weight"].storage is not None
    assert tensors["0.weight"].storage == tensors["2.weight"].storage
    storages = [m.storage for n, m in tensors.items() if n != "2.weight"]
    assert len(set(storages)) == len(storages)  # every other tensor its own


def test_read_checkpoint_reads_a_safetensors_header(tmp_path: Path):
    model = Speech()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "speech.safetensors"))
    checkpoint = read_checkpoint(tmp_path / "speech.safetensors")
    assert (checkpoint.format, checkpoint.found_under, checkpoint.module) == ("safetensors", "", None)
    assert {n: (m.shape, m.dtype, m.storage) for n, m in checkpoint.tensors.items()} == {
        n: (tuple(t.shape), t.dtype, None) for n, t in state.items()
    }


def test_read_checkpoint_reads_a_pickled_module_safely_and_loads_it_only_when_trusted(tmp_path: Path):
    path = tmp_path / "whole.pt"
    torch.save(nn.GRU(3, 4), path)
    checkpoint = read_checkpoint(path)
    assert checkpoint.module is None and checkpoint.pickled is not None  # read, never loaded
    assert checkpoint.pickled.class_name == "torch.nn.modules.rnn.GRU"
    built = build_model(checkpoint)
    assert type(built.model) is nn.GRU and built.model.weight_ih_l0.is_meta
    assert torch_settings(built.model) == torch_settings(nn.GRU(3, 4))
    checkpoint = read_checkpoint(path, trust_pickle=True)
    assert isinstance(checkpoint.module, nn.GRU) and checkpoint.tensors == {}
    built = build_model(checkpoint)
    assert built.model is checkpoint.module and built.notes == ()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.pt", None, "no such file"),
        ("empty.pt", b"", "is empty (0 bytes), not a checkpoint"),
        ("notes.pt", b"just some text\n", "cannot be read safely"),
        ("garbage.safetensors", b"\x01\x02\x03", "is not a valid safetensors file"),
    ],
)
def test_read_checkpoint_raises_checkpoint_error(tmp_path: Path, name: str, content: bytes | None, message: str):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_build_model_rebuilds_every_tensor_on_meta_and_every_recurrent_module(tmp_path: Path):
    original = Speech()
    original.out.to(torch.float16)
    state = original.state_dict()
    torch.save(state, tmp_path / "speech.pt")
    built = build_model(read_checkpoint(tmp_path / "speech.pt"))
    model, notes = built.model, built.notes
    rebuilt = model.state_dict()
    assert list(rebuilt) == list(state)
    for name, tensor in rebuilt.items():
        assert (tuple(tensor.shape), tensor.dtype, tensor.device.type) == (
            tuple(state[name].shape),
            state[name].dtype,
            "meta",
        )
    assert [n for n, _ in model.named_buffers()] == [n for n, _ in original.named_buffers()]
    for path in ("encoder", "gru", "decoder.0", "decoder.1"):
        theirs, ours = original.get_submodule(path), model.get_submodule(path)
        assert type(ours) is type(theirs)
        assert torch_settings(ours) == torch_settings(theirs)
    rnn = model.get_submodule("rnn")
    assert type(rnn) is nn.RNN and rnn.mode == "RNN_TANH"  # relu cannot be told from shapes
    assert "a plain RNN's tanh or relu cannot be told apart from shapes (same count), shown as tanh: rnn (RNN)" in notes
    assert {n: p.requires_grad for n, p in model.named_parameters()} == {
        n: True for n, _ in original.named_parameters()
    }
    assert summarize(model).total_params == numel(original)


def test_build_model_keeps_a_tie_as_one_parameter(tmp_path: Path):
    original = nn.Sequential(nn.Embedding(50, 8), nn.LSTM(8, 8), nn.Linear(8, 50))
    original[2].weight = original[0].weight
    torch.save(original.state_dict(), tmp_path / "tied.pt")
    model = build_model(read_checkpoint(tmp_path / "tied.pt")).model
    assert model.get_submodule("2").weight is model.get_submodule("0").weight
    assert numel(model) == numel(original)


def test_build_model_notes_recurrent_tensors_too_inconsistent_to_read(tmp_path: Path):
    state = nn.GRU(4, 3).state_dict()
    state["weight_hh_l0"] = torch.zeros(9, 3)
    state["bias_ih_l0"] = torch.zeros(5)  # a GRU's biases are 3·hidden_size
    state["weight_ih_l0"] = torch.zeros(9, 0)  # input_size 0: no torch module has it
    torch.save({"encoder." + k: v for k, v in state.items()}, tmp_path / "odd.pt")
    built = build_model(read_checkpoint(tmp_path / "odd.pt"))
    model = built.model
    encoder = model.get_submodule("encoder")
    assert type(encoder) is nn.Module  # not rebuilt as a GRU
    assert [n for n, _ in encoder.named_parameters()] == list(state)  # every tensor is still counted
    (note,) = [n for n in built.notes if n.startswith("encoder:")]
    assert "tensors named like a torch recurrent module's" in note and "weight_ih_l0 is empty" in note
    assert [(p.code, p.path) for p in built.problems] == [("RNN_UNRECOGNISED", "encoder")]
    assert summarize(model).total_params == sum(t.numel() for t in state.values())


# --- issue 15: real checkpoint files -------------------------------------------------------------


def no_traceback(err: str) -> bool:
    return "Traceback" not in err


class ResLSTMCell(nn.Module):
    """The tensor layout of neuralforecast's DilatedRNN ResLSTMCell (neuralforecast/models/dilated_rnn.py):
    ``weight_ih`` (3h, h) and ``weight_hh`` (h, h) beside its own gates, and its sizes kept as buffers
    named ``input_size``/``hidden_size``, like a torch cell's attributes."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        h = hidden_size
        self.register_buffer("input_size", torch.tensor([float(input_size)]))
        self.register_buffer("hidden_size", torch.tensor([float(h)]))
        self.weight_ii = nn.Parameter(torch.randn(3 * h, input_size))
        self.weight_ic = nn.Parameter(torch.randn(3 * h, h))
        self.weight_ih = nn.Parameter(torch.randn(3 * h, h))
        self.bias_ii = nn.Parameter(torch.randn(3 * h))
        self.bias_ic = nn.Parameter(torch.randn(3 * h))
        self.bias_ih = nn.Parameter(torch.randn(3 * h))
        self.weight_hh = nn.Parameter(torch.randn(h, h))
        self.bias_hh = nn.Parameter(torch.randn(h))
        self.weight_ir = nn.Parameter(torch.randn(h, input_size))


class FusedBiasCell(nn.Module):
    """A cell with one bias vector: the tensor named ``bias`` clashes with a torch cell's ``bias`` flag."""

    def __init__(self) -> None:
        super().__init__()
        self.weight_ih = nn.Parameter(torch.zeros(80, 10))
        self.weight_hh = nn.Parameter(torch.zeros(80, 20))
        self.bias = nn.Parameter(torch.zeros(80))


def test_item1_a_tensor_named_like_a_torch_attribute_is_read_not_a_crash(tmp_path: Path, capsys):
    model = nn.Sequential(FusedBiasCell(), nn.Linear(20, 3))
    path = tmp_path / "fused.pt"
    torch.save(model.state_dict(), path)
    code, out, err = run(capsys, path, "--format", "json")
    assert code == 0 and no_traceback(err)
    data = json.loads(out)
    assert data["total_params"] == sum(p.numel() for p in model.parameters())
    (entry,) = data["recurrent"]  # weight_ih/weight_hh fit LSTMCell(10, 20, bias=False) and nothing else
    assert (entry["name"], entry["kind"], entry["input_size"], entry["hidden_size"], entry["bias"]) == (
        "0",
        "LSTMCell",
        10,
        20,
        False,
    )
    assert entry["status"] == "explained"  # the lone bias is an extra parameter, as for a live module
    assert "extra parameter bias (80,)" in entry["explanations"][0]["message"]


def test_item2_neuralforecasts_res_lstm_cell_is_recognised_not_taken_for_torchs(tmp_path: Path, capsys):
    # Its weight_ih (3h, h) and weight_hh (h, h) are named like a torch cell's; its weight_ii/weight_ic/
    # weight_ir say what it is (thirdparty.forecast), and its sizes are known to be buffers.
    model = nn.ModuleDict({"cells": nn.ModuleList([ResLSTMCell(5, 20), nn.LSTMCell(20, 20)])})
    path = tmp_path / "dilated.pt"
    torch.save(model.state_dict(), path)
    code, out, err = run(capsys, path)
    assert code == 0 and no_traceback(err)  # a healthy checkpoint: no MISMATCH, exit 0
    assert "MISMATCH" not in out
    assert "fit no torch LSTM/GRU/RNN setting" not in out
    code, out, _ = run(capsys, path, "--format", "json")
    data = json.loads(out)
    recurrent = [(e["name"], e["kind"], e["status"]) for e in data["recurrent"]]
    assert recurrent == [("cells.0", "ResLSTMCell", "ok"), ("cells.1", "LSTMCell", "ok")]
    assert data["total_params"] == sum(p.numel() for p in model.parameters())
    assert {"cells.0.input_size", "cells.0.hidden_size"} <= set(data["buffers_inferred"])
    code, out, _ = run(capsys, path, "--check")
    assert code == 0 and "RNN_UNRECOGNISED" not in out


def test_item3_a_deleted_tensor_leaves_the_module_recognised_and_missing(tmp_path: Path, capsys):
    state = nn.LSTM(10, 20, num_layers=2).state_dict()
    del state["weight_hh_l0"]
    path = tmp_path / "deleted.pt"
    torch.save(state, path)
    code, out, err = run(capsys, path, "--check")
    assert code == 1 and no_traceback(err)
    assert "[RNN_TENSOR_MISSING] (root): weight_hh_l0: missing, expected shape (80, 20)" in out
    code, out, _ = run(capsys, path, "--format", "json")
    (entry,) = json.loads(out)["recurrent"]
    assert (entry["kind"], entry["num_layers"], entry["status"]) == ("LSTM", 2, "mismatch")


def test_item3_a_deleted_tensor_that_leaves_the_kind_open_is_reported_missing(tmp_path: Path, capsys):
    state = nn.LSTM(10, 20).state_dict()
    del state["weight_hh_l0"]  # left: (80, 10) and two (80,) biases: LSTM(10, 20) or RNN(10, 80)
    path = tmp_path / "deleted1.pt"
    torch.save(state, path)
    code, out, err = run(capsys, path)
    assert code == 1 and no_traceback(err)
    assert "weight_hh_l0 missing; the tensors present fit LSTM(10, 20) or RNN(10, 80)" in out
    code, out, _ = run(capsys, path, "--check")
    assert "[RNN_TENSOR_MISSING] (root): weight_hh_l0 missing" in out and "Sanity check: passed" not in out


def test_item3_parametrized_weight_norm_originals_are_explained(tmp_path: Path, capsys):
    from torch.nn.utils.parametrizations import weight_norm

    model = nn.Sequential(nn.Embedding(30, 10), nn.LSTM(10, 20, num_layers=2))
    weight_norm(model[1], "weight_hh_l0")
    path = tmp_path / "parametrized.pt"
    torch.save(model.state_dict(), path)
    assert "1.parametrizations.weight_hh_l0.original1" in model.state_dict()
    code, out, err = run(capsys, path, "--format", "json", "--check")
    assert code == 0 and no_traceback(err)
    data = json.loads(out)
    assert data["total_params"] == sum(p.numel() for p in model.parameters())
    (entry,) = data["recurrent"]
    assert (entry["name"], entry["kind"], entry["num_layers"], entry["status"]) == ("1", "LSTM", 2, "explained")
    assert entry["formula_params"] == sum(p.numel() for p in nn.LSTM(10, 20, num_layers=2).parameters())
    (why,) = entry["explanations"]
    assert why["kind"] == "parametrized" and why["delta"] == 80  # g: one scale per row of weight_hh_l0 (80, 20)
    assert data["check"]["problems"] == [] and data["check"]["status"] == "passed"


@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning")
def test_item3_legacy_weight_norm_originals_are_explained(tmp_path: Path, capsys):
    model = nn.Sequential(nn.GRU(10, 20))
    torch.nn.utils.weight_norm(model[0], "weight_hh_l0")
    path = tmp_path / "legacy.pt"
    torch.save(model.state_dict(), path)
    assert "0.weight_hh_l0_g" in model.state_dict()
    code, out, err = run(capsys, path, "--format", "json", "--check")
    assert code == 0 and no_traceback(err)
    data = json.loads(out)
    assert data["total_params"] == sum(p.numel() for p in model.parameters())
    (entry,) = data["recurrent"]
    assert (entry["kind"], entry["status"]) == ("GRU", "explained")
    assert entry["explanations"][0]["kind"] == "weight_norm"


def test_item4_an_existing_file_with_a_parenthesis_is_a_file(tmp_path: Path, capsys, monkeypatch):
    torch.save(nn.GRU(3, 4).state_dict(), tmp_path / "LSTM_FCN (1).pt")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "LSTM_FCN (1).pt", "--format", "json")
    assert code == 0 and no_traceback(err)
    assert json.loads(out)["total_params"] == sum(p.numel() for p in nn.GRU(3, 4).parameters())


class Masked(nn.Module):
    """Buffers as real models register them: dropout masks (speechbrain LiGRU's drop_masks), a float
    attention mask (neuralforecast TFT's _mask), position ids (int64), a bool mask, rotary inv_freq."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(8, 16)
        self.norm = nn.BatchNorm1d(16)
        self.register_buffer("drop_masks", torch.ones(4, 16, 16))
        self.register_buffer("_mask", torch.ones(36, 36))
        self.register_buffer("position_ids", torch.arange(12))
        self.register_buffer("causal", torch.ones(4, 4, dtype=torch.bool))
        self.register_buffer("inv_freq", torch.ones(8))
        self.head = nn.Linear(16, 2)


def test_item5_buffers_are_inferred_said_and_overridable(tmp_path: Path, capsys):
    model = Masked()
    path = tmp_path / "masked.pt"
    torch.save(model.state_dict(), path)
    live_params = sum(p.numel() for p in model.parameters())
    live_buffers = list(dict(model.named_buffers()))
    code, out, err = run(capsys, path, "--format", "json")
    assert code == 0 and no_traceback(err)
    data = json.loads(out)
    assert data["total_params"] == live_params
    assert data["buffer_count"] == len(live_buffers)
    assert data["buffer_elements"] == sum(b.numel() for b in model.buffers())
    assert sorted(data["buffers_inferred"]) == sorted(live_buffers)
    assert data["trainable_params"] is None and data["non_trainable_params"] is None
    assert all(row["trainable_params"] is None for row in data["rows"])
    assert any("a state dict does not record which tensors are buffers" in n for n in data["notes"])
    code, out, _ = run(capsys, path)
    assert "Trainable params: not recorded" in out
    assert "not recorded" in out.splitlines()[2]  # the Trainable column of the root row
    assert "drop_masks" in out and "_mask" in out  # the note lists the tensors taken as buffers
    # --buffers replaces the conventional names (integer and bool tensors stay buffers)
    code, out, _ = run(capsys, path, "--format", "json", "--buffers", "norm\\.running_")
    data = json.loads(out)
    floats_kept = sum(model.get_buffer(n).numel() for n in ("drop_masks", "_mask", "inv_freq"))
    assert data["total_params"] == live_params + floats_kept
    assert sorted(data["buffers_inferred"]) == sorted(
        ["norm.running_mean", "norm.running_var", "norm.num_batches_tracked", "position_ids", "causal"]
    )
    code, _, err = run(capsys, path, "--buffers", "(")
    assert code == 2 and "--buffers '(' is not a regular expression" in err and no_traceback(err)


@pytest.mark.filterwarnings(
    "ignore:.*quantize.*deprecated:DeprecationWarning",
    "ignore:.*quantized tensor creation functions.*deprecated:UserWarning",
    "ignore:.*torch.ao.quantization is deprecated:DeprecationWarning",
    "ignore:TypedStorage is deprecated:UserWarning",  # torch.load of packed quantized weights
)
def test_item6_a_pickled_quantized_model_shows_its_logical_total(tmp_path: Path, capsys):
    float_model = nn.Sequential(nn.Linear(4, 8), nn.LSTM(8, 8), nn.Linear(8, 3))
    quantized = torch.ao.quantization.quantize_dynamic(float_model, {nn.LSTM, nn.Linear})
    path = tmp_path / "quantized.pt"
    torch.save(quantized, path)
    code, out, err = run(capsys, path, "--trust-pickle")
    assert code == 0 and no_traceback(err)
    assert "torch.load(weights_only=False) imports and may run code of what" in err  # says what it trusts
    assert "torch.ao.nn.quantized.dynamic.modules.rnn.LSTM" in err
    assert "Total params: 0 (what parameters() yields" in out
    assert f"Logical params: {sum(p.numel() for p in float_model.parameters()):,}" in out
    # Read without running it, the packed weights cannot be unpacked: said, with the LSTM's formula count.
    code, out, err = run(capsys, path)
    assert code == 0 and err == ""
    lstm = sum(p.numel() for p in float_model[1].parameters())
    assert "1 (torch.ao.nn.quantized.dynamic.modules.rnn.LSTM): quantized weights are packed" in out
    assert f"its settings' formula says {lstm:,} parameters (--trust-pickle counts them)" in out
    assert "0 (torch.ao.nn.quantized.dynamic.modules.linear.Linear): quantized weights are packed" in out


def test_item8_safetensors_rows_follow_storage_order_and_the_tanh_note_names_the_module(tmp_path: Path, capsys):
    from safetensors import safe_open

    model = nn.Sequential()
    model.add_module("zeta", nn.RNN(4, 4))
    model.add_module("alpha", nn.Embedding(10, 4, dtype=torch.float64))  # safetensors stores F64 first
    model.add_module("mid", nn.RNNCell(4, 3))
    path = tmp_path / "order.safetensors"
    save_file(model.state_dict(), str(path))
    with safe_open(str(path), framework="pt") as handle:
        alphabetical = [k.split(".")[0] for k in handle.keys()]  # noqa: SIM118
    assert alphabetical[0] == "alpha" and alphabetical[-1] == "zeta"
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
    by_offset = sorted((v["data_offsets"][0], k) for k, v in header.items() if k != "__metadata__")
    storage_order = list(dict.fromkeys(k.split(".")[0] for _, k in by_offset))
    code, out, err = run(capsys, path, "--format", "json")
    assert code == 0 and no_traceback(err)
    data = json.loads(out)
    assert [row["name"] for row in data["rows"][1:]] == storage_order
    (note,) = [n for n in data["notes"] if "tanh or relu" in n]
    assert note.endswith("shown as tanh: zeta (RNN), mid (RNNCell)") or note.endswith(
        "shown as tanh: mid (RNNCell), zeta (RNN)"
    )


def test_item9_a_meta_device_state_dict_is_not_tied_by_address(tmp_path: Path, capsys):
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8), nn.LSTM(8, 8), nn.LSTM(8, 8))
    path = tmp_path / "meta.pt"
    torch.save(model.state_dict(), path)
    code, out, err = run(capsys, path, "--format", "json", "--check")
    assert code == 0 and no_traceback(err)
    data = json.loads(out)
    assert data["total_params"] == sum(p.numel() for p in model.parameters()) == 1296
    assert data["shared"] == []
    assert any("saved from the meta device" in n for n in data["notes"])


def test_item9_a_huge_layer_number_is_answered_at_once(tmp_path: Path):
    import subprocess
    import sys

    from torchlstm_params import summarize
    from torchlstm_params.checkpoint import build_model

    path = tmp_path / "tiny.pt"
    state = {"weight_ih_l0": (8, 3), "weight_hh_l0": (8, 2), "weight_ih_l99999999": (8, 2)}
    torch.save({name: torch.zeros(shape) for name, shape in state.items()}, path)
    assert path.stat().st_size < 3000
    # First the command line, in a process of its own (a build sized by the layer number never ends).
    import torchlstm_params

    done = subprocess.run(
        [sys.executable, "-m", "torchlstm_params", str(path), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(torchlstm_params.__file__).parents[1],  # this checkout's package
    )
    assert done.returncode == 1 and no_traceback(done.stderr)
    assert "[RNN_TENSOR_UNEXPECTED] (root): weight_ih_l99999999" in done.stdout
    checkpoint = read_checkpoint(path)
    with within(10):  # a guard, not a timing: a build sized by the layer number never ends
        built = build_model(checkpoint)
        report = summarize(built.model)
    (entry,) = report.recurrent
    assert entry.spec.num_layers == 1 and entry.status == "mismatch"
    assert [p.code for p in built.problems] == ["RNN_TENSOR_MISSING"]
    assert "no tensors for layer(s) 1 to 99,999,998" in built.problems[0].message


@pytest.mark.parametrize(
    ("state", "why"),
    [
        ({"weight_ih_l0": (40, 10), "weight_hh_l0": (40, 20)}, "closest is LSTM(10, 20, bias=False)"),
        (
            {"weight_ih_l0": (80, 10), "weight_hh_l0": (80, 20), "weight_hr_l0": (20, 20)},
            "proj_size has to be smaller than hidden_size",
        ),
        ({"weight_ih_l0": (80, 10), "weight_hh_l0": (80,)}, "weight_hh_l0 is 1-D"),
    ],
    ids=["two-gate-groups", "proj-not-below-hidden", "one-dimensional-weight_hh"],
)
def test_item9_recurrent_names_no_torch_setting_produces_never_pass_the_check(tmp_path: Path, capsys, state, why):
    path = tmp_path / "impossible.pt"
    torch.save({f"rnn.{name}": torch.zeros(shape) for name, shape in state.items()}, path)
    code, out, err = run(capsys, path, "--check")
    assert code == 1 and no_traceback(err)
    assert "Sanity check: passed" not in out
    assert "[RNN_UNRECOGNISED] rnn: tensors named like a torch recurrent module's" in out and why in out


@pytest.mark.parametrize(
    "state",
    [
        {"training": (3,), "forward.weight": (2, 2), "a": (1,), "a.b": (2,)},
        {"": (4,), "a..b": (5,), "x.": (2,)},
        {"lstm.weight_ih_l0": (8, 3), "lstm.weight_hh_l0": (8, 2), "lstm.bias": (8,), "lstm.mode": (1,)},
        {"cell.weight_ih": (8, 3), "cell.weight_hh": (8, 2), "cell.input_size": (1,), "cell.hidden_size": (1,)},
        {"_parameters": (2,), "_modules.x": (3,), "__dict__": (1,)},
    ],
    ids=["module-attributes", "empty-parts", "rnn-attributes", "cell-attributes", "module-internals"],
)
def test_item9_keys_that_clash_with_module_attributes_are_read(tmp_path: Path, capsys, state):
    path = tmp_path / "odd.pt"
    torch.save({name: torch.zeros(shape) for name, shape in state.items()}, path)
    code, out, err = run(capsys, path, "--format", "json")
    assert code in (0, 1) and no_traceback(err) and err == ""
    data = json.loads(out)
    expected = 0
    for shape in state.values():
        n = 1
        for d in shape:
            n *= d
        expected += n
    assert data["total_params"] == expected


def test_item9_unsigned_safetensors_dtypes_and_non_utf8_file_names(tmp_path: Path, capsys):
    import os

    tensors = {
        "u16": torch.zeros(2, dtype=torch.uint16),
        "u32": torch.zeros(3, dtype=torch.uint32),
        "u64": torch.zeros(1, dtype=torch.uint64),
        "w": torch.zeros(5),
    }
    written = tmp_path / "plain.safetensors"
    save_file(tensors, str(written))  # safetensors takes UTF-8 names only: rename it afterwards
    path = tmp_path / os.fsdecode(b"mod\xe8le.safetensors")  # latin-1 bytes: not UTF-8
    try:
        os.rename(written, path)
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system cannot name a file with non-UTF-8 bytes")
    code, out, err = run(capsys, path, "--format", "json")
    assert code == 0 and no_traceback(err)
    data = json.loads(out)
    assert data["total_params"] == 5
    assert (data["buffer_count"], data["buffer_bytes"]) == (3, 2 * 2 + 3 * 4 + 1 * 8)  # integers are buffers
    pt = tmp_path / os.fsdecode(b"mod\xe8le.pt")
    with pt.open("wb") as fh:
        torch.save(nn.LSTM(3, 2).state_dict(), fh)
    code, out, err = run(capsys, pt, "--format", "json")
    assert code == 0 and no_traceback(err)
    (entry,) = json.loads(out)["recurrent"]
    assert (entry["kind"], entry["input_size"], entry["hidden_size"], entry["status"]) == ("LSTM", 3, 2, "ok")


_HIDDEN = '''
import torch
from torch import nn


class Encoder(nn.LSTM):
    """A user subclass of nn.LSTM."""


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(30, 8)
        self.encoder = nn.LSTM(8, 16, num_layers=2, bidirectional=True, proj_size=4, batch_first=True)
        self.cell = nn.GRUCell(8, 5)
        self.sub = Encoder(8, 5)
        self.norm = nn.BatchNorm1d(8)
        self.register_buffer("drop_masks", torch.ones(3))  # a buffer whatever its name
        self.head = nn.Linear(8, 30)
        self.head.weight = self.embed.weight  # tied
        self.frozen = nn.Parameter(torch.zeros(4), requires_grad=False)
'''

_HIDDEN_WRITER = r"""
import json, sys, torch
from hidden_net_i15 import Net
model = Net()
torch.save(model, sys.argv[1])
torch.save({"model": model, "epoch": 3}, sys.argv[2], pickle_protocol=4)
print(json.dumps({
    "total": sum(p.numel() for p in model.parameters()),
    "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    "buffers": sum(1 for _ in model.buffers()),
    "rows": [[n, type(m).__name__] for n, m in model.named_modules()],
}))
"""


def test_item7_a_whole_model_pickle_of_a_class_not_importable_here(tmp_path: Path, capsys):
    import importlib.util
    import os
    import subprocess
    import sys

    import torchlstm_params

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "hidden_net_i15.py").write_text(_HIDDEN)
    root = Path(torchlstm_params.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "src"), str(root)])}
    whole, wrapped = tmp_path / "net.pt", tmp_path / "wrapped.pt"
    done = subprocess.run(
        [sys.executable, "-c", _HIDDEN_WRITER, str(whole), str(wrapped)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    truth = json.loads(done.stdout.strip().splitlines()[-1])
    assert importlib.util.find_spec("hidden_net_i15") is None
    for path in (whole, wrapped):
        code, out, err = run(capsys, path, "--format", "json", "--check")
        assert code == 0 and no_traceback(err), out + err
        data = json.loads(out)
        assert "hidden_net_i15" not in sys.modules
        assert (data["total_params"], data["trainable_params"]) == (truth["total"], truth["trainable"])
        assert data["buffer_count"] == truth["buffers"]  # the file's own split: drop_masks and BatchNorm's three
        assert [[r["name"], r["type"]] for r in data["rows"]] == truth["rows"]
        kinds = {e["name"]: (e["kind"], e["status"]) for e in data["recurrent"]}
        assert kinds == {"encoder": ("LSTM", "ok"), "cell": ("GRUCell", "ok"), "sub": ("LSTM", "ok")}
        encoder = next(e for e in data["recurrent"] if e["name"] == "encoder")
        assert (encoder["proj_size"], encoder["batch_first"], encoder["num_layers"]) == (4, True, 2)
        assert data["shared"][0]["names"] == ["embed.weight", "head.weight"]
        assert "buffers_inferred" not in data  # nothing inferred: the pickle records it


_SCRIPT_WRITER = r"""
import json, sys, warnings
import torch
from torch import nn
warnings.simplefilter("ignore")  # torch 2.13 deprecates TorchScript; its archives are still on disk


class Scriptable(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(12, 6)
        self.encoder = nn.LSTM(6, 10, num_layers=2, proj_size=3)
        self.cell = nn.GRUCell(3, 4)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.encoder(self.embed(tokens))
        return self.cell(out[-1])


model = Scriptable()
torch.jit.save(torch.jit.script(model), sys.argv[1])
print(json.dumps(sum(p.numel() for p in model.parameters())))
"""


def test_item7_a_torchscript_archive_is_read_as_such(tmp_path: Path, capsys):
    import subprocess
    import sys

    archive, writer = tmp_path / "scripted.pt", tmp_path / "write_archive.py"
    writer.write_text(_SCRIPT_WRITER)  # torch.jit.script reads the class's source from a file
    # Written in a process of its own: TorchScript renames classes it compiles twice in one process.
    done = subprocess.run(
        [sys.executable, str(writer), str(archive)], capture_output=True, text=True, timeout=300, check=True
    )
    total = json.loads(done.stdout.strip().splitlines()[-1])
    code, out, err = run(capsys, archive, "--format", "json")
    assert code == 0 and no_traceback(err)
    data = json.loads(out)
    assert data["total_params"] == total
    assert [(e["name"], e["kind"], e["proj_size"], e["status"]) for e in data["recurrent"]] == [
        ("encoder", "LSTM", 3, "ok"),
        ("cell", "GRUCell", 0, "ok"),
    ]


class Embeddings:
    """An object flair pickles beside its weights (its class is never imported by the reader)."""

    def __init__(self) -> None:
        self.name = "glove"
        self.vocabulary = {"a": 0, "b": 1}


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore:.*LeafSpec.*:FutureWarning")
def test_item7_training_checkpoints_with_optimizer_state_and_protocol_4(tmp_path: Path, capsys):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    class Forecaster(pl.LightningModule):  # darts-style: the optimizer class is a hyper-parameter
        def __init__(self, hidden: int = 6, optimizer_cls: type = torch.optim.Adam) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.rnn = nn.GRU(3, hidden, batch_first=True)
            self.head = nn.Linear(hidden, 1)

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            out, _ = self.rnn(x)
            return nn.functional.mse_loss(self.head(out[:, -1]), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return self.hparams["optimizer_cls"](self.parameters(), lr=0.01)

        def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
            return DataLoader(TensorDataset(torch.randn(8, 5, 3), torch.randn(8, 1)), batch_size=4)

    model = Forecaster()
    trainer = pl.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)  # what the CLI used to stop at: "needs torch.optim.adam.Adam"
    capsys.readouterr()  # what Lightning printed while training
    code, out, err = run(capsys, ckpt, "--format", "json")
    assert code == 0 and no_traceback(err)
    data = json.loads(out)
    assert data["total_params"] == sum(p.numel() for p in model.parameters())
    assert [(e["name"], e["kind"], e["hidden_size"]) for e in data["recurrent"]] == [("rnn", "GRU", 6)]
    assert "state dict found under 'state_dict'" in data["notes"][0]
    flair = tmp_path / "flair-model.pt"  # flair writes its models with pickle protocol 4
    torch.save({"state_dict": model.state_dict(), "embeddings": Embeddings()}, flair, pickle_protocol=4)
    code, out, err = run(capsys, flair, "--format", "json")
    assert code == 0 and no_traceback(err)
    assert json.loads(out)["total_params"] == sum(p.numel() for p in model.parameters())
