"""The general recurrence description: torch's classes are its simplest instance, exactly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from torch import nn

from tests import helpers
from tests.strategies import configs
from torchlstm_params import InvalidSettingsError, Registry, summarize
from torchlstm_params.formulas import formula
from torchlstm_params.recurrence import (
    Recurrence,
    RecurrenceLayer,
    bias_vectors,
    combine,
    describe,
    gate_matrix,
    graph_conv,
    norm,
    peepholes,
    projection,
    recurrence_formula,
)


@settings(max_examples=200, deadline=None)
@given(configs())
def test_torch_classes_are_the_simplest_instance(config):
    spec = config.spec()
    described, torch_formula = recurrence_formula(describe(spec)), formula(spec)
    assert described.params == torch_formula.params == helpers.numel(config.build())
    assert described.names == torch_formula.names
    assert described.shapes == torch_formula.shapes
    assert described.layers == torch_formula.layers  # per layer and direction, roles included


def test_described_lstm_registered_on_a_hand_written_cell_is_ok():
    class Cell(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Linear(3, 8, bias=False)
            self.u = nn.Linear(2, 8)

    def settings_of(m: nn.Module) -> Recurrence:
        parts = (
            gate_matrix("w.weight", 4, 2, 3),
            gate_matrix("u.weight", 4, 2, 2, role="recurrent", source="h"),
            bias_vectors(["u.bias"], 8, symbol="4h"),
        )
        return Recurrence("MyLSTM", 3, 2, (RecurrenceLayer(0, "forward", parts),), is_cell=True, gate_groups="4")

    registry = Registry()
    registry.register(Cell, settings_of)
    entry = summarize(Cell(), registry=registry).recurrent[0]
    assert (entry.status, entry.formula_params, entry.tensor_params) == ("ok", 4 * 2 * 3 + 4 * 2 * 2 + 8, 48)
    assert entry.formula.derivation == "4·2·3 + 4·2·2 + 8 = 48"
    assert entry.to_dict()["recurrence"]["closed_form"] == "4·h·in + 4·h·h + 4h"
    assert entry.formula.keras_params is None


def test_parts_closed_forms_and_arithmetic():
    assert gate_matrix("W", 3, 5, 7, transposed=True).tensors == (("W", (7, 15)),)
    assert projection("weight_hr", 3, 8).arithmetic == "3·8"
    assert peepholes(["w_c_i", "w_c_f"], 4, shape=(1, 4)).tensors == (("w_c_i", (1, 4)), ("w_c_f", (1, 4)))
    part = norm("ln", 12, symbol="4h", bias=False)
    assert (part.expression, part.tensors) == ("4h", (("ln.weight", (12,)),))
    conv = graph_conv(["c.weight"], None, 4, 6, hops="2K", source="in+h", shape=(2, 3, 6, 4))
    assert (conv.expression, conv.arithmetic, conv.params) == ("2K·(in+h)·h", "6·6·4", 2 * 3 * 6 * 4)
    both = combine([bias_vectors(["a"], 4), bias_vectors(["b"], 4)])
    assert (both.expression, both.arithmetic, both.params) == ("2·h", "2·4", 8)


def test_bad_descriptions_are_refused_with_one_clear_line():
    with pytest.raises(InvalidSettingsError, match="hidden_size must be >= 1"):
        Recurrence("X", 3, 0, (RecurrenceLayer(0, "forward", ()),))
    with pytest.raises(InvalidSettingsError, match="at least one layer"):
        Recurrence("X", 3, 2, ())
    twice = (gate_matrix("w", 1, 2, 3), gate_matrix("w", 1, 2, 2, role="recurrent"))
    with pytest.raises(InvalidSettingsError, match="names a tensor twice: w"):
        recurrence_formula(Recurrence("X", 3, 2, (RecurrenceLayer(0, "forward", twice),)))
    with pytest.raises(InvalidSettingsError, match="does not hold 8 elements"):
        bias_vectors(["b"], 8, shape=(1, 4))
    with pytest.raises(InvalidSettingsError, match="one role and one closed form"):
        combine([bias_vectors(["a"], 4), norm("n", 4)])


def test_a_described_entry_has_no_compute_figures_and_says_so():
    class Cell(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Linear(3, 4, bias=False)

    registry = Registry()
    registry.register(
        Cell,
        lambda m: Recurrence("QRNN-ish", 3, 2, (RecurrenceLayer(0, "forward", (gate_matrix("w.weight", 2, 2, 3),)),)),
    )
    report = summarize(nn.Sequential(Cell(), nn.LSTM(2, 2)), registry=registry, batch=2, seq_len=3)
    described, lstm = report.recurrent
    assert described.compute is None and lstm.compute is not None
    assert "Not costed (hand-written recurrences, whose compute is their own): '0'." in helpers.flat(str(report))
