"""Pruned tensors: their full size, what the mask keeps (read from the mask), nothing read on meta."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from tests.helpers import cell, numel
from torchlstm_params import summarize
from torchlstm_params.pruning import pruned_tensors
from torchlstm_params.tally import tally
from torchlstm_params.walk import walk


def pruned_model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 546), nn.ReLU(), nn.Linear(546, 2))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    prune.random_unstructured(model[2], "weight", amount=0.3)
    prune.l1_unstructured(model[2], "weight", amount=0.2)  # a PruningContainer of two methods
    return model


def test_pruned_tensors_and_what_their_masks_keep():
    model = pruned_model()
    kept0, kept2 = (
        int(model[0].get_buffer("weight_mask").sum()),
        int(model[2].get_buffer("weight_mask").sum()),
    )  # torch's own count
    found = pruned_tensors(walk(model))
    assert [(p.node, p.name, p.params, p.kept) for p in found] == [
        (1, "weight", 21_840, kept0),
        (3, "weight", 1_092, kept2),
    ]
    report = summarize(model)
    assert report.total_params == numel(model)  # weight_orig is a Parameter: it counts in full
    assert [(p.name, p.params, p.kept) for p in report.pruned] == [
        ("0.weight", 21_840, kept0),
        ("2.weight", 1_092, kept2),
    ]
    effective = numel(model) - (21_840 - kept0) - (1_092 - kept2)
    assert report.effective_params == effective
    text = str(report)
    assert cell(text, "Params", "0") == f"{numel(model[0]):,} (pruned: {kept0:,} kept)"
    assert f"their masks keep {kept0 + kept2:,} (read from the mask values); effective total {effective:,}" in " ".join(
        text.split()
    )
    assert report.to_dict()["pruned"][0] == {"name": "0.weight", "params": 21_840, "kept": kept0}


def test_masks_on_meta_are_not_read():
    with torch.device("meta"):
        model = nn.Linear(4, 4)
    prune.identity(model, "weight")
    report = summarize(model)
    assert [(p.params, p.kept) for p in report.pruned] == [(16, None)]
    assert report.effective_params is None
    assert "masks are on meta, so what they keep is not known" in " ".join(str(report).split())


def test_summarize_leaves_a_pruned_model_as_it_was():
    model = pruned_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = dict(model[0]._forward_pre_hooks)
    summarize(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert dict(model[0]._forward_pre_hooks) == hooks


def test_the_tally_names_the_nodes_that_can_hold_a_pruned_tensor():
    model = pruned_model()
    model.append(nn.LSTM(4, 4))
    prune.random_unstructured(model[3], "weight_hh_l0", amount=0.5)  # a recurrent tensor pruned too
    tree = walk(model)
    counts = tally(tree, {})
    holders = [i for i, m in enumerate(tree.modules) if any(n.endswith("_orig") for n in m._parameters)]
    assert counts.orig_nodes == holders == [1, 3, 4]
    every = [(p.node, p.name, p.params) for p in pruned_tensors(tree)]  # every node's hooks read
    assert [(p.node, p.name, p.params) for p in pruned_tensors(tree, counts.orig_nodes)] == every
    assert every[-1] == (4, "weight_hh_l0", 4 * 4 * 4)
