"""The result types: frozen, built by keyword, JSON through to_dict, figures equal to torch's."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import pickle
import warnings
from typing import Any

import pytest
import torch
from torch import nn

from tests.helpers import lstm_count, numel
from torchlstm_params import (
    Compute,
    DtypeUsage,
    ModuleAlias,
    ModulePath,
    ModuleRow,
    ModuleRows,
    RecurrentEntry,
    Report,
    RNNSpec,
    SavedActivations,
    SharedTensor,
    StateMemory,
    summarize,
)
from torchlstm_params.formulas import SETTINGS, formula
from torchlstm_params.results import plain


class Everything(nn.Module):
    """Tied weights, an alias, a lazy layer, a frozen tensor, two dtypes, an explained and a packed entry."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 6)
        self.encoder = nn.LSTM(6, 8, num_layers=2, bidirectional=True, proj_size=4, batch_first=True, dropout=0.1)
        self.decoder = nn.GRUCell(8, 6)
        self.head = nn.Linear(6, 20)
        self.head.weight = self.embed.weight
        self.again = self.decoder
        self.lazy = nn.LazyLinear(3)
        self.fp16 = nn.RNN(4, 4).to(torch.float16)
        self.norm = nn.BatchNorm1d(6)
        nn.utils.parametrizations.weight_norm(self.fp16, "weight_hh_l0")
        self.embed.weight.requires_grad_(False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization's own deprecation notice
            self.packed = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.LSTM(3, 5)), {nn.LSTM})


@pytest.fixture(scope="module")
def report() -> Report:
    return summarize(Everything(), batch=2, seq_len=3)


def test_to_dict_survives_a_json_round_trip_unchanged(report: Report):
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data  # no tuples, no objects: plain JSON data all the way down
    assert set(data) == {f.name for f in dataclasses.fields(Report)} | {"matches", "logical_params"}
    assert [e["status"] for e in data["recurrent"]] == ["ok", "ok", "explained", "packed"]


def test_to_dict_holds_torchs_figures(report: Report):
    model = Everything()
    counted = [p for p in model.parameters() if not isinstance(p, nn.parameter.UninitializedParameter)]
    data = report.to_dict()
    assert data["total_params"] == sum(p.numel() for p in counted)
    assert data["trainable_params"] == sum(p.numel() for p in counted if p.requires_grad)
    assert data["uninitialized"] == ["lazy.weight", "lazy.bias"]
    assert data["shared"] == [{"names": ["embed.weight", "head.weight"], "numel": 120}]
    assert data["aliases"] == [{"path": "again", "same_as": "decoder"}]
    assert data["logical_params"] == data["total_params"] + lstm_count(3, 5)
    encoder = data["recurrent"][0]
    assert encoder["formula_params"] == numel(model.encoder) == lstm_count(6, 8, 2, bidirectional=True, proj=4)
    assert {k: encoder[k] for k in SETTINGS} == {
        "kind": "LSTM",
        "input_size": 6,
        "hidden_size": 8,
        "num_layers": 2,
        "bias": True,
        "bidirectional": True,
        "proj_size": 4,
        "dropout": 0.1,
        "batch_first": True,
    }
    rows = {row["name"]: row for row in data["rows"]}
    for name, module in model.named_modules():
        params = [p for p in module.parameters() if not isinstance(p, nn.parameter.UninitializedParameter)]
        assert rows[name]["params"] == sum(p.numel() for p in params), name


def test_recurrent_entry_is_a_frozen_slots_dataclass_built_by_keyword(report: Report):
    entry = report.recurrent[0]
    assert dataclasses.is_dataclass(entry) and tuple not in type(entry).__mro__
    with pytest.raises(TypeError):
        iter(entry)  # type: ignore[call-overload]  # no tuple behaviour: entry == tuple(entry) cannot hold
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.name = "other"  # type: ignore[misc]
    assert "__slots__" in vars(RecurrentEntry) and not hasattr(entry, "__dict__")
    fields = [f.name for f in dataclasses.fields(RecurrentEntry)]
    assert fields[:6] == ["name", "type", "spec", "dropout", "batch_first", "formula"]
    assert all(f.kw_only for f in dataclasses.fields(RecurrentEntry))
    args = {f: getattr(entry, f) for f in fields}
    positional: Any = RecurrentEntry
    with pytest.raises(TypeError):
        positional(*args.values())
    assert RecurrentEntry(**args) == entry
    assert not {"kind", "hidden_size", "num_layers", "breakdown", "derivation"} & set(fields)  # no pass-throughs


def test_settings_and_formula_params_read_the_spec_and_the_formula():
    entry = summarize(nn.GRU(3, 5, num_layers=2, batch_first=True)).recurrent[0]
    assert tuple(entry.settings) == SETTINGS
    module = nn.GRU(3, 5, num_layers=2, batch_first=True)
    assert entry.settings == {
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
    assert entry.formula_params == entry.formula.params == numel(module)
    assert entry.spec == RNNSpec("GRU", 3, 5, 2)


def test_an_entry_needs_only_its_settings_formula_and_count():
    spec = RNNSpec("LSTM", 3, 2)
    f = formula(spec)
    entry = RecurrentEntry(
        name="x", type="LSTM", spec=spec, dropout=0.0, batch_first=False, formula=f, tensor_params=f.params
    )
    assert (entry.status, entry.matches) == ("ok", True)
    assert entry.to_dict()["compute"] is None and entry.to_dict()["saved"] is None


@pytest.mark.parametrize("cls", [Report, RecurrentEntry, DtypeUsage, ModuleAlias, SharedTensor])
def test_result_types_are_frozen_slots_dataclasses(cls: type):
    assert dataclasses.is_dataclass(cls) and "__slots__" in vars(cls)
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_module_rows_are_named_tuples_and_turn_into_dicts(report: Report):
    row = report.rows[0]
    assert isinstance(row, ModuleRow) and isinstance(row, tuple)
    fields = row._asdict()
    spelled = {"name": str(fields.pop("path")), **fields}  # the link spelled out, in the name's place
    assert plain(row) == row.to_dict() == spelled == report.to_dict()["rows"][0]
    assert list(spelled) == ["name", "type", "depth", "params", "trainable_params", "uninitialized", "recurrent"]


def test_plain_turns_dataclasses_and_tuples_into_json_data():
    value = (SharedTensor(("a", "b"), None), [ModuleAlias("x", "y")], 3)
    assert plain(value) == [{"names": ["a", "b"], "numel": None}, [{"path": "x", "same_as": "y"}], 3]


def test_batch_figures_are_in_the_entries(report: Report):
    encoder = report.recurrent[0]
    assert isinstance(encoder.compute, Compute) and isinstance(encoder.state, StateMemory)
    assert isinstance(encoder.saved, SavedActivations)
    assert report.tokens == 6
    data = encoder.to_dict()
    assert data["state"]["bytes"] == encoder.state.bytes and data["saved"]["bytes"] == encoder.saved.bytes
    assert not math.isnan(data["dropout"])


def test_rows_spell_their_paths_from_links_and_to_dict_spells_them_whole():
    model = nn.Sequential(nn.ModuleDict({"enc": nn.Sequential(nn.LSTM(2, 3)), "head": nn.Linear(3, 1)}))
    report = summarize(model)
    named = [path for path, _ in model.named_modules()]
    assert [row.name for row in report.rows] == [str(row.path) for row in report.rows] == named
    assert [row.path.depth for row in report.rows] == [row.depth for row in report.rows]
    assert [r["name"] for r in report.to_dict()["rows"]] == named
    assert "path" not in report.to_dict()["rows"][0]
    assert summarize(model) == report  # equal reports, though their links are other objects


class _Seq2Seq(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.encoder = nn.LSTM(4, 6, num_layers=2, bidirectional=True)
        self.decoder = nn.ModuleDict({"cell": nn.GRUCell(12, 6), "heads": nn.ModuleList([nn.Linear(6, 3)])})
        self.norm = nn.Sequential(nn.LayerNorm(6), nn.Sequential(nn.Dropout(), nn.Identity()))


def test_module_paths_spell_torchs_names_and_compare_by_spelling():
    model = _Seq2Seq()
    report = summarize(model)
    named = [path for path, _ in model.named_modules()]
    paths = [row.path for row in report.rows]
    assert [str(p) for p in paths] == named
    assert [p.names() for p in paths] == [path.split(".") if path else [] for path in named]
    assert [p.depth for p in paths] == [row.depth for row in report.rows]
    again = [row.path for row in summarize(_Seq2Seq()).rows]  # other links, same spelling: equal, same hashes
    assert paths == again and all(a is not b for a, b in zip(paths, again, strict=True))
    assert [hash(a) for a in paths] == [hash(b) for b in again]
    for p, path in zip(paths, named, strict=True):
        assert p == path and path == p and hash(p) == hash(path)  # equal to its spelling as a str
    by_path: dict[object, str] = {paths[named.index("decoder")]: "x"}
    assert by_path.get("decoder") == "x"
    assert paths[1] != paths[2] and paths[1] != "embedx" and paths[1] != 1
    assert ModulePath.of(["a", "b"]) != ModulePath.of(["a", "c"]) != ModulePath.of(["a"])
    assert repr(ModulePath.of(["decoder", "cell"])) == "ModulePath('decoder.cell')"
    assert report.rows[named.index("decoder.heads.0")].path.parent is report.rows[named.index("decoder.heads")].path


def test_module_paths_pickle_without_recursing_per_level():
    deep = ModulePath.of(["0"] * 5_000)
    back = pickle.loads(pickle.dumps(deep))
    assert back == deep and back.depth == 5_000 and str(back) == ".".join(["0"] * 5_000)
    assert pickle.loads(pickle.dumps(ModulePath.root())) == ""


def test_module_rows_are_a_sequence_built_as_read():
    model = _Seq2Seq()
    report = summarize(model)
    rows = report.rows
    assert isinstance(rows, ModuleRows) and len(rows) == len(list(model.modules()))
    named = [path for path, _ in model.named_modules()]
    expected = [sum(p.numel() for p in m.parameters()) for _, m in model.named_modules()]  # torch's own
    assert [r.name for r in rows] == named and [r.params for r in rows] == expected
    assert rows[-1] == rows[len(rows) - 1] and rows[1:3] == (rows[1], rows[2]) and rows[::-1][0] == rows[-1]
    assert rows == tuple(rows) and rows == list(rows) and tuple(rows) == rows and rows != rows[1:]
    assert rows == summarize(_Seq2Seq()).rows and hash(rows) == hash(summarize(_Seq2Seq()).rows)
    assert rows.find("decoder.heads.0") == rows[named.index("decoder.heads.0")]
    assert rows.find("decoder.nope") is None and rows.find("") == rows[0]
    shallow = summarize(model, max_depth=1).rows
    assert [r.name for r in shallow] == [p for p in named if p.count(".") < 1]
    assert shallow.find("decoder") is not None and shallow.find("decoder.cell") is None  # below max_depth
    assert pickle.loads(pickle.dumps(rows)) == rows
    with pytest.raises(IndexError):
        rows[len(rows)]
    assert repr(rows) == f"<ModuleRows: {len(rows):,} rows>"
    assert rows.spelled() == named


def test_recurrent_entry_init_takes_exactly_its_fields_by_keyword():
    """RecurrentEntry writes its own __init__ (for speed): its signature is the fields', by keyword, with
    their defaults, and every field is set."""
    signature = inspect.signature(RecurrentEntry.__init__)
    params = list(signature.parameters.values())[1:]  # self
    fields = dataclasses.fields(RecurrentEntry)
    assert [p.name for p in params] == [f.name for f in fields]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    for p, f in zip(params, fields, strict=True):
        expected = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        assert p.default == expected, f.name
    spec = RNNSpec("GRU", 3, 4)
    values = {f.name: object() for f in fields} | {"spec": spec}
    entry = RecurrentEntry(**values)  # type: ignore[arg-type]
    assert all(getattr(entry, f.name) is values[f.name] for f in fields)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        RecurrentEntry("x")  # type: ignore[call-arg]
