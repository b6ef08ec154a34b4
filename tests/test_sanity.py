"""check(): one real model per problem code, a model with many problems at once, and the one-shot hook."""

from __future__ import annotations

import functools
import gc
import logging
import re

import pytest
import torch
from torch import nn

from tests.helpers import WALK_COUNTED_PARAMS, WalkCountedModel, gc_samples, in_threads, lstm_count, problems_of
from torchlstm_params import (
    CODES,
    CheckFailedError,
    InvalidSettingsError,
    TorchLstmParamsError,
    check,
    find_problems,
    install_sanity_hook,
)
from torchlstm_params.cli import main
from torchlstm_params.sanity import SEVERITIES, weights_in_one_chunk


def test_clean_model_returns_report():
    model = nn.Sequential(nn.Embedding(10, 3), nn.LSTM(3, 2))
    report = check(model, expect_params=30 + lstm_count(3, 2), expect={"1": {"hidden_size": 2, "kind": "LSTM"}})
    assert report.total_params == 30 + 56


def test_shape_missing_and_unexpected_codes():
    model = nn.Sequential(nn.GRU(3, 4))
    model[0].weight_hh_l0 = nn.Parameter(torch.zeros(12, 5))
    del model[0]._parameters["bias_hh_l0"]
    model[0].register_parameter("weight_ih_l1", nn.Parameter(torch.zeros(4)))
    assert problems_of(model) == [
        ("RNN_SHAPE_MISMATCH", "0", "weight_hh_l0: expected shape (12, 4), found (12, 5)"),
        ("RNN_TENSOR_MISSING", "0", "bias_hh_l0: missing, expected shape (12,)"),
        ("RNN_TENSOR_UNEXPECTED", "0", "weight_ih_l1: unexpected tensor of shape (4,), not in the formula"),
    ]


class LSTMWithGRU(nn.LSTM):
    """A recurrent subclass holding another recurrent module."""

    def __init__(self) -> None:
        super().__init__(3, 4)
        self.inner = nn.GRU(2, 3)


def test_a_recurrent_module_inside_a_recurrent_subclass_is_checked():
    model = LSTMWithGRU()
    model.inner.weight_ih_l0 = nn.Parameter(torch.zeros(5, 5))
    assert problems_of(model) == [("RNN_SHAPE_MISMATCH", "inner", "weight_ih_l0: expected shape (9, 2), found (5, 5)")]
    with pytest.raises(CheckFailedError):
        check(model)
    outer, inner = check(LSTMWithGRU()).recurrent  # whole again: passes
    assert (outer.name, inner.name) == ("", "inner")
    # The outer LSTM's own tensors are its formula's; the GRU's, by hand 3·3·(2+3) + 2·3·3 = 63, are extra to it.
    assert outer.findings == () and [(e.tensor, e.kind, e.delta) for e in outer.explanations] == [
        ("(submodules)", "extra", 63)
    ]


def test_lazy_uninitialized():
    model = nn.Sequential(nn.LSTM(3, 2), nn.LazyLinear(4))
    assert problems_of(model) == [
        ("LAZY_UNINITIALIZED", "1", "weight is uninitialized (lazy); run one forward pass to materialize it"),
        ("LAZY_UNINITIALIZED", "1", "bias is uninitialized (lazy); run one forward pass to materialize it"),
    ]


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [
        ({"expect_params": 50}, "PARAMS_MISMATCH", "expected 50 parameters, found 56 (+6)"),
        ({"max_params": 55}, "PARAMS_OVER_BUDGET", "expected at most 55 parameters, found 56"),
        ({"min_params": 1_000}, "PARAMS_UNDER_BUDGET", "expected at least 1,000 parameters, found 56"),
        ({"expect_trainable": 0}, "TRAINABLE_MISMATCH", "expected 0 trainable parameters, found 56"),
    ],
)
def test_count_expectations(options, code, message):
    assert problems_of(nn.LSTM(3, 2), **options) == [(code, "", message)]


def test_budget_met_is_silent():
    assert problems_of(nn.LSTM(3, 2), expect_params=56, max_params=56, min_params=56, expect_trainable=56) == []


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(16, 256, num_layers=2, bidirectional=True)
        self.proj = nn.Linear(512, 64)


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.decoder = nn.GRUCell(64, 64)


def test_per_module_expectations():
    with torch.device("meta"):
        model = Model()
    assert (
        problems_of(model, expect={"encoder.rnn": {"hidden_size": 256, "num_layers": 2, "bidirectional": True}}) == []
    )
    assert problems_of(model, expect={"encoder.rnn": {"hidden_size": 512, "num_layers": 3, "bidirectional": True}}) == [
        ("SETTING_MISMATCH", "encoder.rnn", "hidden_size expected 512, found 256"),
        ("SETTING_MISMATCH", "encoder.rnn", "num_layers expected 3, found 2"),
    ]
    assert problems_of(model, expect={"decoder": {"kind": "GRUCell", "params": 3 * 64 * 128 + 6 * 64}}) == []


def test_missing_path_names_closest_paths():
    with torch.device("meta"):
        model = Model()
    assert problems_of(model, expect={"encoder.rn": {"hidden_size": 256}}) == [
        ("MODULE_NOT_FOUND", "encoder.rn", "no module at this path; closest: 'encoder.rnn', 'encoder', 'encoder.proj'"),
    ]


def test_recurrent_setting_on_non_recurrent_module():
    with torch.device("meta"):
        model = Model()
    assert problems_of(model, expect={"encoder.proj": {"hidden_size": 64}}) == [
        ("MODULE_NOT_RECURRENT", "encoder.proj", "hidden_size=64 asked of a Linear, which is not recurrent"),
    ]


def test_frozen_recurrent_weights_while_rest_trains():
    model = nn.Sequential(nn.Embedding(5, 3), nn.LSTM(3, 2))
    model[1].weight_ih_l0.requires_grad_(False)
    model[1].weight_hh_l0.requires_grad_(False)
    assert problems_of(model) == [
        (
            "RNN_FROZEN",
            "1",
            # trains: embedding 5·3 + LSTM biases 2·8 = 31
            "2 of 4 tensors have requires_grad=False (weight_ih_l0, weight_hh_l0) while 31 parameters train; "
            "pass allow_frozen=['1'] if intended",
        )
    ]
    assert problems_of(model, allow_frozen=["1"]) == []
    assert problems_of(model, allow_frozen=["1.weight_*"]) == []
    model.requires_grad_(False)  # nothing trains: a frozen RNN is then not a surprise
    assert problems_of(model) == []


def test_mixed_dtype_in_one_recurrent_module():
    model = nn.Sequential(nn.GRU(2, 2))
    model[0].weight_hh_l0 = nn.Parameter(torch.zeros(6, 2, dtype=torch.float64))
    assert problems_of(model) == [
        (
            "RNN_MIXED_DTYPE",
            "0",
            "expected one dtype, found float32, float64 (weight_ih_l0: float32, weight_hh_l0: float64, "
            "bias_ih_l0: float32, bias_hh_l0: float32)",
        )
    ]


def test_mixed_devices_in_module_and_model():
    model = nn.Sequential(nn.RNN(2, 2), nn.Linear(2, 2, device="meta"))
    model[0].bias_hh_l0 = nn.Parameter(torch.zeros(2, device="meta"))
    found = problems_of(model)
    assert [(code, path) for code, path, _ in found] == [("RNN_MIXED_DEVICE", "0"), ("MODEL_MULTI_DEVICE", "")]
    assert found[0][2] == (
        "expected one device, found cpu, meta (weight_ih_l0: cpu, weight_hh_l0: cpu, bias_ih_l0: cpu, bias_hh_l0: meta)"
    )
    assert found[1][2] == (
        "expected one device, found 2: cpu: 3 tensors (0.weight_ih_l0, 0.weight_hh_l0, 0.bias_ih_l0); "
        "meta: 3 tensors (0.bias_hh_l0, 1.weight, 1.bias)"
    )


def test_dropout_on_single_layer():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        model = nn.LSTM(3, 2, dropout=0.3)
    assert problems_of(model) == [
        (
            "RNN_DROPOUT_NO_EFFECT",
            "",
            "dropout=0.3 has no effect with num_layers=1 (dropout only applies between layers)",
        )
    ]
    assert problems_of(nn.LSTM(3, 2, num_layers=2, dropout=0.3)) == []


def test_a_warning_is_logged_and_listed_not_raised(caplog):
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        model = nn.LSTM(3, 2, dropout=0.3)
    with caplog.at_level(logging.WARNING, logger="torchlstm_params"):
        report = check(model)
    assert report.total_params == lstm_count(3, 2)
    assert caplog.records[0].levelname == "WARNING"
    assert caplog.records[0].getMessage().startswith("warning [RNN_DROPOUT_NO_EFFECT] (root): dropout=0.3")
    assert report.check is not None and report.check.status == "passed"
    assert [(p.code, p.severity) for p in report.check.problems] == [("RNN_DROPOUT_NO_EFFECT", "warning")]
    with pytest.raises(CheckFailedError, match=r"1 problem found \(1 of them warning\)") as info:
        check(model, strict=True)
    assert info.value.codes == ("RNN_DROPOUT_NO_EFFECT",)


def test_every_code_has_a_severity():
    assert set(SEVERITIES) == set(CODES)
    assert set(SEVERITIES.values()) == {"error", "warning"}
    assert SEVERITIES["RNN_DROPOUT_NO_EFFECT"] == "warning"  # torch itself only warns about it


def test_check_result_says_what_ran_and_what_was_skipped():
    report = check(nn.LSTM(3, 2), expect_params=56)
    assert report.check is not None
    assert dict(report.check.ran) == {
        "tensors": True,
        "counts": True,
        "expect": False,
        "settings": True,
        "values": True,
    }
    values = report.check.values
    assert values is not None
    assert (values.tensors, values.elements, values.bytes) == (4, 56, 56 * 4)  # float32, by hand
    with torch.device("meta"):
        meta = nn.LSTM(3, 2)
    result = check(meta).check
    assert result is not None
    assert result.status == "incomplete" and not result.passed
    assert result.ran["values"] == "skipped: no tensor has values to read (4 tensors on the meta device (no values))"
    assert result.headline().startswith("Sanity check: NOT COMPLETE, no problems in the parts that ran; values skipped")
    assert check(nn.LSTM(3, 2), check_finite=False).check.ran["values"] is False


def test_non_finite_values():
    rnn, linear = nn.LSTM(3, 2), nn.Linear(2, 2)
    model = nn.Sequential(rnn, linear)
    with torch.no_grad():
        rnn.get_parameter("weight_ih_l0")[0, 0] = float("nan")
        rnn.get_parameter("weight_ih_l0")[1, 1] = float("nan")
        linear.bias[0] = float("-inf")
    assert problems_of(model) == [
        ("NON_FINITE", "0", "weight_ih_l0 holds 2 NaN and 0 Inf of 24 values"),
        ("NON_FINITE", "1", "bias holds 0 NaN and 1 Inf of 2 values"),
    ]
    assert problems_of(model, check_finite=False) == []


def parameter(values: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(values, requires_grad=values.is_floating_point() and not values.is_quantized)


NAN_INF = torch.tensor([float("nan"), float("inf"), 1.0, 0.0, 2.0, float("nan")])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        # float8: torch casts NaN and Inf itself; e4m3fn has no Inf (its cast saturates to 448), e5m2 keeps it
        (lambda: NAN_INF.to(torch.float8_e4m3fn), "holds 2 NaN and 0 Inf of 6 values"),
        (lambda: NAN_INF.to(torch.float8_e5m2), "holds 2 NaN and 1 Inf of 6 values"),
        (lambda: NAN_INF.to(torch.float8_e4m3fnuz), "holds 3 NaN and 0 Inf of 6 values"),  # Inf becomes its NaN
        (lambda: NAN_INF.to(torch.float8_e5m2fnuz), "holds 3 NaN and 0 Inf of 6 values"),
        # e8m0: torch.isfinite says True for its NaN (0xFF); the scan reads it through float32
        (lambda: torch.tensor([float("nan"), 1.0]).to(torch.float8_e8m0fnu), "holds 1 NaN and 0 Inf of 2 values"),
        (lambda: NAN_INF.to(torch.complex32), "holds 2 NaN and 1 Inf of 6 values"),
        (lambda: NAN_INF.to_sparse(), "holds 2 NaN and 1 Inf of 5 stored values (sparse_coo, 6 in all)"),
        (lambda: NAN_INF.view(2, 3).to_sparse_csr(), "holds 2 NaN and 1 Inf of 5 stored values (sparse_csr, 6 in all)"),
        (lambda: NAN_INF.view(2, 3).to_sparse_csc(), "holds 2 NaN and 1 Inf of 5 stored values (sparse_csc, 6 in all)"),
        (
            lambda: NAN_INF.view(2, 3).to_sparse_bsr((1, 1)),
            "holds 2 NaN and 1 Inf of 5 stored values (sparse_bsr, 6 in all)",
        ),
        (lambda: NAN_INF.to_mkldnn(), "holds 2 NaN and 1 Inf of 6 values"),
        (
            lambda: torch.quantize_per_tensor(torch.ones(3), float("nan"), 0, torch.qint8),
            "holds 3 NaN and 0 Inf of 3 values",
        ),
    ],
    ids=str.split("e4m3fn e5m2 e4m3fnuz e5m2fnuz e8m0fnu complex32 coo csr csc bsr mkldnn qint8"),
)
# Creating complex32, sparse compressed and quantized tensors warns (experimental, beta, deprecated):
# those dtypes and layouts are what these cases test.
@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental:UserWarning")
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state:UserWarning")
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel:UserWarning")
def test_non_finite_scan_reads_every_dtype_and_layout(make, message):
    model = nn.Module()
    model.register_parameter("w", parameter(make()))
    assert problems_of(model) == [("NON_FINITE", "", "w " + message)]


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.tensor([1.0, 0.0, 2.0]).to(torch.float8_e4m3fn),
        lambda: torch.tensor([1.0, 0.0, 2.0]).to_sparse(),
        lambda: torch.quantize_per_tensor(torch.ones(3), 0.5, 0, torch.qint8),
        lambda: torch.zeros(4, dtype=torch.uint8).view(torch.float4_e2m1fn_x2),  # no NaN or Inf encoding at all
        lambda: torch.ones(3, dtype=torch.int64),
        lambda: torch.ones(2, dtype=torch.uint8).view(torch.bits8),
    ],
    ids=["e4m3fn", "coo", "qint8", "float4", "int64", "bits8"],
)
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel:UserWarning")  # see above
def test_finite_values_of_any_dtype_and_layout_pass(make):
    model = nn.Module()
    model.register_parameter("w", parameter(make()))
    assert problems_of(model) == []


class Unreadable(torch.Tensor):
    """A tensor subclass whose values the scan's operations cannot read (as some wrapper subclasses are)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.isfinite, torch.isnan, torch.isinf, torch.Tensor.to, torch.Tensor.reshape):
            raise NotImplementedError(f"{func.__name__} does not read an Unreadable")
        return super().__torch_function__(func, types, args, kwargs or {})


def test_a_parameter_that_cannot_be_scanned_is_reported_not_passed():
    model = nn.Module()
    model.register_parameter("w", nn.Parameter(torch.ones(3).as_subclass(Unreadable)))
    assert problems_of(model) == [
        (
            "NON_FINITE_UNCHECKED",
            "",
            "w (float32, strided) could not be scanned for NaN/Inf: NotImplementedError: "
            "isfinite does not read an Unreadable",
        )
    ]
    assert problems_of(model, allow=["NON_FINITE_UNCHECKED"]) == []
    assert problems_of(model, check_finite=False) == []


# Creating a nested tensor warns that the API is a prototype: it is the layout this case tests.
@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype stage:UserWarning")
def test_nested_parameters_are_scanned_part_by_part():
    model = nn.Module()
    parts = [torch.tensor([1.0, float("nan")]), torch.tensor([float("inf"), 2.0, 3.0])]
    model.register_parameter("w", nn.Parameter(torch.nested.nested_tensor(parts), requires_grad=False))
    assert problems_of(model) == [("NON_FINITE", "", "w holds 1 NaN and 1 Inf of 5 values")]


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state:UserWarning")  # the factory's CSR
def test_cli_check_on_odd_tensors_reports_without_a_traceback(capsys):
    code = main(["tests.helpers:odd_tensors", "--check"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    assert "[NON_FINITE] (root): f8 holds 1 NaN and 0 Inf of 4 values" in out
    assert "[NON_FINITE] (root): coo holds 1 NaN and 0 Inf of 3 stored values (sparse_coo, 4 in all)" in out
    assert "[NON_FINITE] (root): csr holds 1 NaN and 0 Inf of 3 stored values (sparse_csr, 4 in all)" in out


def test_non_finite_is_never_read_on_meta():
    with torch.device("meta"):
        model = nn.LSTM(300, 512, num_layers=2)
    assert problems_of(model) == []


def test_weights_in_one_chunk_reads_layout():
    flat = torch.zeros(10)
    a, b = flat[:6].view(2, 3), flat[6:].view(4)
    assert weights_in_one_chunk([a, b])
    assert not weights_in_one_chunk([b, a])  # out of order
    assert not weights_in_one_chunk([a, torch.zeros(4)])  # another storage
    assert not weights_in_one_chunk([flat[:6].view(3, 2).t(), b])  # not contiguous
    assert weights_in_one_chunk([])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="RNN_NOT_FLAT concerns CUDA weights only")
def test_not_flat_on_cuda():
    model = nn.LSTM(8, 8, num_layers=2).cuda()
    assert problems_of(model) == []
    model.weight_hh_l0 = nn.Parameter(torch.zeros(32, 8, device="cuda"))
    assert [code for code, _, _ in problems_of(model)] == ["RNN_NOT_FLAT"]
    model.flatten_parameters()
    assert problems_of(model) == []


def test_many_problems_reported_at_once():
    lstm = nn.LSTM(3, 4)
    model = nn.Sequential(lstm, nn.LazyLinear(2), nn.GRU(4, 4))
    model[2].weight_hh_l0 = nn.Parameter(torch.zeros(12, 5))
    lstm.weight_hh_l0.requires_grad_(False)
    with torch.no_grad():
        lstm.get_parameter("bias_ih_l0")[0] = float("nan")
    with pytest.raises(CheckFailedError) as info:
        check(model, expect_params=100, expect={"2": {"hidden_size": 8}, "encoder": {"num_layers": 2}})
    error = info.value
    assert isinstance(error, TorchLstmParamsError)
    assert error.codes == (
        "PARAMS_MISMATCH",
        "LAZY_UNINITIALIZED",
        "LAZY_UNINITIALIZED",
        "RNN_SHAPE_MISMATCH",
        "SETTING_MISMATCH",
        "MODULE_NOT_FOUND",
        "RNN_FROZEN",
        "NON_FINITE",
    )
    text = str(error)
    assert text.startswith("sanity check failed: 8 problems found\n")
    assert "  [RNN_SHAPE_MISMATCH] 2: weight_hh_l0: expected shape (12, 4), found (12, 5)" in text
    assert error.report.total_params == sum(
        p.numel() for p in model.parameters() if not isinstance(p, nn.UninitializedParameter)
    )
    # allowing codes removes exactly those
    with pytest.raises(CheckFailedError) as again:
        check(model, allow=["LAZY_UNINITIALIZED", "NON_FINITE", "RNN_FROZEN"], expect_params=100)
    assert again.value.codes == ("PARAMS_MISMATCH", "RNN_SHAPE_MISMATCH")


def test_warn_mode_logs_every_problem(caplog):
    model = nn.LSTM(3, 2)
    with caplog.at_level(logging.WARNING, logger="torchlstm_params"):
        report = check(model, mode="warn", expect_params=1, max_params=2)
    assert report.total_params == 56
    assert [r.getMessage() for r in caplog.records] == [
        "[PARAMS_MISMATCH] (root): expected 1 parameters, found 56 (+55)",
        "[PARAMS_OVER_BUDGET] (root): expected at most 2 parameters, found 56",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "loud"}, "check(): mode must be 'raise' or 'warn', got: 'loud'"),
        ({"allow": ["NOPE"]}, "check(): allow names unknown problem codes 'NOPE'; known: RNN_SHAPE_MISMATCH, "),
        (
            {"allow": ["NON_FINTE"]},
            "check(): allow names unknown problem codes 'NON_FINTE' (did you mean 'NON_FINITE'?)",
        ),
        ({"expect_params": -1}, "check(): expect_params must be an int >= 0, got: -1"),
        ({"max_params": 1.5}, "check(): max_params must be an int >= 0, got: 1.5"),
        (
            {"expect": {"x": {"hiden_size": 3}}},
            "check(): expect['x'] has unknown setting 'hiden_size' (did you mean 'hidden_size'?)",
        ),
        ({"expect": {"x": 3}}, "check(): expect['x'] must be a mapping of setting -> value, got 3"),
        ({"expect": ["x"]}, "check(): expect must be a mapping of module path -> settings, got: ['x']"),
        ({"expect": [("x", {})]}, "check(): expect must be a mapping of module path -> settings, got: [('x', {})]"),
        ({"expect": {3: {}}}, "check(): expect keys are module paths (str), got: 3"),
        ({"registry": 42}, "check(): registry must be a torchlstm_params.Registry, got: int"),
    ],
)
def test_bad_options_are_clear(options, message):
    with pytest.raises(InvalidSettingsError, match="^" + re.escape(message)):
        check(nn.LSTM(2, 2), **options)


def test_check_never_changes_the_model():
    model = nn.Sequential(nn.LSTM(3, 2), nn.Linear(2, 2)).eval()
    before = [(n, p.requires_grad, p.dtype, p.device, p.clone()) for n, p in model.named_parameters()]
    check(model)
    after = list(model.named_parameters())
    assert [(n, p.requires_grad, p.dtype, p.device) for n, p in after] == [b[:4] for b in before]
    assert all(torch.equal(p, b[4]) for (_, p), b in zip(after, before, strict=True))
    assert not model.training
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())


# --- install_sanity_hook: runs check() once, on the first forward call, and leaves nothing behind ---


def test_hook_runs_once_then_is_gone():
    model = nn.GRU(3, 4)
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(1))  # the user's own hook stays
    handle = install_sanity_hook(model, expect_params=3 * 4 * (3 + 4) + 2 * 3 * 4)
    assert handle.id in model._forward_pre_hooks
    model(torch.zeros(2, 3))
    assert handle.id not in model._forward_pre_hooks
    assert len(model._forward_pre_hooks) == 1
    model(torch.zeros(2, 3))
    assert len(calls) == 2


def test_failing_check_raises_and_the_hook_stays_until_a_check_passes():
    model = nn.LSTM(3, 4)
    handle = install_sanity_hook(model, expect_params=1)
    for _ in range(2):  # a notebook cell run again is checked again, not waved through
        with pytest.raises(CheckFailedError, match=r"\[PARAMS_MISMATCH\] LSTM: expected 1 parameters, found 144"):
            model(torch.zeros(2, 3))
        assert handle.id in model._forward_pre_hooks
    handle.remove()
    out, _ = model(torch.zeros(2, 3))
    assert out.shape == (2, 4)


def test_hook_removes_itself_after_a_check_with_warnings_only(caplog):
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        model = nn.GRU(3, 4, dropout=0.5)
    handle = install_sanity_hook(model)
    with caplog.at_level(logging.WARNING, logger="torchlstm_params"):
        model(torch.zeros(2, 3))
    assert handle.id not in model._forward_pre_hooks
    assert [r.getMessage() for r in caplog.records] == [
        "warning [RNN_DROPOUT_NO_EFFECT] GRU: dropout=0.5 has no effect with num_layers=1 "
        "(dropout only applies between layers)"
    ]


class GRUDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRUCell(3, 3)


@pytest.mark.parametrize(("name", "shown"), [(None, "GRUDecoder.rnn"), ("model.decoder", "model.decoder.rnn")])
def test_hook_names_paths_from_the_module_it_was_given(name, shown):
    model = nn.ModuleDict({"decoder": GRUDecoder()})
    install_sanity_hook(model["decoder"], name=name, expect={"rnn": {"hidden_size": 4}})
    with pytest.raises(CheckFailedError) as info:
        model["decoder"](torch.zeros(1, 3))
    assert str(info.value).splitlines()[1] == f"  [SETTING_MISMATCH] {shown}: hidden_size expected 4, found 3"


def test_context_manager_removes_an_unused_hook():
    model = nn.RNN(2, 2)
    with install_sanity_hook(model) as handle:
        assert handle.id in model._forward_pre_hooks
    assert not model._forward_pre_hooks


def test_hook_on_a_parent_module_checks_the_whole_model():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    model.add_module("rnn", nn.GRUCell(3, 3))
    install_sanity_hook(model, expect={"rnn": {"hidden_size": 4}})
    with pytest.raises(CheckFailedError, match=r"\[SETTING_MISMATCH\] Sequential.rnn: hidden_size expected 4, found 3"):
        model(torch.zeros(1, 2))
    assert len(model._forward_pre_hooks) == 1  # failed: it stays


def test_unknown_option_fails_at_install_time():
    model = nn.LSTM(2, 2)
    with pytest.raises(
        InvalidSettingsError,
        match=r"install_sanity_hook\(\) got unknown options 'expect_parms' \(did you mean 'expect_params'\?\)",
    ):
        install_sanity_hook(model, expect_parms=3)
    assert not model._forward_pre_hooks


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "bogus"}, "install_sanity_hook(): mode must be 'raise' or 'warn', got: 'bogus'"),
        ({"allow": ["NOPE"]}, "install_sanity_hook(): allow names unknown problem codes 'NOPE'"),
        ({"expect_params": -1}, "install_sanity_hook(): expect_params must be an int >= 0, got: -1"),
        ({"name": 3}, "install_sanity_hook(): name must be a str, got: 3"),
    ],
)
def test_bad_hook_options_fail_at_install(options, message):
    model = nn.LSTM(2, 2)
    with pytest.raises(InvalidSettingsError, match="^" + re.escape(message)):
        install_sanity_hook(model, **options)
    assert not model._forward_pre_hooks


def test_not_a_module():
    with pytest.raises(TypeError, match=r"install_sanity_hook\(\) expects a torch.nn.Module, got str"):
        install_sanity_hook("model")  # type: ignore[arg-type]


# --- one summary per call: the model is walked once (counted by observation, see tests.helpers.CountsWalks) ---


def test_check_walks_the_model_once():
    model = WalkCountedModel()
    model.record_walks()
    report = check(model, expect_params=WALK_COUNTED_PARAMS, expect={"encoder": {"hidden_size": 6}}, strict=True)
    assert model.walks == ["walk.py:walk"]
    assert report.total_params == WALK_COUNTED_PARAMS


def test_a_failing_check_walks_the_model_once():
    model = WalkCountedModel()
    with torch.no_grad():
        model.get_parameter("encoder.weight_ih_l0")[0, 0] = float("nan")
    model.record_walks()
    with pytest.raises(CheckFailedError) as info:
        check(model, expect_params=1, max_params=2, expect={"encoder": {"hidden_size": 7}, "nope": {"bias": True}})
    assert info.value.codes == (
        "PARAMS_MISMATCH",
        "PARAMS_OVER_BUDGET",
        "SETTING_MISMATCH",
        "MODULE_NOT_FOUND",
        "NON_FINITE",
    )
    assert model.walks == ["walk.py:walk"]


def test_find_problems_walks_the_model_once():
    model = WalkCountedModel()
    model.encoder.weight_hh_l1.requires_grad_(False)
    model.record_walks()
    report, problems = find_problems(model, expect={"decoder.0": {"kind": "GRUCell", "hidden_size": 6}})
    assert [p.code for p in problems] == ["RNN_FROZEN"]
    assert report.total_params == WALK_COUNTED_PARAMS
    assert model.walks == ["walk.py:walk"]


def test_the_hook_walks_the_model_once_and_then_never():
    model = WalkCountedModel()
    install_sanity_hook(model, expect_params=WALK_COUNTED_PARAMS)
    model.record_walks()
    model(torch.zeros(3, 2, dtype=torch.long))
    assert model.walks == ["walk.py:walk"]
    model(torch.zeros(3, 2, dtype=torch.long))
    assert model.walks == ["walk.py:walk"]


# --- threads: checks at once agree with one, and leave the collector as the caller had it ---


def outcome(model: nn.Module, options: dict[str, object]) -> tuple[str, object]:
    """What check() gives: the report's data, or the failure's text."""
    try:
        return "passed", check(model, **options).to_dict()  # type: ignore[arg-type]
    except CheckFailedError as exc:
        return "failed", str(exc)


def outcomes(model: nn.Module, options: dict[str, object]) -> list[tuple[str, object]]:
    return [outcome(model, options) for _ in range(5)]


@pytest.mark.parametrize("caller_gc", [True, False], ids=["gc-enabled", "gc-disabled"])
def test_eight_threads_check_at_once_and_agree_with_one(caller_gc: bool):
    shared = nn.Sequential(nn.Embedding(10, 3), nn.LSTM(3, 4, num_layers=2), nn.Linear(4, 2))
    broken = nn.Sequential(nn.GRU(3, 4), nn.LazyLinear(2))
    broken[0].weight_hh_l0 = nn.Parameter(torch.zeros(12, 5))
    with torch.no_grad():
        nan = nn.LSTM(2, 3)
        nan.get_parameter("bias_hh_l0")[1] = float("nan")
    jobs: list[tuple[nn.Module, dict[str, object]]] = [
        (shared, {"expect": {"1": {"hidden_size": 4, "num_layers": 2}}}),
        (shared, {"expect_params": 1}),  # the same object, another expectation: fails
        (shared, {}),
        (WalkCountedModel(), {"expect_params": WALK_COUNTED_PARAMS}),
        (WalkCountedModel(), {"expect": {"encoder": {"hidden_size": 7}}}),  # an identical model, failing
        (broken, {}),
        (nan, {"allow": ["NON_FINITE"]}),
        (nan, {}),
    ]
    expected = [outcome(m, o) for m, o in jobs]
    statuses = ["passed", "failed", "passed", "passed", "failed", "failed", "passed", "failed"]
    assert [status for status, _ in expected] == statuses
    was_enabled = gc.isenabled()
    try:
        if not caller_gc:
            gc.disable()
        with gc_samples() as samples:
            results = in_threads([functools.partial(outcomes, m, o) for m, o in jobs])
        assert gc.isenabled() is caller_gc
        if not caller_gc:
            assert samples and not any(samples)
    finally:
        if was_enabled:
            gc.enable()
    for want, got in zip(expected, results, strict=True):
        assert got == [want] * 5
