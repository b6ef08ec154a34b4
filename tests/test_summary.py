"""summarize() on real torch models: totals, rows, sharing, depth, meta, lazy, mismatches."""

from __future__ import annotations

import copy
import functools
import gc
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.helpers import gc_samples, in_threads, numel
from torchlstm_params import InvalidSettingsError, NotAModuleError, Registry, TorchLstmParamsError, summarize
from torchlstm_params.formulas import RNNSpec


class Seq2Seq(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        self.encoder = nn.LSTM(16, 32, num_layers=2, bidirectional=True, proj_size=8)
        self.bridge = nn.Linear(16, 32)
        self.decoder = nn.GRUCell(16, 32)
        self.head = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 100))


def test_totals_rows_and_recurrent_entries_match_torch():
    model = Seq2Seq()
    report = summarize(model)
    assert report.total_params == numel(model)
    assert report.trainable_params == report.total_params
    assert report.non_trainable_params == 0
    assert report.model_type == "Seq2Seq"
    rows = {row.name: row for row in report.rows}
    for name, module in model.named_modules():
        assert rows[name].params == numel(module), name
        assert rows[name].type == type(module).__name__
        assert rows[name].depth == (0 if not name else name.count(".") + 1)
    assert [row.name for row in report.rows] == [name for name, _ in model.named_modules()]
    assert [e.name for e in report.recurrent] == ["encoder", "decoder"]
    enc, dec = report.recurrent
    assert tuple(
        enc.settings[k]
        for k in ("kind", "input_size", "hidden_size", "num_layers", "bidirectional", "proj_size", "bias")
    ) == (
        "LSTM",
        16,
        32,
        2,
        True,
        8,
        True,
    )
    assert enc.formula_params == enc.tensor_params == numel(model.encoder)
    assert enc.matches and enc.status == "ok" and enc.findings == ()
    assert len(enc.formula.layers) == 4
    assert [(b.layer, b.direction) for b in enc.formula.layers] == [
        (0, "forward"),
        (0, "reverse"),
        (1, "forward"),
        (1, "reverse"),
    ]
    # layer 0 forward: weight_ih (128,16) + weight_hh (128,8) + 2 biases (128,) + weight_hr (8,32)
    assert enc.formula.layers[0].params == 128 * 16 + 128 * 8 + 2 * 128 + 8 * 32
    assert enc.formula.keras_params is None  # projection has no Keras equivalent
    assert dec.spec.kind == "GRUCell" and dec.formula_params == numel(model.decoder)
    assert dec.formula.keras_params == 3 * (32 * (16 + 32) + 2 * 32)
    assert report.matches


def test_dtype_bytes_and_buffers_match_tensors():
    model = nn.Sequential(nn.LSTM(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2).to(torch.float16))
    report = summarize(model)
    by_dtype: dict[str, int] = {}
    for p in model.parameters():
        key = str(p.dtype).removeprefix("torch.")
        by_dtype[key] = by_dtype.get(key, 0) + p.numel() * p.element_size()
    assert report.bytes_by_dtype == by_dtype
    assert report.param_bytes == sum(by_dtype.values())
    buffers = list(model.buffers())
    assert report.buffer_count == len(buffers) == 3
    assert report.buffer_elements == sum(b.numel() for b in buffers)
    assert report.buffer_bytes == sum(b.numel() * b.element_size() for b in buffers)


def test_tied_weights_are_counted_once_and_named():
    class TiedLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(50, 12)
            self.rnn = nn.LSTM(12, 12)
            self.out = nn.Linear(12, 50)
            self.out.weight = self.embed.weight

    model = TiedLM()
    report = summarize(model)
    assert report.total_params == numel(model) == 600 + 4 * 12 * 24 + 8 * 12 + 50
    assert [s.names for s in report.shared] == [("embed.weight", "out.weight")]
    assert report.shared[0].numel == 600
    rows = {r.name: r for r in report.rows}
    assert rows["out"].params == numel(model.out) == 650
    assert rows[""].params == report.total_params


def test_module_registered_twice_is_visited_once():
    shared = nn.GRU(4, 4)
    model = nn.Module()
    model.a = nn.Sequential(shared, nn.Linear(4, 4))
    model.b = nn.Sequential(nn.Linear(4, 4), shared)
    report = summarize(model)
    assert report.total_params == numel(model)
    assert [(a.path, a.same_as) for a in report.aliases] == [("b.1", "a.0")]
    assert [e.name for e in report.recurrent] == ["a.0"]
    rows = {r.name: r for r in report.rows}
    assert rows["b"].params == numel(model.b)  # the alias still counts inside b
    assert rows["a"].params == numel(model.a)
    assert "b.1" not in rows


def test_cycle_of_registrations_terminates():
    outer = nn.Sequential(nn.LSTM(2, 3))
    inner = nn.Sequential(nn.Linear(3, 3))
    outer.add_module("inner", inner)
    inner.add_module("back", outer)  # outer -> inner -> outer
    report = summarize(outer)
    assert report.total_params == numel(outer)
    assert [(a.path, a.same_as) for a in report.aliases] == [("inner.back", "")]


def test_ten_thousand_deep_nesting():
    model: nn.Module = nn.LSTM(5, 7)
    for _ in range(10_000):
        model = nn.Sequential(model)
    with pytest.raises(RecursionError):
        sum(p.numel() for p in model.parameters())  # torch's own walk gives up
    report = summarize(model)
    assert report.total_params == 4 * 7 * (5 + 7) + 2 * 4 * 7
    (entry,) = report.recurrent
    assert entry.name == ".".join(["0"] * 10_000)
    assert len(report.rows) == 10_001
    assert summarize(model, max_depth=3).rows[-1].depth == 3


_DEEP_SCRIPT = """
import json, sys
from torch import nn
from torchlstm_params import check, summarize

def peak_mib():
    # This process's own peak (VmHWM); getrusage's ru_maxrss can carry the parent's across fork and exec.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) // 1024

model, depth = nn.LSTM(3, 4), 0
for target in (40_000, 100_000):
    while depth < target:  # built iteratively: torch's own named_modules would recurse
        model, depth = nn.Sequential(model), depth + 1
    report = check(model)
    text = str(report)  # the default rendering: modules down to depth 2, the LSTM, the check
    full = report.render(max_depth=None, fold=False)  # every module, one line each
    rows = report.rows
    print(json.dumps([target, peak_mib(), report.total_params, report.check.status, len(rows), rows[-1].depth,
                      len(rows[-1].name), report.recurrent[0].name == ".".join(["0"] * target), len(text),
                      max(map(len, text.splitlines())), full.count("Sequential"), len(full)]))
print(text)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)")
def test_memory_stays_linear_in_depth():
    """Rows hold path links, not dotted strings (every row of a 100,000-deep chain held its path: ~10 GB):
    40,000 levels summarize, check and render (by default, and every module) under 1 GB peak, and 100,000
    levels do too, in a fresh process."""
    root = Path(__file__).parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _DEEP_SCRIPT], capture_output=True, text=True, timeout=600, cwd=root, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    first, second, *text = done.stdout.splitlines()
    for line, depth in zip((first, second), (40_000, 100_000), strict=True):
        target, peak, total, status, rows, innermost, name_length, spelled, text_length, width, sequentials, full = (
            json.loads(line)
        )
        assert (target, total, status, rows, innermost) == (
            depth,
            4 * 4 * (3 + 4) + 2 * 4 * 4,
            "passed",
            depth + 1,
            depth,
        )
        assert name_length == 2 * depth - 1 and spelled  # the whole path is there when asked for
        assert text_length < 3_000 and width <= 120  # a few module lines, the LSTM's (path shortened), the check
        assert sequentials == depth and full < 200 * rows  # every module's line, paths shortened: linear in depth
        if depth == 40_000:
            assert peak < 1024, f"{peak} MiB peak at depth {depth}"
    assert "0.0.0.…(99,994 more).0.0.0  LSTM" in "\n".join(text)


def test_one_billion_parameter_meta_model_reads_no_data():
    with torch.device("meta"):
        model = nn.Sequential(nn.Embedding(32_000, 4096), nn.LSTM(4096, 4096, num_layers=7), nn.Linear(4096, 32_000))
    # by hand: embedding 32000*4096; each LSTM layer 4*4096*(4096+4096) + 2*4*4096; linear 4096*32000 + 32000
    expected = 32_000 * 4096 + 7 * (4 * 4096 * 8192 + 8 * 4096) + 4096 * 32_000 + 32_000
    assert expected > 1_000_000_000
    report = summarize(model)
    assert report.total_params == expected
    assert report.param_bytes == 4 * expected
    assert report.matches


def test_lazy_modules_are_reported_not_crashed():
    model = nn.Sequential(nn.LSTM(4, 6), nn.LazyLinear(3))
    report = summarize(model)
    assert report.uninitialized == ("1.weight", "1.bias")
    assert report.total_params == 4 * 6 * 10 + 8 * 6
    rows = {r.name: r for r in report.rows}
    assert rows["1"].uninitialized == 2 and rows["1"].params == 0
    assert rows[""].uninitialized == 2
    assert "2 (1.weight, 1.bias)" in str(report)


def test_frozen_parts_split_trainable_and_not():
    model = nn.Sequential(nn.Embedding(10, 4), nn.GRU(4, 4), nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)
    model[1].bias_hh_l0.requires_grad_(False)
    report = summarize(model)
    assert report.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert report.non_trainable_params == 40 + 12
    rows = {r.name: r for r in report.rows}
    assert rows["1"].trainable_params == numel(model[1]) - 12


def test_subclass_is_detected_by_isinstance():
    class MyEncoder(nn.LSTM):
        pass

    report = summarize(MyEncoder(3, 5, batch_first=True, dropout=0.0))
    (entry,) = report.recurrent
    assert (entry.type, entry.spec.kind, entry.batch_first) == ("MyEncoder", "LSTM", True)
    assert entry.matches


def test_wrong_shape_missing_and_unexpected_tensors_are_named():
    model = nn.Sequential(nn.LSTM(3, 4, num_layers=2))
    rnn = model[0]
    rnn.weight_hh_l1 = nn.Parameter(torch.zeros(16, 5))
    del rnn._parameters["bias_ih_l0"]
    rnn.register_parameter("weight_hr_l0", nn.Parameter(torch.zeros(4)))
    (entry,) = summarize(model).recurrent
    assert not entry.matches and entry.status == "mismatch"
    assert [(f.tensor, f.problem, f.expected_shape, f.found_shape) for f in entry.findings] == [
        ("bias_ih_l0", "missing", (16,), None),
        ("weight_hh_l1", "wrong_shape", (16, 4), (16, 5)),
        ("weight_hr_l0", "unexpected", None, (4,)),
    ]
    assert entry.tensor_params == numel(rnn)
    assert [f.message() for f in entry.findings] == [
        "bias_ih_l0: missing, expected shape (16,)",
        "weight_hh_l1: expected shape (16, 4), found (16, 5)",
        "weight_hr_l0: unexpected tensor of shape (4,), not in the formula",
    ]
    text = str(summarize(model))
    # formula by hand: 4·4·(3+4) + 2·4·4 + 4·4·(4+4) + 2·4·4 = 304; tensors: -16 (bias) +16 (wider) +4 (weight_hr_l0)
    assert "MISMATCH at '0' (LSTM): formula 304, tensors 308" in text
    assert "  - weight_hh_l1: expected shape (16, 4), found (16, 5)" in text


def test_impossible_settings_on_a_module_name_the_path():
    model = nn.Sequential(nn.Linear(2, 2), nn.GRU(2, 3))
    model[1].hidden_size = "3"  # type: ignore[assignment]
    with pytest.raises(InvalidSettingsError, match=r"^1 \(GRU\): hidden_size should be of type int, got: str \('3'\)$"):
        summarize(model)


@pytest.mark.parametrize("value", [3.0, True, [3]])
def test_settings_memo_tells_equal_values_of_other_types_apart(value):
    """Validated settings are memoized across calls; 3, 3.0 and True hash alike but only 3 is valid."""
    assert summarize(nn.GRU(2, 3)).recurrent[0].spec.hidden_size == 3  # memoizes the int settings
    gru = nn.GRU(2, 3)
    gru.hidden_size = value
    with pytest.raises(InvalidSettingsError, match=r"^\(root\) \(GRU\): hidden_size should be of type int"):
        summarize(gru)


@pytest.mark.parametrize(("field", "value"), [("hidden_size", 3.0), ("num_layers", True), ("dropout", True)])
def test_a_later_module_with_an_equal_value_of_another_type_is_not_taken_as_valid(field, value):
    """Within one summary too: the second GRU's 3.0 (or True) must not hit the first GRU's valid entry."""
    model = nn.Sequential(nn.GRU(2, 3), nn.GRU(2, 3))
    if field == "dropout":
        model[0].dropout = 1  # type: ignore[assignment]  # an int 1 is a valid dropout and hashes like True
    setattr(model[1], field, value)
    with pytest.raises(InvalidSettingsError, match=rf"^1 \(GRU\): {field} should be"):
        summarize(model)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_dropout_is_rejected_so_to_dict_stays_json(value):
    """A dropout set after construction is validated like any setting: NaN would make to_dict() invalid JSON."""
    model = nn.Sequential(nn.Linear(2, 2), nn.LSTM(2, 3, num_layers=2, dropout=0.5))
    json.dumps(summarize(model, batch=2, seq_len=3).to_dict(), allow_nan=False)  # valid as built
    model[1].dropout = value
    with pytest.raises(InvalidSettingsError, match=r"^1 \(LSTM\): dropout should be a number in \[0, 1\], got: "):
        summarize(model)
    registry = Registry()
    registry.register(nn.Linear, lambda m: {"kind": "RNNCell", "input_size": 2, "hidden_size": 2, "dropout": value})
    with pytest.raises(InvalidSettingsError, match=r"dropout should be a number in \[0, 1\]"):
        summarize(nn.Linear(2, 2), registry=registry)


@pytest.mark.parametrize("value", [None, "LSTM", torch.zeros(2), [nn.LSTM(2, 2)]])
def test_non_module_argument_is_a_type_error(value):
    with pytest.raises(NotAModuleError, match=r"summarize\(\) expects a torch.nn.Module, got ") as info:
        summarize(value)
    assert isinstance(info.value, TypeError) and isinstance(info.value, TorchLstmParamsError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lengths": 5}, "lengths must be a sequence of ints (a packed batch), got: 5"),
        ({"lengths": "35"}, "lengths must be a sequence of ints (a packed batch), got: '35'"),
        ({"lengths": ["a"]}, "lengths must be a non-empty list of ints >= 0, got: ['a']"),
        ({"registry": 42}, "registry must be a torchlstm_params.Registry, got: int"),
        ({"batch": "2", "seq_len": 3}, "batch must be an int >= 1, got: '2'"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(InvalidSettingsError, match="^" + re.escape(message)):
        summarize(nn.LSTM(2, 2), **kwargs)


class Twin(nn.Module):
    """A user's recurrent cell, read through a registry entry."""

    def __init__(self) -> None:
        super().__init__()
        self.ih, self.hh = nn.Linear(2, 8), nn.Linear(2, 8)


def _twin_settings(module: nn.Module) -> dict[str, object]:
    return {"kind": "LSTMCell", "input_size": 2, "hidden_size": 2}


def bad(value: object) -> Any:
    """A deliberately wrong-typed argument, typed for mypy."""
    return value


class Unreadable(Mapping[str, object]):
    """A mapping whose reading fails."""

    def __getitem__(self, key: str) -> object:
        raise KeyError(key)

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no iteration today")


_CALLBACK = r"^\(root\) \(Twin\): the (settings|tensors) function registered for tests\.test_summary\.Twin"


@pytest.mark.parametrize(
    ("settings", "tensors", "message"),
    [
        (lambda m: 1 / 0, None, "raised ZeroDivisionError: division by zero"),
        (lambda m: None, None, "should return an RNNSpec, a Recurrence or a mapping of settings, got: NoneType"),
        (
            lambda m: [("kind", "LSTM")],
            None,
            "should return an RNNSpec, a Recurrence or a mapping of settings, got: list",
        ),
        (lambda m: Unreadable(), None, "returned a mapping that cannot be read: RuntimeError"),
        (lambda m: {"kind": "LSTMCell", "input_size": torch.tensor(2), "hidden_size": 2}, None, "input_size should"),
        (lambda m: {"kind": "LSTMCell", "input_size": 2}, None, r"returned settings \['input_size', 'kind'\]"),
        (lambda m: {"knd": "LSTMCell"}, None, r"returned unknown settings \['knd'\]"),
        (lambda m: RNNSpec("LSTMCell", 0, 2), None, "returned an invalid RNNSpec: input_size must be >= 1, got: 0"),
        (
            lambda m: RNNSpec("LSTMCell", bad("2"), 2),
            None,
            "returned an invalid RNNSpec: input_size should be of type int",
        ),
        (lambda m: RNNSpec("GRU", 2, 2, proj_size=1), None, "returned an invalid RNNSpec: proj_size is only"),
        (_twin_settings, lambda m: 1 / 0, "raised ZeroDivisionError: division by zero"),
        (_twin_settings, lambda m: None, "should return a mapping of name -> tensor, got NoneType"),
        (_twin_settings, lambda m: {"weight_ih": 3}, r"mapped \['weight_ih'\] to something that is not a tensor"),
        (_twin_settings, lambda m: {1: m.ih.weight}, "should map tensor names \\(str\\) to tensors, got keys 1"),
        (_twin_settings, lambda m: Unreadable(), "returned a mapping that cannot be read: RuntimeError"),
    ],
)
def test_misbehaving_registered_callbacks_are_named(settings, tensors, message):
    registry = Registry()
    registry.register(Twin, settings, tensors=tensors)
    with pytest.raises(InvalidSettingsError, match=_CALLBACK + ".*" + message):
        summarize(Twin(), registry=registry)


def test_a_registered_spec_in_another_spelling_is_read_canonically():
    registry = Registry()
    registry.register(
        Twin,
        lambda m: RNNSpec("lstmcell", 2, 2),
        tensors=lambda m: {
            "weight_ih": m.ih.weight,
            "weight_hh": m.hh.weight,
            "bias_ih": m.ih.bias,
            "bias_hh": m.hh.bias,
        },
    )
    (entry,) = summarize(Twin(), registry=registry).recurrent
    assert (entry.spec.kind, entry.status, entry.formula_params) == ("LSTMCell", "ok", numel(Twin()))


@pytest.mark.parametrize("depth", [-1, 1.5, True, "2"])
def test_bad_max_depth(depth):
    with pytest.raises(InvalidSettingsError, match="max_depth must be None or an int >= 0"):
        summarize(nn.LSTM(2, 2), max_depth=depth)


def test_max_depth_limits_rows_only():
    model = Seq2Seq()
    full = summarize(model)
    top = summarize(model, max_depth=1)
    assert [r.name for r in top.rows] == ["", "embed", "encoder", "bridge", "decoder", "head"]
    assert [r.name for r in summarize(model, max_depth=0).rows] == [""]
    assert top.recurrent == full.recurrent
    assert top.total_params == full.total_params


def test_to_dict_is_json_and_holds_every_figure():
    model = Seq2Seq()
    report = summarize(model)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["total_params"] == numel(model)
    assert data["matches"] is True
    enc = data["recurrent"][0]
    assert enc["name"] == "encoder" and enc["status"] == "ok"
    assert enc["formula_params"] == enc["tensor_params"] == numel(model.encoder)
    assert enc["breakdown"][0]["tensors"][0] == {
        "name": "weight_ih_l0",
        "shape": [128, 16],
        "layer": 0,
        "direction": "forward",
        "role": "weight_ih",
    }
    assert enc["derivation"] == report.recurrent[0].formula.derivation
    assert [r["name"] for r in data["rows"]] == [r.name for r in report.rows]
    n = numel(model)
    assert data["dtypes"] == [{"dtype": "float32", "params": n, "bytes": 4 * n, "trainable_params": n, "itemsize": 4}]


def snapshot(model: nn.Module):
    return [
        (
            name,
            m.training,
            dict(m._forward_hooks),
            dict(m._forward_pre_hooks),
            dict(m._backward_hooks),
            dict(m._state_dict_hooks),
            [(n, id(p), p.device, p.dtype, p.requires_grad) for n, p in m._parameters.items() if p is not None],
            [(n, id(b), b.device, b.dtype) for n, b in m._buffers.items() if b is not None],
        )
        for name, m in model.named_modules()
    ]


def test_model_is_never_changed():
    model = Seq2Seq()
    model.head.eval()
    model.embed.weight.requires_grad_(False)
    before = snapshot(model)
    state = copy.deepcopy(model.state_dict())
    report = summarize(model)
    str(report)
    report.to_dict()
    assert snapshot(model) == before
    after = model.state_dict()
    assert list(after) == list(state)
    assert all(torch.equal(after[k], state[k]) for k in state)
    assert torch.nn.modules.module._global_forward_hooks == {}
    assert torch.nn.modules.module._global_forward_pre_hooks == {}


def thread_models() -> list[nn.Module]:
    """Different models, each with its own quirks: a tie, an alias, lazy and frozen tensors, depth, fp16."""
    tied = nn.Sequential(nn.Embedding(30, 8), nn.LSTM(8, 8, num_layers=2), nn.Linear(8, 30))
    tied[2].weight = tied[0].weight
    aliased = nn.Module()
    aliased.a = nn.Sequential(nn.GRU(4, 4), nn.LazyLinear(2))
    aliased.b = aliased.a
    deep: nn.Module = nn.RNN(3, 3, nonlinearity="relu")
    for _ in range(2_000):
        deep = nn.Sequential(deep)
    frozen = nn.Sequential(nn.LSTMCell(5, 5), nn.GRU(5, 6, bidirectional=True).to(torch.float16))
    frozen[0].weight_hh.requires_grad_(False)
    return [Seq2Seq(), tied, aliased, deep, frozen]


@pytest.mark.parametrize("caller_gc", [True, False], ids=["gc-enabled", "gc-disabled"])
def test_eight_threads_summarize_at_once_and_agree_with_one(caller_gc: bool):
    models = thread_models()
    shared = models[0]  # several threads summarize this very object at once
    twin = copy.deepcopy(shared)  # and an identical one
    expected = [(summarize(m).to_dict(), str(summarize(m, batch=2, seq_len=3))) for m in models]
    expected_twin = expected[0]
    picks = [(shared, expected[0]), (shared, expected[0]), (shared, expected[0]), (twin, expected_twin)]
    picks += [(m, e) for m, e in zip(models[1:], expected[1:], strict=True)]
    assert len(picks) == 8

    def task(model: nn.Module) -> list[tuple[dict[str, object], str]]:
        return [(summarize(model).to_dict(), str(summarize(model, batch=2, seq_len=3))) for _ in range(5)]

    was_enabled = gc.isenabled()
    try:
        if not caller_gc:
            gc.disable()
        with gc_samples() as samples:
            results = in_threads([functools.partial(task, m) for m, _ in picks])
        assert gc.isenabled() is caller_gc  # the library left the collector as this caller had it
        if not caller_gc:
            assert samples and not any(samples)  # and never turned it on in between
    finally:
        if was_enabled:
            gc.enable()
    for (_, want), got in zip(picks, results, strict=True):
        assert got == [want] * 5


def test_scripted_modules_show_their_original_class():
    with pytest.warns(DeprecationWarning, match="torch.jit.script` is deprecated"):
        scripted = torch.jit.script(nn.Sequential(nn.Linear(3, 4), nn.LSTM(4, 5)))
    report = summarize(scripted)
    assert [row.type for row in report.rows] == ["Sequential (scripted)", "Linear (scripted)", "LSTM (scripted)"]
    assert report.model_type == "Sequential (scripted)" and report.recurrent[0].type == "LSTM (scripted)"


class LSTM(nn.Module):  # a wrapper that shares torch's class name, as speechbrain's does
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(3, 4)


def test_a_class_name_two_classes_share_is_shown_with_its_module_path():
    report = summarize(nn.Sequential(LSTM(), nn.Linear(4, 4)))
    types = {row.name: row.type for row in report.rows}
    assert types == {
        "": "Sequential",
        "0": f"{__name__}.LSTM",
        "0.rnn": "torch.nn.modules.rnn.LSTM",
        "1": "Linear",
    }
    assert report.recurrent[0].type == "torch.nn.modules.rnn.LSTM"
    assert [row.type for row in summarize(nn.Sequential(nn.LSTM(3, 4))).rows] == ["Sequential", "LSTM"]


class Seq2SeqLengths(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv1d(8, 8, 3, stride=4), nn.LSTM(8, 16, bidirectional=True))
        self.decoder = nn.LSTMCell(8, 16)
        self.tagger = nn.GRU(8, 4)


def test_per_module_sequence_lengths():
    model = Seq2SeqLengths()
    report = summarize(model, batch=3, seq_len={"encoder": 50, "decoder": 10})
    encoder, decoder, tagger = report.recurrent
    # By hand: a bidirectional LSTM step is 2·4h(in+h) MACs, a cell step 4h(in+h); tokens = batch x length.
    assert encoder.compute is not None and encoder.compute.tokens == 150
    assert encoder.compute.forward_macs == 2 * 4 * 16 * (8 + 16) * 150
    assert decoder.compute is not None and decoder.compute.forward_macs == 4 * 16 * (8 + 16) * 30
    assert decoder.state is not None and decoder.state.output == 30 * 16  # h at every one of the 10 steps
    assert tagger.compute is None and tagger.saved is None  # no length covers it
    assert report.seq_len == {"encoder": 50, "decoder": 10} and report.tokens is None
    text = " ".join(str(report).split())
    assert "Not costed (no seq_len given for them): 'tagger'." in text
    assert "a cell, assumed to take one step per token" in text
    every = summarize(model, batch=3, seq_len={"": 20, "decoder": 10})
    assert [e.compute.tokens for e in every.recurrent if e.compute is not None] == [60, 30, 60]
    json.dumps(report.to_dict())


@pytest.mark.parametrize(
    ("seq_len", "message"),
    [
        ({"encodr": 5}, "seq_len names no module at 'encodr'; closest: 'encoder'"),
        ({"encoder": 0}, "seq_len['encoder']: seq_len must be an int >= 1, got: 0"),
    ],
)
def test_per_module_sequence_lengths_are_checked(seq_len, message):
    with pytest.raises(InvalidSettingsError, match=re.escape(message)):
        summarize(Seq2SeqLengths(), batch=2, seq_len=seq_len)
    with pytest.raises(InvalidSettingsError, match=r"either lengths= .* or seq_len=, not both"):
        summarize(Seq2SeqLengths(), seq_len={"encoder": 3}, lengths=[3, 2])


@pytest.mark.parametrize(
    "settings",
    [
        {"mode": "LSTM", "input_size": 5, "hidden_size": 4, "bidirectional": True, "proj_size": 2},
        {"mode": "GRU", "input_size": 3, "hidden_size": 6, "bias": False},
        {"mode": "RNN_RELU", "input_size": 2, "hidden_size": 3, "dropout": 0.1},
    ],
)
def test_a_stack_counted_from_a_stand_in_is_what_torch_builds(settings):
    from torchlstm_params.summary import summarize_stack

    cls = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN_RELU": nn.RNN}[settings["mode"]]
    kwargs = {k: v for k, v in settings.items() if k != "mode"}
    if settings["mode"] == "RNN_RELU":
        kwargs["nonlinearity"] = "relu"
    full, stand_in = cls(num_layers=9, **kwargs), cls(num_layers=2, **kwargs)
    stand_in.requires_grad_(False)
    stand_in.weight_ih_l1.requires_grad_(True)  # trainable counts scale with what layer 1 trains
    report = summarize_stack(stand_in, 9, batch=2, seq_len=3).report
    expected = summarize(full, batch=2, seq_len=3)
    trains = 8 * full.weight_ih_l1.numel()  # layers 1..8 train weight_ih_l1 alone (as the stand-in does)
    assert report.total_params == sum(p.numel() for p in full.parameters())
    assert report.trainable_params == trains
    assert report.param_bytes == expected.param_bytes
    (entry,), (want,) = report.recurrent, expected.recurrent
    assert entry.settings == want.settings
    assert (entry.formula_params, entry.tensor_params, entry.status) == (want.formula_params, want.tensor_params, "ok")
    assert (entry.compute, entry.state, entry.saved) == (want.compute, want.state, want.saved)
    assert entry.formula.derivation == want.formula.derivation
    assert [(c.layer, c.repeat) for c in entry.formula.layers] == [
        (k, r) for k, r in ((0, 1), (1, 8)) for _ in range(want.spec.directions)
    ]


def test_a_stack_needs_a_stand_in_of_two_layers():
    from torchlstm_params.summary import summarize_stack

    with pytest.raises(InvalidSettingsError, match="needs a stand-in of 2 to num_layers layers, got 1"):
        summarize_stack(nn.GRU(2, 2), 5)
