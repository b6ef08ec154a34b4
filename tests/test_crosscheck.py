"""crosscheck(): the formula's tensors against the registered ones, and every explained variant (ties and
parametrizations included)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.ao.nn.quantizable import LSTM as QuantizableLSTM
from torch.nn.utils import parametrizations, parametrize

from tests.helpers import lstm_count, numel, problems_of
from torchlstm_params import CheckFailedError, Registry, check, summarize
from torchlstm_params.crosscheck import Check, TensorFinding, crosscheck, format_shape
from torchlstm_params.detect import detect
from torchlstm_params.recurrence import formula_of


def crosscheck_of(module: nn.Module) -> Check:
    """crosscheck() as summarize calls it: the detected settings and their formula."""
    detected = detect(module)
    assert detected is not None
    return crosscheck(formula_of(detected.spec), module, detected)


@pytest.mark.parametrize(
    ("shape", "text"), [(None, "absent"), ((), "()"), ((3,), "(3,)"), ((16, 4), "(16, 4)"), ((2, 3, 4), "(2, 3, 4)")]
)
def test_shapes_are_written_as_python_writes_tuples(shape, text):
    assert format_shape(shape) == text
    if shape is not None:
        assert text == str(tuple(shape))


def test_finding_messages():
    assert TensorFinding("bias_ih_l0", "missing", (16,), None).message() == "bias_ih_l0: missing, expected shape (16,)"
    assert TensorFinding("weight_hr_l0", "unexpected", None, (4,)).message() == (
        "weight_hr_l0: unexpected tensor of shape (4,), not in the formula"
    )
    assert TensorFinding("weight_hh_l1", "wrong_shape", (16, 4), (16, 5)).message() == (
        "weight_hh_l1: expected shape (16, 4), found (16, 5)"
    )
    assert TensorFinding("weight_ih", "uninitialized", (8, 3), None).message() == (
        "weight_ih: uninitialized (lazy), expected shape (8, 3)"
    )


@pytest.mark.parametrize(
    "module",
    [nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2), nn.GRU(3, 4, bias=False), nn.RNNCell(2, 5)],
)
def test_a_clean_module_has_nothing_to_report(module: nn.Module):
    check = crosscheck_of(module)
    assert (check.findings, check.explanations, check.packed) == ((), (), None)
    assert check.accounted == numel(module)


def test_a_name_torch_writes_is_unexpected_and_any_other_name_is_an_extra():
    module = nn.LSTM(3, 4)
    module.register_parameter("weight_hr_l0", nn.Parameter(torch.zeros(2, 4)))  # torch's name, not for proj_size=0
    module.register_parameter("weight_ih_l01", nn.Parameter(torch.zeros(5)))  # torch never writes a leading zero
    check = crosscheck_of(module)
    assert [(f.tensor, f.problem, f.found_shape) for f in check.findings] == [("weight_hr_l0", "unexpected", (2, 4))]
    assert [(e.tensor, e.kind, e.delta) for e in check.explanations] == [("weight_ih_l01", "extra", 5)]
    assert check.accounted == numel(module)


def test_an_uninitialized_recurrent_tensor_is_named():
    module = nn.GRU(3, 4)
    module.weight_hh_l0 = nn.parameter.UninitializedParameter()
    check = crosscheck_of(module)
    assert [(f.tensor, f.problem, f.expected_shape) for f in check.findings] == [
        ("weight_hh_l0", "uninitialized", (12, 4))
    ]
    assert check.accounted == numel(nn.GRU(3, 4)) - 12 * 4


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
    assert entry.formula_params == lstm_count(10, 20)
    assert entry.tensor_params == numel(model) == lstm_count(10, 20) + delta


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
    assert entry.tensor_params == numel(model) == lstm_count(10, 20) + 80


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
    assert entry.tensor_params == numel(model) == lstm_count(5, 6)
    check = crosscheck_of(model)  # directly: the raw copy is accounted for, once
    assert check.accounted == numel(model) and check.findings == ()


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
    assert entry.formula_params == lstm_count(3, 4, 2)
    assert report.total_params == numel(model) == lstm_count(3, 4, 2) + 24
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


def test_a_tensor_tied_under_two_recurrent_names_is_a_finding():
    model = nn.LSTM(8, 8)
    model.weight_hh_l0 = model.weight_ih_l0  # one (32, 8) tensor under two names
    (entry,) = summarize(model).recurrent
    assert entry.tensor_params == numel(model) == 4 * 8 * (8 + 8) + 2 * 4 * 8 - 32 * 8
    assert entry.status == "mismatch"
    assert entry.findings == (TensorFinding("weight_hh_l0", "tied", (32, 8), (32, 8), same_as="weight_ih_l0"),)
    assert entry.explanations == ()  # no "elements in submodules": there are none
    message = (
        "weight_hh_l0: the same tensor as weight_ih_l0 (tied inside one recurrent module); "
        "the formula counts both, the module holds 256 elements once"
    )
    assert problems_of(model) == [("RNN_TENSOR_TIED", "", message)]
    with pytest.raises(CheckFailedError, match="RNN_TENSOR_TIED"):
        check(model)
    assert entry.to_dict()["findings"][0]["same_as"] == "weight_ih_l0"


def test_a_recurrent_tensor_under_a_second_non_recurrent_name_is_counted_once():
    model = nn.GRU(3, 4)
    weight = model.weight_ih_l0
    assert isinstance(weight, nn.Parameter)
    model.register_parameter("gate_weights", weight)
    (entry,) = summarize(model).recurrent
    assert entry.tensor_params == numel(model) == 3 * 4 * (3 + 4) + 2 * 3 * 4
    assert entry.findings == ()
    assert [(e.tensor, e.kind, e.delta) for e in entry.explanations] == [("gate_weights", "shared", 0)]
    assert entry.explanations[0].message == "gate_weights is another name for weight_ih_l0; counted once"


def test_a_registered_class_mapping_two_roles_to_one_tensor_is_a_finding():
    class Cell(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Linear(2, 8)

    registry = Registry()
    registry.register(
        Cell,
        lambda m: {"kind": "LSTMCell", "input_size": 2, "hidden_size": 2},
        tensors=lambda m: {"weight_ih": m.w.weight, "weight_hh": m.w.weight, "bias_ih": m.w.bias, "bias_hh": m.w.bias},
    )
    (entry,) = summarize(Cell(), registry=registry).recurrent
    assert [(f.tensor, f.problem, f.same_as) for f in entry.findings] == [
        ("weight_hh", "tied", "weight_ih"),
        ("bias_hh", "tied", "bias_ih"),
    ]
    assert entry.explanations == ()


def test_matched_tensors_that_are_not_parameters_are_not_called_submodules():
    class BufferCell(nn.Module):  # keeps its weights as buffers: no parameters at all
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("w_ih", torch.zeros(6, 2))
            self.register_buffer("w_hh", torch.zeros(6, 2))

    registry = Registry()
    registry.register(
        BufferCell,
        lambda m: {"kind": "GRUCell", "input_size": 2, "hidden_size": 2, "bias": False},
        tensors=lambda m: {"weight_ih": m.w_ih, "weight_hh": m.w_hh},
    )
    (entry,) = summarize(BufferCell(), registry=registry).recurrent
    assert entry.tensor_params == numel(BufferCell()) == 0
    assert entry.findings == ()
    assert [(e.tensor, e.kind, e.delta) for e in entry.explanations] == [("(not parameters)", "not_parameters", -24)]


class Shrink(nn.Module):
    """Keeps the first two columns: a shape-changing parametrization (torch allows it with unsafe=True)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :2]


class Counting(nn.Module):
    """Shape-preserving, and counts its calls in a buffer: evaluating it on the model would change the model."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        calls = self.calls
        assert isinstance(calls, torch.Tensor)
        calls += 1
        return 2 * x


class RankOne(nn.Module):
    """Two originals (torch's own docs example): the weight is their outer product."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1) @ y.unsqueeze(-2)

    def right_inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u, s, vh = torch.linalg.svd(z, full_matrices=False)
        root = s[0].sqrt()
        return u[:, 0] * root, vh[0, :] * root


class DataDependent(nn.Module):
    """Its output shape depends on the values: no meta evaluation can tell it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[: int(x.abs().sum().item() > 0) + x.shape[0] - 1]


def state(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(n, t.detach().clone()) for n, t in [*model.named_parameters(), *model.named_buffers()]]


def unchanged(before: list[tuple[str, torch.Tensor]], model: nn.Module) -> bool:
    after = state(model)
    return [n for n, _ in before] == [n for n, _ in after] and all(
        torch.equal(a, b) for (_, a), (_, b) in zip(before, after, strict=True)
    )


def test_a_shape_changing_parametrization_is_a_mismatch():
    model = nn.LSTM(3, 4)
    parametrize.register_parametrization(model, "weight_ih_l0", Shrink(), unsafe=True)
    weight = model.weight_ih_l0  # what torch computes for it
    assert isinstance(weight, torch.Tensor) and tuple(weight.shape) == (16, 2)
    (entry,) = summarize(model).recurrent
    assert entry.status == "mismatch"
    assert entry.findings == (TensorFinding("weight_ih_l0", "wrong_shape", (16, 3), (16, 2)),)
    assert problems_of(model) == [("RNN_SHAPE_MISMATCH", "", "weight_ih_l0: expected shape (16, 3), found (16, 2)")]


def test_parametrizations_are_never_run_on_the_model():
    model = nn.LSTM(3, 4)
    parametrize.register_parametrization(model, "weight_hh_l0", Counting(), unsafe=True)  # evaluated on a meta copy
    parametrizations.spectral_norm(model, "weight_ih_l0")  # safe: its shape is known without running it
    before = state(model)
    (entry,) = summarize(model).recurrent
    assert unchanged(before, model)  # spectral_norm's power-iteration buffers and the call count included
    assert entry.status == "explained" and entry.findings == ()
    assert [(e.tensor, e.kind) for e in entry.explanations] == [
        ("weight_ih_l0", "parametrized"),
        ("weight_hh_l0", "parametrized"),
    ]


def test_several_originals_give_the_computed_shape():
    model = nn.LSTM(3, 4)
    parametrize.register_parametrization(model, "weight_ih_l0", RankOne())  # originals (16,) and (3,)
    (entry,) = summarize(model).recurrent
    assert entry.findings == ()
    (explanation,) = entry.explanations
    assert (explanation.kind, explanation.delta) == ("parametrized", 16 + 3 - 16 * 3)
    assert entry.tensor_params == numel(model)


def test_torchs_own_parametrizations_are_explained():
    model = nn.GRU(3, 4, num_layers=2)
    parametrizations.weight_norm(model, "weight_ih_l0")
    parametrizations.orthogonal(model, "weight_hh_l0")
    parametrizations.spectral_norm(model, "weight_ih_l1")
    (entry,) = summarize(model).recurrent
    assert entry.status == "explained" and entry.findings == ()
    assert entry.tensor_params == numel(model)


def test_a_shape_that_only_the_values_decide_is_said_to_be_unchecked():
    model = nn.LSTM(3, 4)
    parametrize.register_parametrization(model, "weight_ih_l0", DataDependent(), unsafe=True)
    (entry,) = summarize(model).recurrent
    assert entry.findings == ()
    (explanation,) = entry.explanations
    assert explanation.kind == "parametrized"
    assert "its shape is not checked: working it out would run it on the weights" in explanation.message
