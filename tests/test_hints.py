"""Hints for recurrent-looking modules nothing recognises: found where they are, never on MLPs or attention."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from torchlstm_params import default_registry, summarize


class HandLSTM(nn.Module):
    """torchaudio-style: x2g Linear(in, 4h), p2g Linear(h, 4h) without bias."""

    def __init__(self, i: int = 6, h: int = 5) -> None:
        super().__init__()
        self.hidden_size = h
        self.x2g = nn.Linear(i, 4 * h)
        self.p2g = nn.Linear(h, 4 * h, bias=False)


class HandLiGRU(nn.Module):
    """No size attributes: two gate groups, read off the two Linear children."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Linear(7, 8, bias=False)
        self.u = nn.Linear(4, 8, bias=False)


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.cell = HandLSTM()
        self.head = nn.Linear(5, 3)


def test_a_hand_written_lstm_cell_is_hinted_with_its_snippet():
    report = summarize(Model())
    assert report.recurrent == ()
    (hint,) = report.hints
    assert (hint.path, hint.type, hint.gates, hint.hidden_size) == ("cell", f"{__name__}.HandLSTM", 4, 5)
    assert "x2g.weight (20, 6)" in hint.reason and "p2g.weight (20, 5)" in hint.reason
    text = str(report)
    assert "Looks recurrent, not recognised" in text and "register_recurrent(" in text
    assert json.loads(json.dumps(report.to_dict()))["hints"][0]["path"] == "cell"


@pytest.mark.parametrize("cls", [HandLSTM, HandLiGRU])
def test_the_snippet_covers_the_module(cls):
    (hint,) = summarize(cls()).hints
    try:
        exec(hint.snippet, {cls.__qualname__: cls})  # the snippet as the user would paste it
        entry = summarize(cls()).recurrent[0]
        assert entry.status == "ok"
        assert entry.formula_params == entry.tensor_params == sum(p.numel() for p in cls().parameters())
        assert summarize(cls()).hints == ()
    finally:
        default_registry.unregister(cls)


class UserAttention(nn.Module):
    def __init__(self, h: int = 16) -> None:
        super().__init__()
        self.hidden_size = h
        self.qkv = nn.Linear(h, 3 * h)
        self.out = nn.Linear(h, h)


class SwiGLU(nn.Module):
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.w1, self.w3, self.w2 = nn.Linear(d, 4 * d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)


class Block(nn.Module):
    """GPT-style: fused attention projection and an MLP, all direct children."""

    def __init__(self, h: int = 8) -> None:
        super().__init__()
        self.hidden_size = h
        self.c_attn, self.c_proj = nn.Linear(h, 3 * h), nn.Linear(h, h)
        self.c_fc, self.mlp_proj = nn.Linear(h, 4 * h), nn.Linear(4 * h, h)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.input_size, self.hidden_size = 8, 32
        self.fc1, self.fc2, self.fc3 = nn.Linear(8, 32), nn.Linear(32, 32), nn.Linear(32, 8)


class Seq2Seq(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.input_size, self.hidden_size = 4, 8
        self.proj = nn.Linear(4, 32)
        self.rnn = nn.LSTM(4, 8)
        self.head = nn.Linear(8, 32)


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.MultiheadAttention(32, 4),
        lambda: nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=128),
        lambda: nn.TransformerDecoderLayer(d_model=16, nhead=2, dim_feedforward=64),
        lambda: nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 8)),
        UserAttention,
        SwiGLU,
        Block,
        MLP,
        Seq2Seq,  # holds a recognised LSTM: the recurrence is covered
        lambda: nn.GRU(4, 8, num_layers=2),
    ],
)
def test_no_hint_on_mlps_attention_or_covered_models(make):
    assert summarize(make()).hints == ()


def test_a_meta_model_is_hinted_without_reading_data():
    with torch.device("meta"):
        model = Model()
    assert [h.path for h in summarize(model).hints] == ["cell"]
