"""detect(): settings read from real torch modules, the per-summary memo, scripted modules by qualified type."""

from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from tests.helpers import numel
from tests.strategies import CELL_KINDS, Config, configs
from torchlstm_params import InvalidSettingsError, Registry, summarize
from torchlstm_params.detect import Detected, Memo, detect, detect_all, scripted_kind
from torchlstm_params.walk import walk

# torch 2.13 deprecates torch.jit.script; scripting real modules is what these tests are about.
SCRIPTING = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def torch_settings(module: nn.Module, kind: str) -> dict[str, object]:
    """The settings as torch stores them on the module, read attribute by attribute."""
    if kind in CELL_KINDS:
        return {
            "kind": kind,
            "input_size": module.input_size,
            "hidden_size": module.hidden_size,
            "num_layers": 1,
            "bias": module.bias,
            "bidirectional": False,
            "proj_size": 0,
            "dropout": 0.0,
            "batch_first": False,
        }
    return {
        "kind": module.mode,
        "input_size": module.input_size,
        "hidden_size": module.hidden_size,
        "num_layers": module.num_layers,
        "bias": module.bias,
        "bidirectional": module.bidirectional,
        "proj_size": module.proj_size,
        "dropout": module.dropout,
        "batch_first": module.batch_first,
    }


def found_settings(detected: Detected) -> dict[str, object]:
    spec = detected.spec
    return {
        "kind": spec.kind,
        "input_size": spec.input_size,
        "hidden_size": spec.hidden_size,
        "num_layers": spec.num_layers,
        "bias": spec.bias,
        "bidirectional": spec.bidirectional,
        "proj_size": spec.proj_size,
        "dropout": detected.dropout,
        "batch_first": detected.batch_first,
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), st.sampled_from([0.0, 0.25, 1.0, 0]), st.booleans())
def test_settings_are_read_from_real_modules(config: Config, dropout: float, batch_first: bool):
    with torch.device("meta"):
        module = config.build()
    if config.kind not in CELL_KINDS:
        module.dropout, module.batch_first = dropout, batch_first  # type: ignore[assignment]  # read at every forward
    detected = detect(module)
    assert detected is not None
    assert found_settings(detected) == torch_settings(module, config.kind)
    assert (detected.origin, detected.packed, detected.tensors) == ("torch.nn", False, None)


def test_torch_stores_the_relu_kind_in_mode():
    assert detect(nn.RNN(2, 3, nonlinearity="relu")).spec.kind == "RNN_RELU"
    assert detect(nn.RNNCell(2, 3, nonlinearity="relu")).spec.kind == "RNNCell"


@pytest.mark.parametrize(
    "make", [lambda: nn.Linear(2, 2), lambda: nn.Sequential(nn.LSTM(2, 2)), lambda: nn.MultiheadAttention(8, 2)]
)
def test_modules_that_are_not_recurrent(make):
    assert detect(make()) is None  # a container of an LSTM is not itself one


def test_subclasses_are_found_by_isinstance():
    class MyEncoder(nn.LSTM):
        pass

    detected = detect(MyEncoder(3, 5, batch_first=True))
    assert detected is not None and detected.spec.kind == "LSTM" and detected.batch_first


def test_a_module_without_proj_size_reads_as_torch_defaults_it():
    gru = nn.GRU(2, 3)
    del gru.__dict__["proj_size"]  # modules pickled by torch < 1.8 have none; torch's forward defaults it to 0
    assert detect(gru).spec.proj_size == 0


# torch 2.13 deprecates torch.ao.quantization and warns about quantized tensor creation.
@pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor.*:UserWarning")
def test_detect_all_finds_what_detect_finds_module_by_module():
    registry = Registry()
    registry.register(nn.Linear, lambda m: {"kind": "RNNCell", "input_size": m.in_features, "hidden_size": 1})
    model = nn.Sequential(
        nn.LSTM(3, 4, num_layers=2),
        nn.Sequential(nn.GRUCell(3, 5), nn.Linear(3, 1)),
        torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.LSTM(3, 4)), {nn.LSTM}, dtype=torch.qint8),
        nn.ReLU(),
        nn.RNN(4, 4, nonlinearity="relu"),
        nn.LSTM(3, 4, num_layers=2),  # settings seen before: one validation for both
    )
    tree = walk(model)
    expected = {}
    for i, module in enumerate(tree.modules):  # one module at a time, no memo
        found = detect(module, tree.path(i), None, registry)
        if found is not None:
            expected[i] = found
    found_all = detect_all(tree.modules, registry, tree.path)
    assert found_all == expected
    assert [tree.path(i) for i in found_all] == ["0", "1.0", "1.1", "2.0", "4", "5"]
    assert found_all[tree.locate(["0"])["0"]] is found_all[tree.locate(["5"])["5"]]


def test_detect_all_names_the_module_whose_settings_are_impossible():
    gru = nn.GRU(2, 3)
    model = nn.Sequential(nn.LSTM(2, 3), nn.Sequential(gru))
    gru.hidden_size = 0
    tree = walk(model)
    with pytest.raises(InvalidSettingsError, match=r"^1\.0 \(GRU\): hidden_size"):
        detect_all(tree.modules, Registry(), tree.path)
    registry = Registry()

    def failing(module: nn.Module) -> dict[str, object]:
        raise ZeroDivisionError("a settings function that fails")

    registry.register(nn.Sequential, failing)
    with pytest.raises(InvalidSettingsError, match=r"^\(root\) \(Sequential\): the settings function"):
        detect_all(tree.modules, registry, tree.path)


def test_impossible_settings_name_the_module_path():
    gru = nn.GRU(2, 3)
    gru.hidden_size = "3"  # type: ignore[assignment]
    with pytest.raises(InvalidSettingsError, match=r"^enc\.rnn \(GRU\): hidden_size should be of type int"):
        detect(gru, "enc.rnn")
    with pytest.raises(InvalidSettingsError, match=r"^\(root\) \(GRU\): hidden_size should be of type int"):
        detect(gru)


# --- the per-summary memo: keyed by class, values and their types ---


def test_the_memo_is_keyed_by_class_values_and_their_types():
    memo: Memo = {}
    first = detect(nn.GRU(2, 3), "a", memo)
    assert detect(nn.GRU(2, 3), "b", memo) is first  # a second module with these settings hits the entry
    assert len(memo) == 1

    class MyGRU(nn.GRU):
        pass

    assert detect(MyGRU(2, 3), "c", memo) == first  # another class: its own entry, the same settings
    assert len(memo) == 2
    assert detect(nn.GRU(2, 3, num_layers=2), "d", memo) != first
    assert len(memo) == 3


@pytest.mark.parametrize(
    ("field", "valid", "other"),
    [
        ("hidden_size", 3, 3.0),  # 3 == 3.0 and hash(3) == hash(3.0)
        ("num_layers", 1, True),  # 1 == True
        ("num_layers", 1, 1.0),
        ("input_size", 1, True),
        ("dropout", 1, True),  # an int dropout of 1 is valid; True is not a number to torch's docs
        ("dropout", 0, False),
    ],
)
def test_an_equal_value_of_another_type_never_hits_a_valid_entry(field: str, valid: object, other: object):
    memo: Memo = {}
    model = nn.GRU(1, 3, num_layers=2)
    setattr(model, field, valid)
    detected = detect(model, "valid", memo)
    assert detected is not None
    twin = nn.GRU(1, 3, num_layers=2)
    setattr(twin, field, other)
    assert valid == other and hash(valid) == hash(other)  # the trap: a plain dict would take them as one key
    with pytest.raises(InvalidSettingsError, match=rf"^twin \(GRU\): {field} should be"):
        detect(twin, "twin", memo)
    with pytest.raises(InvalidSettingsError):
        detect(twin, "twin")  # and without a memo, of course
    assert detect(model, "valid", memo) is detected


def test_an_unhashable_setting_is_validated_not_memoized():
    memo: Memo = {}
    gru = nn.GRU(2, 3)
    gru.hidden_size = [3]  # type: ignore[assignment]
    with pytest.raises(InvalidSettingsError, match=r"hidden_size should be of type int, got: list"):
        detect(gru, "x", memo)
    assert memo == {}


# --- scripted modules: recognised by TorchScript's qualified type ---


def scripted_type(module: Any) -> str:
    """TorchScript's qualified name of a scripted module's type."""
    return str(module._c._type().qualified_name())


class Stack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.LSTM(3, 4)
        self.b = nn.LSTM(4, 5, 2, bidirectional=True)  # another LSTM: TorchScript mangles its type's name
        self.cell = nn.GRUCell(3, 4)
        self.rcell = nn.RNNCell(3, 2, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.a(x)
        out, _ = self.b(out)
        return out.sum() + self.cell(x[0]).sum() + self.rcell(x[0]).sum()


@SCRIPTING
def test_scripted_torch_rnns_are_recognised_by_qualified_type():
    model = Stack()
    scripted = torch.jit.script(model)
    qualified = {name: scripted_type(child) for name, child in scripted.named_children()}
    # TorchScript keeps one type per class and process: the first LSTM scripted (here, or by an earlier
    # test) gets the plain name, every differently configured one a mangled name.
    assert re.fullmatch(r"__torch__\.torch\.nn\.modules\.rnn\.(___torch_mangle_\d+\.)?LSTM", qualified["a"])
    assert "___torch_mangle_" in qualified["b"] and qualified["b"].endswith(".LSTM")
    assert [scripted_kind(child) for _, child in scripted.named_children()] == ["LSTM", "LSTM", "GRUCell", "RNNCell"]
    found = {name: detect(child) for name, child in scripted.named_children()}
    for name, child in model.named_children():
        detected = found[name]
        assert detected is not None and detected.origin == "torch.jit.script"
        expected = torch_settings(child, "RNNCell" if name == "rcell" else "GRUCell" if name == "cell" else "LSTM")
        assert found_settings(detected) == expected
    report = summarize(scripted)
    assert [e.status for e in report.recurrent] == ["ok"] * 4
    assert report.total_params == numel(scripted) == numel(model)


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 5, num_layers=2)
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out)


def test_scripted_rnn_is_detected_from_original_name_and_settings():
    model = Tagger()
    with pytest.warns(DeprecationWarning, match="torch.jit.script` is deprecated"):
        scripted = torch.jit.script(model)
    report = summarize(scripted)
    (entry,) = report.recurrent
    assert (entry.name, entry.spec.kind, entry.spec.num_layers, entry.origin) == ("rnn", "GRU", 2, "torch.jit.script")
    assert entry.formula_params == numel(model.rnn) and entry.status == "ok"
    assert report.total_params == numel(scripted) == numel(model)


USER_GRU = '''
import torch
from torch import nn


class GRU(nn.Module):
    """A user's class that happens to be called GRU, with attributes named like torch's settings."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 4)
        self.mode = "GRU"
        self.input_size = 3
        self.hidden_size = 4
        self.num_layers = 1
        self.bias = True
        self.bidirectional = False
        self.proj_size = 0
        self.dropout = 0.0
        self.batch_first = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = GRU()
        self.real = nn.GRU(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.real(self.gru(x))
        return out
'''


@SCRIPTING
def test_a_scripted_user_class_named_gru_is_not_torchs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    source = tmp_path / "user_models_i12.py"  # a real file: torch.jit.script reads the class's source
    source.write_text(textwrap.dedent(USER_GRU), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("user_models_i12", source)
    assert spec is not None and spec.loader is not None
    user = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "user_models_i12", user)
    spec.loader.exec_module(user)
    scripted = torch.jit.script(user.Model())
    gru = scripted.gru
    assert gru.original_name == "GRU"  # what a short-name test would have taken for torch's GRU
    assert scripted_type(gru) == "__torch__.user_models_i12.GRU"
    assert scripted_kind(gru) is None
    assert detect(gru) is None
    assert scripted_kind(scripted.real) == "GRU"
    report = summarize(scripted)
    assert [(e.name, e.spec.kind, e.status) for e in report.recurrent] == [("real", "GRU", "ok")]
    assert report.total_params == numel(scripted) == 4 * 3 + 4 + 3 * 2 * (4 + 2) + 2 * 3 * 2


def test_containers_and_cells_stepped_in_a_loop():
    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cells = nn.ModuleList([nn.LSTMCell(4, 4), nn.LSTMCell(4, 4)])
            self.by_name = nn.ModuleDict({"gru": nn.GRU(4, 4), "rnn": nn.RNN(4, 4, nonlinearity="relu")})

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = [(torch.zeros(1, 4), torch.zeros(1, 4)) for _ in self.cells]
            for step in x:  # stepped in Python: still one row per cell
                for j, cell in enumerate(self.cells):
                    h[j] = cell(step, h[j])
                    step = h[j][0]
            return step

    model = Decoder()
    model(torch.zeros(5, 1, 4))
    report = summarize(model)
    assert [(e.name, e.spec.kind) for e in report.recurrent] == [
        ("cells.0", "LSTMCell"),
        ("cells.1", "LSTMCell"),
        ("by_name.gru", "GRU"),
        ("by_name.rnn", "RNN_RELU"),
    ]
    assert report.total_params == numel(model)
