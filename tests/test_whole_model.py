"""Stand-in trees from whole-model pickles read without running them: the live model's tree, split and settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from torchlstm_params import summarize
from torchlstm_params.errors import CheckpointError
from torchlstm_params.pickled import find_module
from torchlstm_params.unpickle import read_pickled
from torchlstm_params.whole_model import build_from_pickled


class Encoder(nn.LSTM):
    """A user subclass of nn.LSTM."""


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 6)
        self.encoder = nn.LSTM(6, 8, num_layers=2, bidirectional=True, batch_first=True, dropout=0.25)
        self.sub = Encoder(6, 3, proj_size=2)
        self.cells = nn.ModuleList([nn.GRUCell(6, 4), nn.RNNCell(4, 4, nonlinearity="relu")])
        self.norm = nn.BatchNorm1d(6)
        self.register_buffer("mask", torch.ones(6), persistent=False)
        self.head = nn.Linear(6, 20)
        self.head.weight = self.embed.weight  # tied
        self.again = self.cells  # one module under two names
        self.frozen = nn.Parameter(torch.zeros(3), requires_grad=False)
        self.scale = torch.ones(2)  # a tensor attribute, neither parameter nor buffer


def stand_in(tmp_path: Path, model: nn.Module) -> nn.Module:
    torch.save(model, tmp_path / "whole.pt")
    located = find_module(read_pickled(tmp_path / "whole.pt"))
    assert located is not None
    return build_from_pickled(located[0]).model


def test_the_tree_split_flags_and_ties_are_the_live_models(tmp_path: Path):
    live = Net()
    model = stand_in(tmp_path, live)
    assert [(n, type(m).__name__) for n, m in model.named_modules()] == [
        (n, type(m).__name__) for n, m in live.named_modules()
    ]
    shapes = {n: (tuple(p.shape), p.dtype, p.requires_grad) for n, p in model.named_parameters()}
    assert shapes == {n: (tuple(p.shape), p.dtype, p.requires_grad) for n, p in live.named_parameters()}
    assert [n for n, _ in model.named_buffers()] == [n for n, _ in live.named_buffers()]
    assert list(model.state_dict()) == list(live.state_dict())  # the non-persistent mask is left out, as live
    assert model.head.weight is model.embed.weight and model.again is model.cells
    assert model.__dict__["scale"].is_meta and all(p.is_meta for p in model.parameters())
    report = summarize(model)
    assert report.total_params == sum(p.numel() for p in live.parameters())
    assert report.trainable_params == sum(p.numel() for p in live.parameters() if p.requires_grad)


def test_recurrent_modules_are_torch_classes_with_the_pickled_settings(tmp_path: Path):
    live = Net()
    model = stand_in(tmp_path, live)
    names = ["mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout"]
    names += ["bidirectional", "proj_size", "nonlinearity"]
    for path in ("encoder", "sub", "cells.0", "cells.1"):
        ours, theirs = model.get_submodule(path), live.get_submodule(path)
        assert {k: getattr(ours, k) for k in names if hasattr(theirs, k)} == {
            k: getattr(theirs, k) for k in names if hasattr(theirs, k)
        }
    assert type(model.encoder) is nn.LSTM and type(model.get_submodule("cells.1")) is nn.RNNCell
    assert isinstance(model.sub, nn.LSTM) and type(model.sub).__name__ == "Encoder"  # the user's class, a stand-in
    entries = {e.name: (e.spec.kind, e.batch_first, e.dropout, e.status) for e in summarize(model).recurrent}
    assert entries == {
        "encoder": ("LSTM", True, 0.25, "ok"),
        "sub": ("LSTM", False, 0.0, "ok"),
        "cells.0": ("GRUCell", False, 0.0, "ok"),
        "cells.1": ("RNNCell", False, 0.0, "ok"),
    }


def test_a_stand_in_never_runs(tmp_path: Path):
    model = stand_in(tmp_path, Net())
    with pytest.raises(CheckpointError, match="its code was never loaded"):
        model(torch.zeros(1, dtype=torch.long))


@pytest.mark.filterwarnings(
    "ignore:torch.ao.quantization is deprecated:DeprecationWarning",
    "ignore:torch.quantize_per_tensor.*:UserWarning",
)
def test_packed_quantized_modules_are_named_not_counted(tmp_path: Path):
    float_model = nn.Sequential(nn.Linear(4, 8), nn.GRU(8, 8))
    quantized = torch.ao.quantization.quantize_dynamic(float_model, {nn.GRU, nn.Linear})
    torch.save(quantized, tmp_path / "q.pt")
    located = find_module(read_pickled(tmp_path / "q.pt"))
    assert located is not None
    built = build_from_pickled(located[0])
    gru = sum(p.numel() for p in float_model[1].parameters())
    assert len(built.notes) == 2
    assert built.notes[0].startswith("0 (torch.ao.nn.quantized.dynamic.modules.linear.Linear): quantized weights")
    assert f"its settings' formula says {gru:,} parameters" in built.notes[1]
    assert summarize(built.model).recurrent == ()  # not checked against tensors it cannot see
