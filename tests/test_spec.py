"""Layer expressions and factories, called directly: parsed with ast, built on meta, never eval-ed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import lstm_count, numel
from torchlstm_params import SpecError, TorchLstmParamsError
from torchlstm_params.spec import (
    LAYERS,
    build_expression,
    build_factory,
    excerpt,
    is_expression,
    parse_expression,
    read_expression,
)


@pytest.mark.parametrize(
    ("text", "cls", "args", "kwargs"),
    [
        ("LSTM(10, 20)", nn.LSTM, (10, 20), {}),
        ("nn.GRU(8, 16, bidirectional=True)", nn.GRU, (8, 16), {"bidirectional": True}),
        ("torch.nn.RNN(3, 4, 2, nonlinearity='relu')", nn.RNN, (3, 4, 2), {"nonlinearity": "relu"}),
        ("  LSTMCell(3, 2, bias=False)  ", nn.LSTMCell, (3, 2), {"bias": False}),
        ("GRUCell(1, 1)", nn.GRUCell, (1, 1), {}),
        ("RNNCell(4, 5)", nn.RNNCell, (4, 5), {}),
        ("LSTM(1e1, -2)", nn.LSTM, (10.0, -2), {}),  # literals are parsed; torch judges them when building
    ],
)
def test_parse_expression(text, cls, args, kwargs):
    assert parse_expression(text) == (cls, args, kwargs)


def test_layers_are_torchs_six_recurrent_classes():
    assert {cls.__name__: cls for cls in (nn.LSTM, nn.GRU, nn.RNN, nn.LSTMCell, nn.GRUCell, nn.RNNCell)} == LAYERS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("LSTM(10, ", "cannot parse layer expression 'LSTM(10, '"),
        ("LSTM", "a layer expression is one call such as 'LSTM(10, 20)', got 'LSTM'"),
        ("LSTM(1, 2) + GRU(1, 2)", "a layer expression is one call"),
        ("Transformer(10, 20)", "unknown layer 'Transformer'; expected one of LSTM, GRU, RNN, LSTMCell"),
        ("foo.LSTM(10, 20)", "unknown layer 'foo.LSTM'"),
        ("torch.nn.functional.LSTM(1, 2)", "unknown layer 'torch.nn.functional.LSTM'"),
        ("getattr(nn, 'LSTM')(1, 2)", "unknown layer \"getattr(nn, 'LSTM')\""),
        ("LSTM(10, __import__('os').getpid())", "layer expression arguments must be literals"),
        ("LSTM(10, 20, **{'bias': False})", "'**' is not allowed in a layer expression"),
        ("LSTM(10, hidden)", "layer expression arguments must be literals"),
    ],
)
def test_bad_expressions_are_spec_errors(text, message):
    with pytest.raises(SpecError) as info:
        parse_expression(text)
    assert message in str(info.value)
    assert isinstance(info.value, TorchLstmParamsError) and isinstance(info.value, ValueError)


def test_an_expression_is_never_evaluated(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(SpecError, match="must be literals"):
        build_expression(f"LSTM(1, open({str(marker)!r}, 'w').write('x'))")
    assert not marker.exists()


def test_build_expression_builds_on_meta():
    module = build_expression("LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)")
    assert isinstance(module, nn.LSTM)
    assert all(p.is_meta for p in module.parameters())
    real = nn.LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)
    assert [(n, p.shape) for n, p in module.named_parameters()] == [(n, p.shape) for n, p in real.named_parameters()]
    assert numel(module) == lstm_count(10, 20, 2, bidirectional=True, proj=5) == 5_840


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("LSTM(10, 0)", "LSTM(10, 0): hidden_size must be greater than zero"),
        ("GRU(4, 8, proj_size=2)", "GRU(4, 8, proj_size=2): "),
        ("LSTM(10, 20, hidden=3)", "LSTM(10, 20, hidden=3): "),
    ],
)
def test_settings_torch_refuses_are_spec_errors(text, message):
    with pytest.raises(SpecError) as info:
        build_expression(text)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("text", "expected"), [("LSTM(1, 2)", True), ("tests.helpers:tagger", False), ("model.pt", False)]
)
def test_is_expression(text, expected):
    assert is_expression(text) is expected


def test_build_factory_calls_it_with_kwargs_on_meta():
    model = build_factory("tests.helpers:tagger", {"hidden": 8})
    assert all(p.is_meta for p in model.parameters())
    assert numel(model) == 100 * 16 + 2 * (3 * 8 * (16 + 8) + 2 * 3 * 8) + 16 * 5 + 5


def test_a_factory_that_refuses_meta_is_built_for_real():
    model = build_factory("tests.helpers:needs_real_device")
    assert not any(p.is_meta for p in model.parameters())
    assert numel(model) == lstm_count(4, 4)


def test_a_class_is_a_factory_and_attributes_may_be_dotted():
    model = build_factory("torch:nn.LSTM", {"input_size": 3, "hidden_size": 2})
    assert isinstance(model, nn.LSTM) and numel(model) == 56
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("justaword", "a factory is 'package.module:callable' or 'path/to/file.py:callable', got 'justaword'"),
        ("..:good", "a factory names an absolute module ('package.module:callable') or a file"),
        (":build", "a factory is 'package.module:callable'"),
        ("tests.helpers:", "a factory is 'package.module:callable'"),
        ("no_such_pkg_xyz.mod:build", "cannot import 'no_such_pkg_xyz.mod' for factory"),
        ("tests.helpers:nothing", "'tests.helpers' has no attribute 'nothing'"),
        ("tests.helpers:CountsWalks.nothing", "'tests.helpers' has no attribute 'CountsWalks.nothing'"),
        ("tests.helpers:WALK_COUNTED_PARAMS", "factory 'tests.helpers:WALK_COUNTED_PARAMS' is a int, not a callable"),
        ("tests.helpers:not_a_model", "factory 'tests.helpers:not_a_model' returned int, not a torch.nn.Module"),
        ("tests.helpers:broken", "factory 'tests.helpers:broken' failed: KeyError: \"missing config entry 'layers'\""),
    ],
)
def test_bad_factories_are_spec_errors(target, message):
    with pytest.raises(SpecError) as info:
        build_factory(target)
    assert message in str(info.value)


def test_factory_kwargs_it_does_not_take():
    with pytest.raises(SpecError, match=r"factory 'tests.helpers:tagger' failed: TypeError: .*unexpected keyword"):
        build_factory("tests.helpers:tagger", {"width": 3})


def test_building_leaves_the_default_device_alone():
    build_expression("GRU(2, 3)")
    build_factory("tests.helpers:needs_real_device")
    assert torch.empty(1).device.type == "cpu"


@pytest.mark.parametrize(
    ("text", "settings"),
    [
        ("LSTM(10, 20, 2, False)", {"input_size": 10, "hidden_size": 20, "num_layers": 2, "bias": False}),
        (
            "RNN(3, 4, 1, 'relu', True)",
            {"input_size": 3, "hidden_size": 4, "num_layers": 1, "nonlinearity": "relu", "bias": True},
        ),
        ("GRUCell(2, 5, bias=False)", {"input_size": 2, "hidden_size": 5, "bias": False}),
        ("LSTM(300, num_layers=2)", {"input_size": 300, "num_layers": 2}),  # no hidden size: --budget finds it
    ],
)
def test_arguments_are_bound_to_torchs_parameter_names(text, settings):
    assert read_expression(text).settings == settings


def test_binding_matches_what_torch_builds():
    built = read_expression("RNN(3, 4, 2, 'relu', False, True)").build()
    assert isinstance(built, nn.RNN)
    assert (built.nonlinearity, built.bias, built.batch_first, built.num_layers) == ("relu", False, True, 2)


def test_dtype_names_and_device():
    expression = read_expression("GRU(2, 3, dtype=torch.bfloat16, device='cuda:1')")
    assert expression.dtype is torch.bfloat16
    assert "device" not in expression.settings and expression.notes[0].startswith("device='cuda:1' set aside")
    assert {p.dtype for p in expression.build().parameters()} == {torch.bfloat16}


def test_a_stand_in_is_built_shallower():
    stand_in = read_expression("LSTM(4, 5, num_layers=100000)").build(num_layers=2)
    assert isinstance(stand_in, nn.LSTM) and stand_in.num_layers == 2


def test_excerpt_keeps_quotes_balanced():
    assert excerpt("it's " * 100, 12) == "\"it's it's it...\" (500 characters)"
    assert excerpt("short") == "'short'"
