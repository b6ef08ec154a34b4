"""Estimates against real torch runs: saved-for-backward bytes, MACs, returned-state sizes.

Saved for backward: measured against what autograd really saves in a CPU training call.

The measurement: every tensor autograd packs during the forward call
(``torch.autograd.graph.saved_tensors_hooks``), taken at its whole storage,
each storage once, leaving out the module's parameters and the caller's own
tensors (the input, a PackedSequence's data). Tolerance: 0 bytes on torch's
native recurrence; the fused oneDNN path is checked for being flagged.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.autograd.graph import saved_tensors_hooks
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.flop_counter import FlopCounterMode

from tests import helpers
from tests.helpers import cell, flat
from torchlstm_params import InvalidSettingsError, summarize
from torchlstm_params.cli import main
from torchlstm_params.estimates import (
    ITEMSIZE,
    SavedActivations,
    compute,
    saved_activations,
    state_memory,
    step_elementwise,
    step_macs,
    tokens,
)
from torchlstm_params.formulas import RNNSpec, make_spec

pytestmark = [
    pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning"),
    # Module.to(a complex dtype) warns that complex modules are a new feature; they are what is tested.
    pytest.mark.filterwarnings("ignore:Complex modules are a new feature:UserWarning"),
    # torch.backends.mkldnn.flags() restores a TF32 setting that only Intel GPUs have, and says so.
    pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN:UserWarning"),
]


def saved_bytes(module: nn.Module, *args: object, caller: tuple[torch.Tensor, ...]) -> tuple[int, bool]:
    """(bytes of the storages autograd saved, whether one of them is an opaque uint8 workspace)."""
    own = {t.untyped_storage().data_ptr() for t in (*module.parameters(), *caller)}
    packed: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        packed.append(t)
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        module(*args)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in packed}
    workspace = any(t.dtype == torch.uint8 for t in packed)
    return sum(n for ptr, n in storages.items() if ptr not in own), workspace


DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "complex64": torch.complex64,
    "complex128": torch.complex128,
}


@st.composite
def sequence_configs(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]))
    hidden = draw(st.integers(1, 12))
    layers = draw(st.integers(1, 3))
    proj = draw(st.integers(0, hidden - 1)) if kind == "LSTM" else 0
    batch, seq_len = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    lengths = None
    if draw(st.booleans()):
        lengths = sorted(draw(st.lists(st.integers(1, seq_len), min_size=batch, max_size=batch)), reverse=True)
    # torch has no complex relu (clamp) and no complex bernoulli (training-mode dropout between layers):
    # those calls do not run, and get no figure (test_every_dtype_gets_its_real_bytes_or_none).
    dtype = draw(st.sampled_from(sorted(d for d in DTYPES if kind != "RNN_RELU" or "complex" not in d)))
    return {
        "kind": kind,
        "input_size": draw(st.integers(1, 9)),
        "hidden": hidden,
        "layers": layers,
        "bidirectional": draw(st.booleans()),
        "proj": proj,
        "bias": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "dropout": draw(st.sampled_from([0.0, 0.5])) if layers > 1 and "complex" not in dtype else 0.0,
        "dtype": dtype,
        "batch": batch,
        "seq_len": seq_len,
        "lengths": lengths,
    }


def build(c: dict[str, Any]) -> nn.Module:
    cls = nn.LSTM if c["kind"] == "LSTM" else nn.GRU if c["kind"] == "GRU" else nn.RNN
    kwargs: dict[str, Any] = {"proj_size": c["proj"]} if c["proj"] else {}
    if cls is nn.RNN:
        kwargs["nonlinearity"] = "tanh" if c["kind"] == "RNN_TANH" else "relu"
    module = cls(
        c["input_size"],
        c["hidden"],
        c["layers"],
        bias=c["bias"],
        batch_first=c["batch_first"],
        dropout=c["dropout"],
        bidirectional=c["bidirectional"],
        **kwargs,
    )
    return module.to(DTYPES[c["dtype"]])


def run_measured(module: nn.Module, c: dict[str, Any]) -> tuple[int, bool]:
    shape = (c["batch"], c["seq_len"]) if c["batch_first"] else (c["seq_len"], c["batch"])
    dtype = DTYPES[c["dtype"]]
    # pack_padded_sequence refuses to differentiate complex data, so that input is a constant
    # (whether the input requires grad does not change what the recurrence saves).
    grad = not (dtype.is_complex and c["lengths"] is not None)
    x = torch.randn(*shape, c["input_size"], dtype=dtype, requires_grad=grad)
    if c["lengths"] is None:
        return saved_bytes(module, x, caller=(x,))
    packed = pack_padded_sequence(x, c["lengths"], batch_first=c["batch_first"])
    return saved_bytes(module, packed, caller=(x, packed.data))


def estimate(c: dict[str, Any]) -> SavedActivations:
    spec = make_spec(
        c["kind"], c["input_size"], c["hidden"], c["layers"], bidirectional=c["bidirectional"], proj_size=c["proj"]
    )
    shape = {"lengths": c["lengths"]} if c["lengths"] else {"batch": c["batch"], "seq_len": c["seq_len"]}
    return saved_activations(spec, **shape, batch_first=c["batch_first"], dropout=c["dropout"], dtype=c["dtype"])


@settings(max_examples=150, deadline=None)
@given(sequence_configs())
def test_native_recurrence_saves_exactly_the_estimate(c):
    torch.manual_seed(0)
    module = build(c)
    module.train()
    with torch.backends.mkldnn.flags(enabled=False):  # torch's own recurrence for every kind
        measured, workspace = run_measured(module, c)
    assert not workspace
    assert measured == estimate(c).bytes


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell"])
@pytest.mark.parametrize(("batch", "hidden", "bias"), [(1, 1, True), (3, 7, False), (4, 16, True)])
def test_cells_save_exactly_the_estimate(kind, batch, hidden, bias):
    module = getattr(nn, kind)(5, hidden, bias=bias)
    x = torch.randn(batch, 5, requires_grad=True)
    measured, _ = saved_bytes(module, x, caller=(x,))
    assert measured == saved_activations(make_spec(kind, 5, hidden), batch, 1).bytes


class DecoderLoop(nn.Module):
    """A cell run once per token, each call given the states the previous one returned."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        state = None
        outputs = []
        for t in range(x.shape[0]):
            state = self.cell(x[t]) if state is None else self.cell(x[t], state)
            outputs.append(state[0] if isinstance(state, tuple) else state)
        return outputs


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell"])
@pytest.mark.parametrize(("batch", "seq_len", "hidden"), [(3, 4, 5), (2, 7, 8), (1, 2, 1)])
def test_a_cell_over_a_sequence_saves_exactly_the_estimate(kind, batch, seq_len, hidden):
    """Per token one call: the figure is for the whole sequence, as a full-sequence module's is."""
    loop = DecoderLoop(getattr(nn, kind)(4, hidden))
    x = torch.randn(seq_len, batch, 4, requires_grad=True)
    measured, _ = saved_bytes(loop, x, caller=(x,))
    assert measured == saved_activations(make_spec(kind, 4, hidden), batch, seq_len).bytes
    (entry,) = summarize(loop, batch=batch, seq_len=seq_len).recurrent
    assert entry.saved is not None and entry.saved.bytes == measured
    outputs = loop(x)
    assert entry.state is not None
    assert entry.state.output == sum(o.numel() for o in outputs)  # h of every token


@settings(max_examples=80, deadline=None)
@given(sequence_configs())
@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")
def test_fused_flag_says_when_the_cpu_saves_a_workspace_instead(c):
    """With torch's default backends, the CPU saves a oneDNN workspace exactly where the entry says so."""
    # bfloat16 LSTMs go to oneDNN too on CPUs with native bf16 support, which the flag does not claim to know.
    bf16_fused_here = c["dtype"] == "bfloat16" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assume(not (bf16_fused_here and c["kind"] == "LSTM" and not c["proj"]))
    module = build(c)
    measured, workspace = run_measured(module, c)
    flagged = estimate(c).fused_on_cpu
    assert workspace == flagged
    if not flagged:
        assert measured == estimate(c).bytes


def test_hand_derived_figures():
    # GRU(8, 16), batch 2, 3 steps: 7 vectors of 16 per token (r, z, n, h_{t-1} and the
    # intermediates of n = tanh(W_in x + r * (W_hn h + b_hn))), 6 tokens: 672 floats.
    gru = saved_activations(make_spec("GRU", 8, 16), batch=2, seq_len=3)
    assert (gru.elements, gru.bytes) == (672, 2688)
    # LSTM(8, 16, 2 layers, proj 4): per token and layer 6*16 + 4 (+16 pre-projection) = 116;
    # 6 tokens x 2 layers = 1,392, plus layer 1's input 6 x 4 = 24.
    lstm = saved_activations(make_spec("LSTM", 8, 16, 2, proj_size=4), batch=2, seq_len=3)
    assert (lstm.recurrence, lstm.layer_inputs, lstm.elements) == (1392, 24, 1416)
    # RNN over a packed batch [3, 2, 1, 1], bidirectional, h=16: 7 tokens + a 4-row zero state per
    # direction = 2 * (7 + 4) * 16; the reverse pass widens its state at lengths 2 (2 rows) and 1 (4 rows).
    rnn = saved_activations(make_spec("RNN", 8, 16, bidirectional=True), lengths=[3, 2, 1, 1])
    assert (rnn.recurrence, rnn.packed_overhang) == (352, 96)


def test_bad_arguments_are_named():
    spec = make_spec("LSTM", 8, 16)
    with pytest.raises(InvalidSettingsError, match="dtype must be one of"):
        saved_activations(spec, 2, 3, dtype="int8")
    with pytest.raises(InvalidSettingsError, match="lengths >= 1"):
        saved_activations(spec, lengths=[3, 0])
    with pytest.raises(InvalidSettingsError, match="batch must be"):
        saved_activations(spec, 0, 3)
    assert set(ITEMSIZE) == {"float64", "float32", "bfloat16", "float16", "complex64", "complex128"}
    assert all(ITEMSIZE[name] == getattr(torch, name).itemsize for name in ITEMSIZE)  # torch's own sizes


def test_summarize_carries_the_estimate_with_the_module_dtype():
    model = nn.Sequential(nn.LSTM(8, 16, 2, proj_size=4, dropout=0.5), nn.GRU(4, 6, batch_first=True)).double()
    report = summarize(model, batch=3, seq_len=5)
    lstm, gru = report.recurrent
    assert isinstance(lstm.spec, RNNSpec) and isinstance(gru.spec, RNNSpec)
    assert lstm.saved == saved_activations(lstm.spec, 3, 5, dropout=0.5, dtype="float64")
    assert gru.saved == saved_activations(gru.spec, 3, 5, batch_first=True, dtype="float64")
    assert lstm.saved is not None and lstm.saved.dropout_masks == 5 * 3 * 4  # 15 tokens of layer 1's 4-wide input
    # The same model really saves that much in a training call (native path: projection and float64).
    x = torch.randn(5, 3, 8, dtype=torch.float64, requires_grad=True)
    measured, _ = saved_bytes(model[0], x, caller=(x,))
    assert measured == lstm.saved.bytes
    data = report.to_dict()["recurrent"][0]["saved"]
    assert data["bytes"] == lstm.saved.bytes and data["dtype"] == "float64"
    json.dumps(report.to_dict())
    assert "Saved for bwd (bytes)" in str(report)
    assert f"{lstm.saved.bytes:,}" in str(report)


def test_summarize_without_a_batch_has_no_estimate():
    (entry,) = summarize(nn.GRU(3, 4)).recurrent
    assert entry.saved is None


def test_fused_entries_are_marked_in_the_table():
    report = summarize(nn.LSTM(8, 16), batch=2, seq_len=3)
    (entry,) = report.recurrent
    assert entry.saved is not None and entry.saved.fused_on_cpu
    assert f"{entry.saved.bytes:,}*" in str(report)
    assert "oneDNN" in str(report)


def test_cli_prints_the_estimate(capsys):
    assert main(["GRU(8, 16)", "--batch", "2", "--seq-len", "3", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["recurrent"][0]["saved"]["bytes"] == 2688  # 672 floats, derived by hand above


def test_cli_training_memory_adds_the_saved_activations(capsys):
    assert main(["LSTM(8, 16, proj_size=4)", "--batch", "2", "--seq-len", "3", "--optimizer", "adam"]) == 0
    out = capsys.readouterr().out
    params = 4 * 16 * (8 + 4) + 2 * 4 * 16 + 4 * 16  # 960, float32
    saved = 6 * (6 * 16 + 4 + 16) * 4  # 6 tokens, 116 floats each (see test_hand_derived_figures)
    assert f"recurrent activations saved for backward {saved:,} B" in out
    assert f"= {4 * params * 4 + saved:,} B" in out  # weights + gradients + two Adam states + activations
    assert main(["LSTM(8, 16)", "--optimizer", "adam"]) == 0
    assert "activations not included: give --batch and --seq-len" in capsys.readouterr().out


class OwnForwardGRU(nn.GRU):
    def forward(self, x, hx=None):
        out, h = super().forward(x, hx)
        return out * 2, h


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_other_recurrences_get_no_estimate():
    """Modules whose forward is not torch's recurrence save something else: no figure, not a wrong one."""
    quantizable = torch.ao.nn.quantizable.LSTM(4, 8)  # cells written in Python: measured 1,280 B, native 1,344 B
    quantized = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.LSTM(4, 8)), {nn.LSTM}, dtype=torch.qint8)
    scripted = torch.jit.script(nn.GRU(4, 8))  # torch 2.13 compiles no forward for it: calling it raises
    normed = torch.nn.utils.parametrizations.weight_norm(nn.GRU(4, 8), "weight_hh_l0")  # measured 2,496 B, not 1,344
    hooked = nn.GRU(4, 8)
    hooked.register_forward_hook(lambda module, args, out: None)
    for model in (quantizable, quantized, scripted, OwnForwardGRU(4, 8), normed, hooked):
        report = summarize(model, batch=2, seq_len=3)
        (entry,) = report.recurrent
        assert entry.saved is None and entry.compute is not None
        assert entry.state is not None and entry.state.bytes == entry.state.elements * 4  # float32 all the same
        assert "n/a where the forward is not torch's own recurrence alone" in flat(str(report))


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU, nn.RNN])
def test_unsorted_packed_batch(kind):
    """enforce_sorted=False: torch also saves the PackedSequence's own index tensor, which is the caller's."""
    torch.manual_seed(0)
    module = kind(4, 8, num_layers=2, bidirectional=True)
    lengths = [2, 5, 1, 3]
    x = torch.randn(5, 4, 4, requires_grad=True)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    assert packed.sorted_indices is not None and packed.unsorted_indices is not None
    caller = (x, packed.data, packed.sorted_indices, packed.unsorted_indices)
    with torch.backends.mkldnn.flags(enabled=False):
        measured, _ = saved_bytes(module, packed, caller=caller)
    (entry,) = summarize(module, lengths=lengths).recurrent
    assert entry.saved is not None and measured == entry.saved.bytes


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")
@pytest.mark.parametrize(("lengths", "fused"), [([3, 3, 3], True), ([3, 3, 2], False), ([1], True)])
def test_packed_lstm_goes_to_onednn_only_when_rectangular(lengths, fused):
    module = nn.LSTM(4, 8, num_layers=2, bidirectional=True)
    x = torch.randn(max(lengths), len(lengths), 4, requires_grad=True)
    packed = pack_padded_sequence(x, lengths)
    measured, workspace = saved_bytes(module, packed, caller=(x, packed.data))
    (entry,) = summarize(module, lengths=lengths).recurrent
    assert entry.saved is not None
    assert workspace == entry.saved.fused_on_cpu == fused
    if not fused:
        assert measured == entry.saved.bytes


# --- compute and returned state ---

MODULES = [
    ("LSTM", lambda: nn.LSTM(5, 6)),
    ("LSTM proj", lambda: nn.LSTM(5, 6, proj_size=3)),
    ("LSTM bidi proj 2 layers", lambda: nn.LSTM(5, 6, num_layers=2, bidirectional=True, proj_size=2)),
    ("GRU", lambda: nn.GRU(5, 6)),
    ("GRU bidi 2 layers", lambda: nn.GRU(5, 6, num_layers=2, bidirectional=True)),
    ("RNN tanh", lambda: nn.RNN(5, 6)),
    ("RNN relu bidi no bias", lambda: nn.RNN(5, 6, nonlinearity="relu", bidirectional=True, bias=False)),
    ("LSTM no bias 3 layers", lambda: nn.LSTM(5, 4, num_layers=3, bias=False)),
]


def matmul_macs(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2  # FlopCounterMode counts 2 FLOPs per multiply-accumulate


@pytest.mark.parametrize(("label", "make"), MODULES, ids=[m[0] for m in MODULES])
def test_forward_macs_equal_the_matmuls_of_a_real_run(label, make):
    torch.manual_seed(0)
    module = make()
    batch, seq_len = 3, 4
    x = torch.randn(seq_len, batch, 5)
    with torch.no_grad():
        expected, _ = module(x)
        assert torch.allclose(helpers.run(module, x), expected, atol=1e-5)  # the equations are torch's
        measured = matmul_macs(lambda: helpers.run(module, x))
    (entry,) = summarize(module, batch=batch, seq_len=seq_len).recurrent
    assert entry.compute is not None
    assert entry.compute.forward_macs == measured
    assert entry.compute.forward_flops == 2 * measured
    assert entry.compute.training_macs == 3 * measured


def test_packed_batch_costs_the_sum_of_its_lengths():
    torch.manual_seed(0)
    module = nn.GRU(5, 6, bidirectional=True)
    lengths = [7, 3, 1]
    with torch.no_grad():
        measured = sum(matmul_macs(lambda n=n: helpers.run(module, torch.randn(n, 1, 5))) for n in lengths)
    (entry,) = summarize(module, lengths=lengths).recurrent
    assert entry.compute is not None
    assert entry.compute.tokens == 11
    assert entry.compute.forward_macs == measured
    padded = summarize(module, batch=3, seq_len=7).recurrent[0].compute
    assert padded is not None and padded.forward_macs == measured * 21 // 11  # the rectangle costs more


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("LSTM", 13 * 20 + 8 * 20),  # 4h sum, 8h biases, 5h activations, 4h cell/output products
        ("GRU", 11 * 20 + 6 * 20),
        ("RNN_TANH", 2 * 20 + 2 * 20),
    ],
)
def test_elementwise_convention(kind, expected):
    assert step_elementwise(make_spec(kind, 10, 20)) == expected
    assert step_elementwise(make_spec(kind, 10, 20, 2, bidirectional=True)) == 4 * expected


@pytest.mark.parametrize(("label", "make"), MODULES, ids=[m[0] for m in MODULES])
def test_returned_state_sizes_are_exact(label, make):
    module = make()
    out, state = module(torch.zeros(4, 3, 5))
    states = state if isinstance(state, tuple) else (state,)
    (entry,) = summarize(module, batch=3, seq_len=4).recurrent
    assert entry.state is not None
    assert entry.state.output == out.numel()
    assert entry.state.h_n == states[0].numel()
    assert entry.state.c_n == (states[1].numel() if len(states) == 2 else 0)
    assert entry.state.bytes == out.nbytes + sum(s.nbytes for s in states)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_returned_state_bytes_follow_the_module_dtype(dtype):
    module = nn.GRU(5, 6, num_layers=2, bidirectional=True).to(dtype)
    out, h = module(torch.zeros(4, 3, 5, dtype=dtype))
    (entry,) = summarize(module, batch=3, seq_len=4).recurrent
    assert entry.state is not None and entry.state.dtype == str(dtype).removeprefix("torch.")
    assert entry.state.bytes == out.nbytes + h.nbytes


def test_a_dtype_without_a_kernel_gets_elements_only():
    module = nn.LSTM(5, 6).to(torch.float8_e4m3fn)  # torch stores it; no recurrent kernel computes in it
    report = summarize(module, batch=3, seq_len=4)
    (entry,) = report.recurrent
    assert "Saved for bwd (bytes)" in str(report)
    assert report.to_dict()["recurrent"][0]["state"]["bytes"] is None
    assert entry.state is not None and entry.saved is None
    assert (entry.state.elements, entry.state.bytes) == (4 * 3 * 6 + 3 * 6 + 3 * 6, None)
    assert entry.compute is not None and entry.compute.forward_macs == 4 * 6 * (5 + 6) * 12


def test_returned_state_of_a_packed_batch():
    module = nn.LSTM(5, 6, num_layers=2)
    lengths = [5, 2]
    packed = pack_padded_sequence(torch.zeros(5, 2, 5), torch.tensor(lengths))
    out, (h, c) = module(packed)
    (entry,) = summarize(module, lengths=lengths).recurrent
    assert entry.state is not None
    assert (entry.state.output, entry.state.h_n, entry.state.c_n) == (out.data.numel(), h.numel(), c.numel())


def test_cell_state():
    spec = make_spec("LSTMCell", 3, 4)
    h, c = nn.LSTMCell(3, 4)(torch.zeros(5, 3))
    assert state_memory(spec, 5, 5).elements == h.numel() + c.numel()


def test_token_arguments():
    assert tokens(4, 7) == 28
    assert tokens(lengths=[3, 2]) == 5
    with pytest.raises(InvalidSettingsError, match=r"either lengths= .* or batch= and seq_len=, not both"):
        tokens(2, 3, [1])
    with pytest.raises(InvalidSettingsError, match="seq_len must be an int >= 1, got: None"):
        tokens(2)
    with pytest.raises(InvalidSettingsError, match="lengths must be a non-empty list of ints >= 0"):
        tokens(lengths=[2, -1])
    assert compute(make_spec("RNN", 2, 3), 0).forward_macs == 0


def test_compute_in_table_and_json():
    report = summarize(nn.LSTM(10, 20), batch=2, seq_len=3)
    text = str(report)
    assert cell(text, "Tokens", "(root)") == "6"
    assert f"{4 * 20 * 30 * 6:,}" in text  # forward MACs by hand
    data = report.to_dict()
    assert data["tokens"] == 6
    assert data["recurrent"][0]["compute"]["forward_macs"] == 4 * 20 * 30 * 6
    assert data["recurrent"][0]["state"]["elements"] == 6 * 20 + 2 * 20 + 2 * 20  # output, h_n, c_n (batch 2)


def test_estimates_are_closed_forms_in_num_layers():
    """10**15 layers: instant, and the hand-derived figures for LSTM(3, 4) on batch 2 x 3 steps."""
    n = 10**15
    spec = make_spec("LSTM", 3, 4, n)
    with helpers.within(5):
        assert step_macs(spec) == 4 * 4 * (3 + 4) + (n - 1) * 4 * 4 * (4 + 4)
        assert step_elementwise(spec) == n * (13 * 4 + 8 * 4)
        assert compute(spec, 6).forward_macs == 6 * step_macs(spec)
        state = state_memory(spec, 2, 6)
        assert (state.output, state.h_n, state.c_n) == (6 * 4, n * 2 * 4, n * 2 * 4)
        saved = saved_activations(spec, 2, 3, dropout=0.5)
        assert saved.recurrence == n * 6 * (6 * 4 + 4)
        assert saved.layer_inputs == saved.dropout_masks == (n - 1) * 6 * 4


def bad(value: object) -> Any:
    """A deliberately wrong-typed argument, typed for mypy."""
    return value


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda spec: saved_activations(spec, 2, 3, dropout=bad("x")),
            "saved_activations(): dropout should be a number",
        ),
        (lambda spec: saved_activations(spec, 2, 3, dropout=float("nan")), "saved_activations(): dropout should be"),
        (lambda spec: saved_activations(spec, 2, 3, batch_first=bad("x")), "saved_activations(): batch_first must be"),
        (
            lambda spec: saved_activations(bad("LSTM"), 2, 3),
            "saved_activations(): spec must be a torchlstm_params.RNNSpec",
        ),
        (lambda spec: saved_activations(spec, lengths=bad(5)), "lengths must be a sequence of ints"),
        (lambda spec: saved_activations(spec, 2, 3, dtype=bad(None)), "dtype must be one of"),
        (lambda spec: state_memory(bad("LSTM"), 2, 6), "state_memory(): spec must be a torchlstm_params.RNNSpec"),
        (lambda spec: state_memory(spec, bad("2"), 6), "state_memory(): batch must be an int >= 1, got: '2'"),
        (lambda spec: compute(bad(None), 6), "compute(): spec must be a torchlstm_params.RNNSpec"),
        (lambda spec: compute(spec, bad(6.0)), "compute(): n_tokens must be an int >= 0, got: 6.0"),
        (lambda spec: step_macs(bad("LSTM")), "step_macs(): spec must be a torchlstm_params.RNNSpec"),
        (lambda spec: step_elementwise(RNNSpec("LSTM", 0, 4)), "step_elementwise(): input_size must be >= 1"),
    ],
)
def test_bad_estimate_arguments_are_named(call, message):
    with pytest.raises(InvalidSettingsError, match="^" + re.escape(message)):
        call(make_spec("LSTM", 3, 4))


def test_a_spec_built_without_make_spec_is_checked_and_its_kind_spelled_canonically():
    assert saved_activations(RNNSpec("lstm", 3, 4), 2, 3) == saved_activations(make_spec("LSTM", 3, 4), 2, 3)


def test_complex_lstm_figures_are_the_measured_ones():
    """The issue's case: LSTM(4, 8) in complex64 on batch 2 x 3 steps returns 640 B and saves 2,688 B."""
    module = nn.LSTM(4, 8).to(torch.complex64)
    x = torch.randn(3, 2, 4, dtype=torch.complex64, requires_grad=True)
    out, (h, c) = module(x)
    measured, workspace = saved_bytes(module, x, caller=(x,))
    (entry,) = summarize(module, batch=2, seq_len=3).recurrent
    assert entry.state is not None and entry.saved is not None
    assert entry.state.bytes == out.nbytes + h.nbytes + c.nbytes == 640
    assert entry.saved.bytes == measured == 2688 and not workspace
    assert (entry.saved.dtype, entry.saved.fused_on_cpu) == ("complex64", False)


FLOATING_DTYPES = sorted(
    {v for v in vars(torch).values() if isinstance(v, torch.dtype) and (v.is_floating_point or v.is_complex)}, key=str
)
SWEEP = {
    "LSTM": (lambda: nn.LSTM(4, 8, num_layers=2, proj_size=3), (3, 2, 4)),
    "GRU": (lambda: nn.GRU(4, 8, bidirectional=True), (3, 2, 4)),
    "RNN_TANH": (lambda: nn.RNN(4, 8), (3, 2, 4)),
    "RNN_RELU": (lambda: nn.RNN(4, 8, nonlinearity="relu"), (3, 2, 4)),
    "LSTMCell": (lambda: nn.LSTMCell(4, 8), (2, 4)),
    "GRUCell": (lambda: nn.GRUCell(4, 8), (2, 4)),
    "RNNCell_relu": (lambda: nn.RNNCell(4, 8, nonlinearity="relu"), (2, 4)),
    "LSTM_dropout": (lambda: nn.LSTM(4, 8, num_layers=2, dropout=0.5), (3, 2, 4)),
}


@pytest.mark.parametrize("dtype", FLOATING_DTYPES, ids=str)
@pytest.mark.parametrize("kind", sorted(SWEEP))
# Creating a complex32 tensor warns that ComplexHalf is experimental: that dtype is part of the sweep.
@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental:UserWarning")
def test_every_dtype_gets_its_real_bytes_or_none(kind, dtype):
    """Every floating and complex dtype torch has: the bytes a real CPU call returns (inference) and saves
    (training), or None where torch cannot run that call in that dtype (so there is no figure to give)."""
    make, shape = SWEEP[kind]
    try:
        module = make().to(dtype)
    except (NotImplementedError, RuntimeError, TypeError):
        pytest.skip(f"torch cannot cast a module to {dtype}, so no module holds it")
    # A cell's seq_len is its number of calls (each given the previous states): one call here, as measured.
    (entry,) = summarize(module, batch=2, seq_len=1 if len(shape) == 2 else 3).recurrent
    assert entry.state is not None
    try:
        x = torch.randn(*shape).to(dtype)
        with torch.no_grad():
            out = module.eval()(x)
    except (NotImplementedError, RuntimeError):
        assert entry.state.bytes is None
    else:
        if isinstance(out, torch.Tensor):  # GRUCell, RNNCell: h'
            returned = [out]
        elif kind == "LSTMCell":  # (h', c')
            returned = list(out)
        else:  # (output, h_n) or (output, (h_n, c_n))
            returned = [out[0], *(out[1] if isinstance(out[1], tuple) else (out[1],))]
        assert entry.state.bytes == sum(t.nbytes for t in returned)
    try:
        x = torch.randn(*shape).to(dtype).requires_grad_()
        with torch.backends.mkldnn.flags(enabled=False):  # the native recurrence the saved figure models
            measured, _ = saved_bytes(module.train(), x, caller=(x,))
    except (NotImplementedError, RuntimeError):
        assert entry.saved is None
    else:
        assert entry.saved is not None and entry.saved.bytes == measured
