"""Rendered tables against checked-in golden files (refresh: pytest --update-golden)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import block_stack, cell, flat, numel, speech_recognizer
from torchlstm_params import summarize
from torchlstm_params.cli import main
from torchlstm_params.render import DEFAULT_DEPTH, PATH_LIMIT, format_bytes, format_count


class SpeechModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(40, 8)
        self.encoder = nn.LSTM(8, 16, num_layers=2, bidirectional=True, proj_size=4)
        self.decoder = nn.GRUCell(8, 8)
        self.out = nn.Linear(8, 40)
        self.embed.weight.requires_grad_(False)


def broken_model() -> nn.Sequential:
    model = nn.Sequential(nn.RNN(3, 4, nonlinearity="relu"), nn.Linear(4, 4))
    model[0].weight_ih_l0 = nn.Parameter(torch.zeros(4, 2))
    del model[0]._parameters["bias_hh_l0"]
    return model


@pytest.mark.parametrize("tablefmt", ["simple", "github"])
def test_speech_model_table(golden, tablefmt):
    golden(f"speech_{tablefmt}", summarize(SpeechModel()).render(tablefmt, keras=True))


def test_default_str_is_simple_table(golden):
    golden("speech_simple_nokeras", str(summarize(SpeechModel())))


def test_mismatch_table(golden):
    golden("mismatch", str(summarize(broken_model())))


def test_tied_and_aliased(golden):
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10))
    model[1].weight = model[0].weight
    model.add_module("again", model[0])
    golden("tied", str(summarize(model, max_depth=1)))


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (1023, "1,023 B"), (1024, "1,024 B (≈1.0 KiB)"), (3 * 2**30, "3,221,225,472 B (≈3.0 GiB)")],
)
def test_format_bytes(n, text):
    assert format_bytes(n) == text


def test_mismatch_breakdown_shows_the_tensors_and_marks_the_wrong_cells():
    model = broken_model()
    text = str(summarize(model))
    rnn = model[0]
    # What the module holds, read from torch; the formula's size (by hand: h*in = 4*3, h = 4) in brackets.
    assert cell(text, "weight_ih", "0") == f"{rnn.get_parameter('weight_ih_l0').numel():,} ✗ (12)"
    assert cell(text, "bias_hh", "0") == "absent ✗ (4)"
    assert cell(text, "weight_hh", "0") == f"{rnn.get_parameter('weight_hh_l0').numel():,}"
    assert cell(text, "Total", "0") == f"{numel(rnn):,} ✗ (36)"
    assert "MISMATCH at '0' (RNN): formula 36, tensors 28" in text  # the path is quoted, not read as a count
    assert "weight_hr" not in text  # nothing is projected: no weight_hr column


def test_unexpected_tensor_is_marked_in_its_cell():
    rnn = nn.LSTM(3, 4)
    rnn.register_parameter("weight_hr_l0", nn.Parameter(torch.zeros(2, 4)))
    text = str(summarize(rnn))
    assert cell(text, "weight_hr", "(root)") == "+8 ✗"
    assert cell(text, "Total", "(root)") == f"{numel(rnn):,} ✗ ({4 * 4 * (3 + 4) + 2 * 4 * 4:,})"


@pytest.mark.parametrize(
    ("factory", "name"),
    [(speech_recognizer, "speech_recognizer"), (block_stack, "block_stack")],
)
def test_real_world_sized_models(golden, factory, name):
    golden(name, str(summarize(factory())))


def test_third_party_model(golden):
    models = pytest.importorskip("torchaudio.models", reason="torchaudio is not installed")
    with torch.device("meta"):
        model = models.hdemucs_high(sources=["drums", "bass", "other", "vocals"])
    report = summarize(model)
    assert report.total_params == numel(model)
    golden("hdemucs_high", str(report))


def test_the_364_module_model_fits_a_screen_and_nothing_is_lost():
    model = block_stack()
    assert sum(1 for _ in model.modules()) == 364
    report = summarize(model)
    text = str(report)
    assert len(text.splitlines()) < 60
    each = numel(model.get_submodule("blocks.0"))
    assert cell(text, "Params", "blocks.0–39 ×40") == f"{40 * each:,} ({each:,} each)"
    assert cell(text, "%", "blocks.0–39 ×40") == f"{100 * 40 * each / numel(model):.1f}%"
    rnn = model.get_submodule("blocks.0.rnn")
    assert cell(text, "Tensors", "blocks.0–39.rnn ×40") == f"{numel(rnn):,}"
    assert f"Total params: {numel(model):,} (≈{numel(model) / 1e6:.1f} M)" in text
    # Everything is still there: in to_dict(), and in the text when asked.
    data = report.to_dict()
    assert len(data["rows"]) == 364 and len(data["recurrent"]) == 40
    full = report.render(max_depth=None, fold=False, explain=True)
    assert all(f"blocks.{i}.ff.2 " in full for i in range(40))
    assert full.count("[4·128·(256+128) + 2·4·128]") == 40


def test_max_depth_limits_every_section_and_a_mismatch_is_always_listed():
    model = block_stack()
    text = summarize(model).render(max_depth=1)
    assert "blocks.0" not in text.split("more module")[0]
    assert "40 more recurrent modules below depth 1: 40 ok" in flat(text)
    broken = nn.Sequential(nn.Sequential(nn.GRU(3, 4), nn.GRU(3, 4)))
    broken.get_submodule("0.1").weight_hh_l0 = nn.Parameter(torch.zeros(12, 5))
    text = summarize(broken).render(max_depth=0)
    assert cell(text, "Status", "0.1") == "mismatch" and "1 more recurrent module below depth 0: 1 ok" in flat(text)
    assert "MISMATCH at '0.1' (GRU)" in text


def test_explain_is_opt_in_with_the_same_default_in_python_and_the_cli(capsys):
    report = summarize(nn.LSTM(10, 20, num_layers=2))
    assert "Derivations" not in str(report) and "weight_ih" not in str(report)
    explained = report.render(explain=True)
    assert "Derivations" in explained and cell(explained, "weight_ih", "(root)") == f"{4 * 20 * 10:,}"
    assert main(["LSTM(10, 20, num_layers=2)"]) == 0
    assert capsys.readouterr().out == str(report) + "\n"
    assert main(["LSTM(10, 20, num_layers=2)", "--explain"]) == 0
    assert capsys.readouterr().out == explained + "\n"


def test_module_table_default_depth():
    model = nn.Sequential(nn.Sequential(nn.Sequential(nn.Sequential(nn.Linear(2, 2)))))
    text = str(summarize(model))
    assert DEFAULT_DEPTH == 2
    assert "0.0 " in text and "0.0.0 " not in text
    assert "2 more modules below depth 2" in text
    assert "0.0.0.0 " in summarize(model).render(max_depth=None)
    assert "0.0.0 " not in str(summarize(model, max_depth=1)) and "0 " in str(summarize(model, max_depth=1))


def test_projection_column_and_units():
    text = summarize(nn.LSTM(8, 16, proj_size=4), batch=2, seq_len=3).render(explain=True)
    assert cell(text, "weight_hr", "(root)") == f"{4 * 16:,}" and cell(text, "Proj", "(root)") == "4"
    assert "MACs/token" in text and "MACs/step" not in text
    assert "Returned (bytes)" in text and "Saved for bwd (bytes)" in text
    plain = summarize(nn.GRU(8, 16), batch=2, seq_len=3).render(explain=True)
    assert "weight_hr" not in plain and "Proj" not in plain


def test_keras_gru_wording_follows_reset_after():
    text = summarize(nn.GRU(3, 2)).render(explain=True, keras=True)
    assert "Keras, reset_after=True: an input and a recurrent bias per gate: [3·2·(3+2) + 2·3·2] = 42" in text
    assert "one bias per gate: [4·2·(3+2) + 4·2] = 48" in summarize(nn.LSTM(3, 2)).render(explain=True, keras=True)


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0"), (999, "999"), (1000, "≈1.0 K"), (30_312_345, "≈30.3 M"), (999_960, "≈1.0 M"), (2 * 10**12, "≈2.0 T")],
)
def test_format_count(n, text):
    assert format_count(n) == text


def test_over_long_paths_are_shortened_on_screen_and_whole_in_json():
    model: nn.Module = nn.GRU(2, 3)
    for _ in range(200):
        model = nn.Sequential(model)
    report = summarize(model)
    text = report.render(max_depth=None, fold=False)
    assert "0.0.0.…(194 more).0.0.0  GRU" in text  # the GRU's row in the recurrent table
    assert "…(N more) stands for N names left out" in flat(text)
    assert max(map(len, text.splitlines())) <= PATH_LIMIT + 50  # no line as wide as a 399-character path
    rows = report.to_dict()["rows"]
    assert [r["name"] for r in rows] == [path for path, _ in model.named_modules()]
