"""The recurrent equations written with plain torch matmuls: an independent reference for counts.

Each function takes a real torch module, runs its computation step by step with
``torch.mm`` (so ``FlopCounterMode`` sees every matrix product) and returns the
output, which tests compare with the module's own forward.
"""

from __future__ import annotations

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
