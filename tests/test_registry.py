"""The registry: classes the built-in detection does not know, taught by class (subclasses included)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.ao.nn.quantizable import LSTM as QuantizableLSTM

from tests.helpers import lstm_count, numel
from torchlstm_params import InvalidSettingsError, NotAModuleError, Registry, RNNSpec, register_recurrent, summarize
from torchlstm_params.registry import default_registry


class LayerNormLSTMCell(nn.Module):
    """A hand-written LSTM cell from Linear layers, with layer norm on the gates."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.ih = nn.Linear(input_size, 4 * hidden_size)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size)
        self.ln = nn.LayerNorm(4 * hidden_size)


def cell_settings(m: nn.Module) -> dict[str, object]:
    return {"kind": "LSTMCell", "input_size": m.ih.in_features, "hidden_size": m.hidden_size}


def cell_tensors(m: nn.Module) -> dict[str, torch.Tensor | None]:
    return {"weight_ih": m.ih.weight, "weight_hh": m.hh.weight, "bias_ih": m.ih.bias, "bias_hh": m.hh.bias}


def test_lookup_by_class_and_nearest_registered_base():
    class Base(nn.Module):
        pass

    class Child(Base):
        pass

    class Grandchild(Child):
        pass

    registry = Registry()
    assert registry.lookup(Base) is None
    registry.register(Base, cell_settings, origin="base")
    registry.register(Child, cell_settings)
    base, child = registry.lookup(Base), registry.lookup(Child)
    assert base is not None and base.origin == "base" and base.cls is Base
    assert child is not None and child.origin == f"{__name__}.{Child.__qualname__}"
    assert registry.lookup(Grandchild) is child  # the nearest registered base in the MRO
    assert Base in registry and Grandchild not in registry
    registry.unregister(Child)
    assert registry.lookup(Grandchild) is base
    registry.unregister(Child)  # unregistering twice is harmless


def test_copy_is_independent():
    registry = Registry()
    registry.register(LayerNormLSTMCell, cell_settings)
    copy = registry.copy()
    copy.unregister(LayerNormLSTMCell)
    assert LayerNormLSTMCell in registry and LayerNormLSTMCell not in copy


def test_register_recurrent_adds_to_the_default_registry():
    class Mine(LayerNormLSTMCell):
        pass

    assert Mine not in default_registry
    register_recurrent(Mine, cell_settings, tensors=cell_tensors)
    try:
        assert Mine in default_registry
        (entry,) = summarize(Mine(3, 5)).recurrent  # no registry= needed
        assert entry.formula_params == 4 * 5 * (3 + 5) + 8 * 5
    finally:
        default_registry.unregister(Mine)
    assert summarize(Mine(3, 5)).recurrent == ()


def test_a_settings_function_may_return_an_rnnspec():
    registry = Registry()

    def spec(m: nn.Module) -> RNNSpec:
        assert isinstance(m, LayerNormLSTMCell)
        return RNNSpec("LSTMCell", m.ih.in_features, m.hidden_size)

    registry.register(LayerNormLSTMCell, spec)
    (entry,) = summarize(LayerNormLSTMCell(3, 5), registry=registry).recurrent
    assert entry.spec == RNNSpec("LSTMCell", 3, 5)


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
    reference = nn.LSTM(4, 8, num_layers=layers, bidirectional=bidirectional)
    assert entry.formula_params == lstm_count(4, 8, layers, bidirectional) == numel(reference) == numel(model)
    assert entry.tensor_params == numel(model) and entry.status == "ok"
    assert QuantizableLSTM in default_registry  # registered through the public mechanism


def test_user_registered_cell_gets_formula_and_crosscheck():
    registry = default_registry.copy()
    registry.register(LayerNormLSTMCell, cell_settings, tensors=cell_tensors)
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
    with pytest.raises(InvalidSettingsError, match=r"register\(\) expects settings \(and tensors, if given\)"):
        registry.register(LayerNormLSTMCell, {"kind": "LSTM"})  # type: ignore[arg-type]
    with pytest.raises(InvalidSettingsError, match=r"register\(\) expects settings"):
        registry.register(LayerNormLSTMCell, cell_settings, tensors={"weight_ih": None})  # type: ignore[arg-type]
    registry.register(LayerNormLSTMCell, lambda m: {"kind": "LSTMCell", "input_size": 3})
    with pytest.raises(
        ValueError,
        match=(
            r"^0 \(LayerNormLSTMCell\): the settings function registered for "
            r"tests.test_registry.LayerNormLSTMCell returned settings \['input_size', 'kind'\]"
        ),
    ):
        summarize(nn.Sequential(LayerNormLSTMCell(3, 5)), registry=registry)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (lambda m: 1 / 0, r"raised ZeroDivisionError: division by zero"),
        (lambda m: None, r"should return an RNNSpec, a Recurrence or a mapping of settings, got: NoneType"),
        (lambda m: [("kind", "LSTM")], r"should return an RNNSpec, a Recurrence or a mapping of settings, got: list"),
        (
            lambda m: {"kind": "LSTMCell", "input_size": 3, "hidden_size": 5, "hidden": 5},
            r"returned unknown settings \['hidden'\]; known: kind, input_size",
        ),
        (lambda m: {"kind": "LSTMCell", "input_size": 3, "hidden_size": 0}, r"hidden_size must be >= 1, got: 0"),
        (
            lambda m: {"kind": "LSTM", "input_size": 3, "hidden_size": 5, "dropout": 2},
            r"dropout should be a number in \[0, 1\], got: 2",
        ),
    ],
)
def test_a_misbehaving_settings_function_is_named(settings, message):
    registry = Registry()
    registry.register(LayerNormLSTMCell, settings)
    with pytest.raises(InvalidSettingsError, match=r"^cell \(LayerNormLSTMCell\): .*" + message):
        summarize(nn.ModuleDict({"cell": LayerNormLSTMCell(3, 5)}), registry=registry)


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        (
            lambda m: dict[str, torch.Tensor]()["weight_ih"],
            r"the tensors function registered for .*LayerNormLSTMCell raised KeyError",
        ),
        (lambda m: [m.ih.weight], r"should return a mapping of name -> tensor, got list"),
        (lambda m: {"weight_ih": 3}, r"mapped \['weight_ih'\] to something that is not a tensor"),
    ],
)
def test_a_misbehaving_tensors_function_is_named(tensors, message):
    registry = Registry()
    registry.register(LayerNormLSTMCell, cell_settings, tensors=tensors)
    with pytest.raises(InvalidSettingsError, match=message):
        summarize(LayerNormLSTMCell(3, 5), registry=registry)
