"""Every recurrent variant torch ships, built for real, with figures computed independently."""

from __future__ import annotations

import socket
import warnings

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.ao.nn.quantizable import LSTM as QuantizableLSTM
from torch.nn.utils import parametrizations, parametrize

from tests.helpers import problems_of
from torchlstm_params import NotAModuleError, Registry, check, summarize
from torchlstm_params.registry import default_registry


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def lstm(i: int, h: int, layers: int = 1, directions: int = 1) -> int:
    """PyTorch LSTM count by hand (RNN_FORMULAS.md), independent of the library."""
    total = 0
    for k in range(layers):
        inp = i if k == 0 else directions * h
        total += directions * (4 * h * (inp + h) + 8 * h)
    return total


@pytest.mark.parametrize(("layers", "bidirectional"), [(2, False), (1, True), (3, False)])
def test_quantizable_lstm_is_one_lstm_with_its_settings(layers, bidirectional):
    model = nn.Sequential(QuantizableLSTM(4, 8, num_layers=layers, bidirectional=bidirectional))
    report = summarize(model)
    (entry,) = report.recurrent  # its inner cells are not reported again
    assert (
        entry.name,
        entry.spec.kind,
        entry.spec.input_size,
        entry.spec.hidden_size,
        entry.spec.num_layers,
        entry.spec.bidirectional,
    ) == (
        "0",
        "LSTM",
        4,
        8,
        layers,
        bidirectional,
    )
    assert entry.origin == "torch.ao.nn.quantizable.LSTM"
    directions = 2 if bidirectional else 1
    reference = nn.LSTM(4, 8, num_layers=layers, bidirectional=bidirectional)
    assert entry.formula_params == lstm(4, 8, layers, directions) == numel(reference) == numel(model)
    assert entry.tensor_params == numel(model) and entry.status == "ok"
    assert QuantizableLSTM in default_registry  # registered through the public mechanism


def test_quantizable_bidirectional_stack_is_caught_before_its_forward_fails():
    # torch 2.13 builds layers >= 1 of a bidirectional quantizable LSTM with hidden_size inputs, not 2*hidden_size
    model = QuantizableLSTM(4, 8, num_layers=2, bidirectional=True)
    (entry,) = summarize(model).recurrent
    assert [f.message() for f in entry.findings] == [
        "weight_ih_l1: expected shape (32, 16), found (32, 8)",
        "weight_ih_l1_reverse: expected shape (32, 16), found (32, 8)",
    ]
    assert dict(nn.LSTM(4, 8, num_layers=2, bidirectional=True).named_parameters())["weight_ih_l1"].shape == (32, 16)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        model(torch.zeros(5, 1, 4))  # torch's own forward confirms the static finding


def quantized(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's own deprecation notice
        return torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.GRU, nn.LSTMCell}, dtype=dtype)


def test_dynamic_quantized_lstm_and_gru_report_packed_storage():
    float_model = nn.Sequential(nn.LSTM(4, 8, num_layers=2, bidirectional=True), nn.GRU(4, 6), nn.LSTMCell(3, 5))
    model = quantized(float_model, torch.qint8)
    assert numel(model) == 0  # what a numel sum says
    report = summarize(model)
    assert [e.spec.kind for e in report.recurrent] == ["LSTM", "GRU", "LSTMCell"]
    lstm_e, gru_e, cell_e = report.recurrent
    assert lstm_e.formula_params == numel(float_model[0]) == lstm(4, 8, 2, 2)
    assert gru_e.formula_params == numel(float_model[1])
    assert cell_e.formula_params == numel(float_model[2])
    assert lstm_e.status == "packed" and lstm_e.matches and lstm_e.tensor_params == 0
    assert lstm_e.origin == "torch.ao.nn.quantized.dynamic"
    # packed storage: int8 weights (1 byte each) + float32 biases, from the float model's shapes
    weights = sum(p.numel() for n, p in float_model[0].named_parameters() if n.startswith("weight"))
    biases = sum(p.numel() for n, p in float_model[0].named_parameters() if n.startswith("bias"))
    assert lstm_e.packed is not None
    assert lstm_e.packed.dtypes == (("float32", biases, 4 * biases), ("qint8", weights, weights))
    assert "weights are packed by dynamic quantization" in lstm_e.explanations[0].message
    assert check(model).total_params == 0  # packed is not a problem


def test_dynamic_quantized_fp16_storage():
    model = quantized(nn.Sequential(nn.GRU(4, 6)), torch.float16)
    (entry,) = summarize(model).recurrent
    weights = 3 * 6 * (4 + 6)
    assert entry.packed is not None
    assert entry.packed.dtypes == (("float16", weights, 2 * weights), ("float32", 2 * 18, 4 * 2 * 18))


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


# Importing torch._dynamo (on first torch.compile) trips a torch.jit deprecation notice inside torch.
_DYNAMO_IMPORT = pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")


@_DYNAMO_IMPORT
def test_torch_compile_wrapper_is_seen_through():
    model = nn.Sequential(nn.Embedding(10, 4), nn.LSTM(4, 4))
    compiled = torch.compile(model)
    report = summarize(compiled)  # type: ignore[arg-type]
    assert report.wrappers == ("torch.compile (OptimizedModule)",)
    assert [e.name for e in report.recurrent] == ["1"]
    assert [r.name for r in report.rows] == ["", "0", "1"]
    assert report.total_params == numel(model)
    assert str(report).startswith("Wrapped by torch.compile (OptimizedModule); names are shown without")


@_DYNAMO_IMPORT
def test_data_parallel_and_nested_compile():
    inner = nn.Sequential(nn.GRU(2, 3))
    model = nn.Module()
    model.encoder = torch.compile(inner)  # type: ignore[assignment]
    report = summarize(nn.DataParallel(model))
    assert report.wrappers == ("DataParallel", "encoder: torch.compile (OptimizedModule)")
    assert [e.name for e in report.recurrent] == ["encoder.0"]
    assert report.total_params == numel(inner)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_distributed_data_parallel_single_rank_gloo():
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        model = nn.Sequential(nn.LSTM(3, 4), nn.Linear(4, 2))
        report = summarize(nn.parallel.DistributedDataParallel(model))
        assert report.wrappers == ("DistributedDataParallel",)
        assert [e.name for e in report.recurrent] == ["0"]
        assert report.total_params == numel(model)
    finally:
        dist.destroy_process_group()


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


@pytest.mark.parametrize(
    ("apply", "kind_text", "delta"),
    [
        (lambda m: parametrizations.weight_norm(m, "weight_hh_l0"), "_WeightNorm", 80),  # g: (80, 1)
        (lambda m: parametrizations.spectral_norm(m, "weight_hh_l0"), "_SpectralNorm", 0),
        (lambda m: parametrizations.orthogonal(m, "weight_hh_l0"), "_Orthogonal", 0),
    ],
)
def test_parametrizations_are_explained(apply, kind_text, delta):
    model = nn.LSTM(10, 20)
    apply(model)
    (entry,) = summarize(model).recurrent
    assert entry.status == "explained" and entry.matches
    (explanation,) = entry.explanations
    assert explanation.kind == "parametrized" and explanation.tensor == "weight_hh_l0"
    assert kind_text in explanation.message
    assert "parametrizations.weight_hh_l0.original" in explanation.message
    assert explanation.delta == delta
    assert entry.formula_params == lstm(10, 20)
    assert entry.tensor_params == numel(model) == lstm(10, 20) + delta


def test_weight_norm_message_names_the_stand_ins():
    model = nn.LSTM(10, 20)
    parametrizations.weight_norm(model, "weight_hh_l0")
    (explanation,) = summarize(model).recurrent[0].explanations
    assert explanation.message == (
        "weight_hh_l0 is reparametrized by torch.nn.utils.parametrizations._WeightNorm; it is computed from "
        "parametrizations.weight_hh_l0.original0 (80, 1), parametrizations.weight_hh_l0.original1 (80, 20) "
        "as shape (80, 20) (+80 elements)"
    )


def test_custom_parametrization_with_wrong_shape_is_a_mismatch():
    class Widen(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    model = nn.GRU(3, 4)
    with torch.no_grad():
        model.weight_hh_l0 = nn.Parameter(torch.zeros(12, 5))
    parametrize.register_parametrization(model, "weight_hh_l0", Widen())
    (entry,) = summarize(model).recurrent
    assert [(f.tensor, f.problem, f.expected_shape, f.found_shape) for f in entry.findings] == [
        ("weight_hh_l0", "wrong_shape", (12, 4), (12, 5))
    ]


def test_legacy_weight_norm():
    model = nn.LSTM(10, 20)
    with pytest.warns(FutureWarning):
        nn.utils.weight_norm(model, "weight_hh_l0")
    (entry,) = summarize(model).recurrent
    assert entry.status == "explained"
    (explanation,) = entry.explanations
    assert (explanation.kind, explanation.delta) == ("weight_norm", 80)
    assert explanation.message == (
        "weight_hh_l0 is computed by legacy torch.nn.utils.weight_norm from weight_hh_l0_g (80, 1) "
        "and weight_hh_l0_v (80, 20) (+80 elements)"
    )
    assert entry.tensor_params == numel(model) == lstm(10, 20) + 80


class WeightDropLSTM(nn.LSTM):
    """AWD-LSTM style: the raw weight is the Parameter, weight_hh_l0 a tensor recomputed each step."""

    def __init__(self, *args: int) -> None:
        super().__init__(*args)
        raw = self.weight_hh_l0
        del self._parameters["weight_hh_l0"]
        self.weight_hh_l0_raw = nn.Parameter(raw.detach().clone())
        self.weight_hh_l0 = self.weight_hh_l0_raw.detach() * 1.0  # a plain tensor


def test_weight_drop_raw_copy_is_explained():
    model = WeightDropLSTM(5, 6)
    (entry,) = summarize(model).recurrent
    assert entry.matches and entry.status == "explained"
    (explanation,) = entry.explanations
    assert explanation.message == "weight_hh_l0 is not a Parameter; weight_hh_l0_raw has its shape (24, 6)"
    assert entry.tensor_params == numel(model) == lstm(5, 6)


def test_subclass_with_learned_initial_state_lists_extras():
    class LearnedInit(nn.LSTM):
        def __init__(self) -> None:
            super().__init__(3, 4, num_layers=2)
            self.h0 = nn.Parameter(torch.zeros(2, 1, 4))
            self.c0 = nn.Parameter(torch.zeros(2, 1, 4))
            self.norm = nn.LayerNorm(4)

    model = LearnedInit()
    report = summarize(model)
    (entry,) = report.recurrent
    assert entry.matches and entry.status == "explained"
    assert [(e.tensor, e.kind, e.delta) for e in entry.explanations] == [
        ("h0", "extra", 8),
        ("c0", "extra", 8),
        ("(submodules)", "extra", 8),  # LayerNorm weight + bias
    ]
    assert entry.formula_params == lstm(3, 4, 2)
    assert report.total_params == numel(model) == lstm(3, 4, 2) + 24
    assert problems_of(model) == []
    assert [code for code, _, _ in problems_of(model, strict=True)] == ["RNN_EXPLAINED_DIFFERENCE"] * 3


def test_replaced_and_deleted_tensors_are_mismatches():
    model = nn.GRU(4, 4, num_layers=2)
    model.weight_ih_l1 = nn.Parameter(torch.zeros(12, 3))
    del model._parameters["bias_hh_l1"]
    (entry,) = summarize(model).recurrent
    assert entry.status == "mismatch"
    assert [f.message() for f in entry.findings] == [
        "weight_ih_l1: expected shape (12, 4), found (12, 3)",
        "bias_hh_l1: missing, expected shape (12,)",
    ]


class LayerNormLSTMCell(nn.Module):
    """A hand-written LSTM cell from Linear layers, with layer norm on the gates."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.ih = nn.Linear(input_size, 4 * hidden_size)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size)
        self.ln = nn.LayerNorm(4 * hidden_size)


def test_user_registered_cell_gets_formula_and_crosscheck():
    registry = default_registry.copy()
    registry.register(
        LayerNormLSTMCell,
        lambda m: {"kind": "LSTMCell", "input_size": m.ih.in_features, "hidden_size": m.hidden_size},
        tensors=lambda m: {
            "weight_ih": m.ih.weight,
            "weight_hh": m.hh.weight,
            "bias_ih": m.ih.bias,
            "bias_hh": m.hh.bias,
        },
    )
    model = nn.Sequential(LayerNormLSTMCell(3, 5))
    assert summarize(model).recurrent == ()  # unknown without the registry
    (entry,) = summarize(model, registry=registry).recurrent
    assert (entry.spec.kind, entry.spec.input_size, entry.spec.hidden_size) == ("LSTMCell", 3, 5)
    assert entry.formula_params == 4 * 5 * (3 + 5) + 8 * 5
    assert entry.tensor_params == numel(model[0]) == entry.formula_params + 2 * 20  # + LayerNorm
    assert [(e.kind, e.delta) for e in entry.explanations] == [("extra", 40)]
    broken = nn.Sequential(LayerNormLSTMCell(3, 5))
    broken[0].hh = nn.Linear(6, 20)
    (bad,) = summarize(broken, registry=registry).recurrent
    assert [f.message() for f in bad.findings] == ["weight_hh: expected shape (20, 5), found (20, 6)"]


def test_registry_errors_are_clear():
    registry = Registry()
    with pytest.raises(NotAModuleError, match=r"register\(\) expects an nn.Module subclass, got 3"):
        registry.register(3, lambda m: {})  # type: ignore[arg-type]
    registry.register(LayerNormLSTMCell, lambda m: {"kind": "LSTMCell", "input_size": 3})
    with pytest.raises(
        ValueError,
        match=(
            r"^0 \(LayerNormLSTMCell\): the settings function registered for "
            r"tests.test_zoo.LayerNormLSTMCell returned settings \['input_size', 'kind'\]"
        ),
    ):
        summarize(nn.Sequential(LayerNormLSTMCell(3, 5)), registry=registry)
