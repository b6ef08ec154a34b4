"""Model factories the CLI tests import by 'factories:NAME'."""

from __future__ import annotations

from torch import nn


def tagger(hidden: int = 32, vocab: int = 100) -> nn.Module:
    return nn.Sequential(nn.Embedding(vocab, 16), nn.GRU(16, hidden, bidirectional=True), nn.Linear(2 * hidden, 5))


def needs_real_device() -> nn.Module:
    model = nn.LSTM(4, 4)
    if next(model.parameters()).is_meta:
        raise RuntimeError("this factory reads weights and cannot run on meta")
    return model


def not_a_model() -> int:
    return 3


def broken() -> nn.Module:
    raise KeyError("missing config entry 'layers'")
