"""Compute, state sizes, training memory and sizing against real torch runs and hand counts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.flop_counter import FlopCounterMode

from tests import reference_rnn
from torchlstm_params import InvalidSettingsError, count_params, summarize
from torchlstm_params.compute import closest_configs, compute, fit_hidden_size, state_memory, step_elementwise, tokens
from torchlstm_params.formulas import make_spec
from torchlstm_params.memory import training_memory

# torch's CPU forward of a projected LSTM notes that oneDNN does not support it; that is torch's business.
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")

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
        assert torch.allclose(reference_rnn.run(module, x), expected, atol=1e-5)  # the equations are torch's
        measured = matmul_macs(lambda: reference_rnn.run(module, x))
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
        measured = sum(matmul_macs(lambda n=n: reference_rnn.run(module, torch.randn(n, 1, 5))) for n in lengths)
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
    assert "Saved for bwd B" in str(report)
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


@given(
    kind=st.sampled_from(["LSTM", "GRU", "RNN_TANH", "LSTMCell", "GRUCell", "RNNCell"]),
    input_size=st.integers(1, 512),
    budget=st.integers(0, 50_000_000),
    layers=st.integers(1, 4),
    bidirectional=st.booleans(),
    bias=st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_fit_hidden_size_is_the_largest_that_fits(kind, input_size, budget, layers, bidirectional, bias):
    if kind.endswith("Cell"):
        layers, bidirectional = 1, False

    def count(h: int) -> int:
        return count_params(kind, input_size, h, layers, bias=bias, bidirectional=bidirectional)

    if count(1) > budget:
        with pytest.raises(InvalidSettingsError, match="is below the smallest"):
            fit_hidden_size(kind, input_size, budget, layers, bidirectional=bidirectional, bias=bias)
        return
    h = fit_hidden_size(kind, input_size, budget, layers, bidirectional=bidirectional, bias=bias)
    assert count(h) <= budget < count(h + 1)


def test_fit_hidden_size_with_projection():
    h = fit_hidden_size("LSTM", 80, 1_000_000, 2, proj_size=64)
    count = lambda n: count_params("LSTM", 80, n, 2, proj_size=64)  # noqa: E731
    assert h > 64 and count(h) <= 1_000_000 < count(h + 1)


def test_closest_configs_table():
    rows = closest_configs("LSTM", 300, 3_768_320)
    assert rows[0] == (2, False, 512, 3_768_320)  # the published LSTM(300, 512, num_layers=2) is exact
    distances = [abs(params - 3_768_320) for _, _, _, params in rows]
    assert distances == sorted(distances)
    for layers, bidi, hidden, params in rows:
        assert params == count_params("LSTM", 300, hidden, layers, bidirectional=bidi)
    assert len(rows) == 8


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    return sum(
        value.numel() * value.element_size()
        for state in optimizer.state.values()
        for name, value in state.items()
        if isinstance(value, torch.Tensor) and name != "step"
    )


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("adam", lambda p: torch.optim.Adam(p)),
        ("adamw", lambda p: torch.optim.AdamW(p)),
        ("sgd-momentum", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
        ("sgd", lambda p: torch.optim.SGD(p, lr=0.1)),
    ],
)
def test_training_memory_matches_a_real_optimizer_step(name, make):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(20, 5), nn.LSTM(5, 6, num_layers=2))
    model[0].weight.requires_grad_(False)
    optimizer = make([p for p in model.parameters() if p.requires_grad])
    out, _ = model[1](model[0](torch.randint(0, 20, (4, 2))))
    out.sum().backward()
    optimizer.step()
    memory = training_memory(model, name)
    assert memory.weights == sum(p.numel() * 4 for p in model.parameters())
    assert memory.gradients == sum(
        p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None
    )
    assert memory.optimizer_state == optimizer_state_bytes(optimizer)


def test_training_memory_state_dtype_and_master_weights():
    model = nn.GRU(4, 4).to(torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    memory = training_memory(model, "adam", state_dtype=torch.float32, master_weights=True)
    assert (memory.weights, memory.gradients, memory.optimizer_state, memory.master_weights) == (
        2 * n,
        2 * n,
        8 * n,
        4 * n,
    )
    with pytest.raises(InvalidSettingsError, match="optimizer must be one of sgd, sgd-momentum, adam, adamw"):
        training_memory(model, "lion")


def test_compute_in_table_and_json():
    report = summarize(nn.LSTM(10, 20), batch=2, seq_len=3)
    text = str(report)
    assert "Compute for 6 tokens" in text
    assert f"{4 * 20 * 30 * 6:,}" in text  # forward MACs by hand
    data = report.to_dict()
    assert data["tokens"] == 6
    assert data["recurrent"][0]["compute"]["forward_macs"] == 4 * 20 * 30 * 6
    assert data["recurrent"][0]["state"]["elements"] == 6 * 20 + 2 * 20 + 2 * 20  # output, h_n, c_n (batch 2)
