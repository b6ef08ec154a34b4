"""Rendered tables against checked-in golden files (refresh: pytest --update-golden)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchlstm_params import summarize
from torchlstm_params.render import format_bytes


class SpeechModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(40, 8)
        self.encoder = nn.LSTM(8, 16, num_layers=2, bidirectional=True, proj_size=4)
        self.decoder = nn.GRUCell(8, 8)
        self.out = nn.Linear(8, 40)
        self.embed.weight.requires_grad_(False)


def broken_model() -> nn.Module:
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
