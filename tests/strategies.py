"""Hypothesis strategies shared by the test modules."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st
from torch import nn

from torchlstm_params.formulas import RNNSpec, make_spec

FULL_KINDS = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
CELL_KINDS = ("LSTMCell", "GRUCell", "RNNCell")


@dataclass(frozen=True)
class Config:
    kind: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    bidirectional: bool = False
    proj_size: int = 0

    def spec(self) -> RNNSpec:
        """The library's validated spec for these settings."""
        return make_spec(
            self.kind,
            self.input_size,
            self.hidden_size,
            self.num_layers,
            bias=self.bias,
            bidirectional=self.bidirectional,
            proj_size=self.proj_size,
        )

    def build(self) -> nn.Module:
        """The real torch module (on the current default device)."""
        i, h = self.input_size, self.hidden_size
        if self.kind == "LSTMCell":
            return nn.LSTMCell(i, h, bias=self.bias)
        if self.kind == "GRUCell":
            return nn.GRUCell(i, h, bias=self.bias)
        if self.kind == "RNNCell":
            return nn.RNNCell(i, h, bias=self.bias)
        common = {"num_layers": self.num_layers, "bias": self.bias, "bidirectional": self.bidirectional}
        if self.kind == "LSTM":
            return nn.LSTM(i, h, proj_size=self.proj_size, **common)
        if self.kind == "GRU":
            return nn.GRU(i, h, **common)
        return nn.RNN(i, h, nonlinearity="relu" if self.kind == "RNN_RELU" else "tanh", **common)


@st.composite
def configs(draw: st.DrawFn) -> Config:
    kind = draw(st.sampled_from(FULL_KINDS + CELL_KINDS))
    input_size = draw(st.integers(1, 64))
    hidden_size = draw(st.integers(1, 64))
    if kind in CELL_KINDS:
        return Config(kind, input_size, hidden_size, bias=draw(st.booleans()))
    proj = draw(st.integers(0, hidden_size - 1)) if kind == "LSTM" and hidden_size > 1 else 0
    return Config(
        kind,
        input_size,
        hidden_size,
        num_layers=draw(st.integers(1, 4)),
        bias=draw(st.booleans()),
        bidirectional=draw(st.booleans()),
        proj_size=proj,
    )
