"""Shared test helpers: the one place tests import from (besides tests.strategies).

- ``run``/reference recurrences: the recurrent equations written with plain torch matmuls, an
  independent reference for counts and compute.

Each function takes a real torch module, runs its computation step by step with
``torch.mm`` (so ``FlopCounterMode`` sees every matrix product) and returns the
output, which tests compare with the module's own forward.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def _cell(module: nn.RNNBase, x: torch.Tensor, state: tuple[torch.Tensor, ...], sfx: str) -> tuple[torch.Tensor, ...]:
    w_ih, w_hh = getattr(module, f"weight_ih{sfx}"), getattr(module, f"weight_hh{sfx}")
    b_ih = getattr(module, f"bias_ih{sfx}") if module.bias else 0
    b_hh = getattr(module, f"bias_hh{sfx}") if module.bias else 0
    gi = torch.mm(x, w_ih.t()) + b_ih
    gh = torch.mm(state[0], w_hh.t()) + b_hh
    if module.mode == "LSTM":
        i, f, g, o = (gi + gh).chunk(4, dim=1)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        if module.proj_size:
            h = torch.mm(h, getattr(module, f"weight_hr{sfx}").t())
        return h, c
    if module.mode == "GRU":
        ir, iz, in_ = gi.chunk(3, dim=1)
        hr, hz, hn = gh.chunk(3, dim=1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(in_ + r * hn)
        return ((1 - z) * n + z * state[0],)
    act = torch.relu if module.mode == "RNN_RELU" else torch.tanh
    return (act(gi + gh),)


def run(module: nn.RNNBase, x: torch.Tensor) -> torch.Tensor:
    """Output of ``module`` on ``x`` of shape (seq_len, batch, input_size), zero initial state."""
    seq_len, batch, _ = x.shape
    directions = 2 if module.bidirectional else 1
    r = module.proj_size or module.hidden_size
    layer_input = x
    for k in range(module.num_layers):
        outputs = []
        for d in range(directions):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            state: tuple[torch.Tensor, ...] = (torch.zeros(batch, r),)
            if module.mode == "LSTM":
                state = (torch.zeros(batch, r), torch.zeros(batch, module.hidden_size))
            steps = range(seq_len - 1, -1, -1) if d else range(seq_len)
            out = [torch.empty(0)] * seq_len
            for t in steps:
                state = _cell(module, layer_input[t], state, sfx)
                out[t] = state[0]
            outputs.append(torch.stack(out))
        layer_input = torch.cat(outputs, dim=2)
    return layer_input


# --- model factories the CLI tests import as 'tests.helpers:NAME' ---


def tagger(hidden: int = 32, vocab: int = 100) -> nn.Module:
    return nn.Sequential(nn.Embedding(vocab, 16), nn.GRU(16, hidden, bidirectional=True), nn.Linear(2 * hidden, 5))


def needs_real_device() -> nn.Module:
    model = nn.LSTM(4, 4)
    if next(model.parameters()).is_meta:
        raise RuntimeError("this factory reads weights and cannot run on meta")
    return model


def odd_tensors() -> nn.Module:
    """Parameters of dtypes and layouts torch's isfinite does not take, each holding one NaN (CLI factory)."""
    model = nn.Module()
    values = torch.tensor([float("nan"), 1.0, 0.0, 2.0])
    model.register_parameter("f8", nn.Parameter(values.to(torch.float8_e4m3fn), requires_grad=False))
    model.register_parameter("coo", nn.Parameter(values.to_sparse()))
    model.register_parameter("csr", nn.Parameter(values.view(2, 2).to_sparse_csr()))
    return model


def not_a_model() -> int:
    return 3


def broken() -> nn.Module:
    raise KeyError("missing config entry 'layers'")


# --- time limits ---


class TookTooLong(Exception):
    """Raised inside a ``within`` block that outlives its time limit."""


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail (TookTooLong) if the block runs longer than ``seconds`` of wall time (SIGALRM, main thread)."""

    def expire(signum: int, frame: object) -> None:
        raise TookTooLong(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- independent counts ---


def numel(model: nn.Module) -> int:
    """torch's own count: the elements of every unique parameter."""
    return sum(p.numel() for p in model.parameters())


def lstm_count(i: int, h: int, layers: int = 1, bidirectional: bool = False, proj: int = 0, bias: bool = True) -> int:
    """RNN_FORMULAS.md's LSTM count, written out by hand (independent of the library's formulas)."""
    d = 2 if bidirectional else 1
    r = proj or h
    total = 0
    for k in range(layers):
        in_k = i if k == 0 else d * r
        total += d * (4 * h * (in_k + r) + (8 * h if bias else 0) + proj * h)
    return total


def problems_of(model: nn.Module, **options: object) -> list[tuple[str, str, str]]:
    """``find_problems`` as plain (code, path, message) tuples."""
    from torchlstm_params import find_problems

    _, problems = find_problems(model, **options)
    return [(p.code, p.path, p.message) for p in problems]


def lightning_tagger(hidden: int = 8) -> Any:  # a LightningModule; typed Any so lightning stays optional
    """A small real LightningModule (an LSTM and a linear head) that tests train with a real Trainer."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    class Tagger(pl.LightningModule):
        def __init__(self, hidden: int = 8) -> None:
            super().__init__()
            self.rnn = nn.LSTM(4, hidden, batch_first=True)
            self.head = nn.Linear(hidden, 2)
            self.steps = 0

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            self.steps += 1
            x, y = batch
            out, _ = self.rnn(x)
            return nn.functional.cross_entropy(self.head(out[:, -1]), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
            data = TensorDataset(torch.randn(8, 5, 4), torch.randint(0, 2, (8,)))
            return DataLoader(data, batch_size=4)

    return Tagger(hidden)
