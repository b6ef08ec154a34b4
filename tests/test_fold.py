"""Which modules get a line: the depth limit, alike siblings folded, "(own)" lines, recurrent groups."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from tests.helpers import block_stack, numel
from torchlstm_params import summarize
from torchlstm_params.fold import PATH_LIMIT, Label, fold_label, module_lines, recurrent_groups, shown_path


def test_alike_numbered_siblings_fold_and_their_children_count_every_copy():
    model = block_stack()
    lines, hidden = module_lines(summarize(model), max_depth=None)
    by_label = {line.label: line for line in lines}
    run = by_label["blocks.0–39"]
    assert (run.count, run.each, run.params) == (
        40,
        numel(model.get_submodule("blocks.0")),
        numel(model.get_submodule("blocks")),
    )
    rnn = by_label["blocks.0–39.rnn"]
    assert (rnn.count, rnn.each) == (40, numel(model.get_submodule("blocks.0.rnn")))
    assert by_label["blocks.0–39.ff.0"].each == numel(model.get_submodule("blocks.0.ff.0"))
    assert hidden == 0
    # Every module is accounted for: shown lines stand for all 364.
    assert sum(line.count for line in lines if not line.own) == sum(1 for _ in model.modules())


def test_siblings_that_differ_do_not_fold():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 3), nn.Linear(2, 3))
    model[1].weight.requires_grad_(False)  # same shapes, different trainable count
    labels = [line.label for line in module_lines(summarize(model), None)[0]]
    assert labels == ["", "0", "1", "2–3"]
    named = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.Linear(2, 2)})  # alike, but not numbered
    assert [line.label for line in module_lines(summarize(named), None)[0]] == ["", "a", "b"]
    assert [line.label for line in module_lines(summarize(model), None, fold=False)[0]] == ["", "0", "1", "2", "3"]


def test_recurrent_settings_decide_folding():
    model = nn.ModuleList([nn.GRU(4, 8), nn.GRU(4, 8), nn.GRU(4, 8, batch_first=True)])
    assert [line.label for line in module_lines(summarize(model), None)[0]] == ["", "0–1", "2"]


def test_depth_limit_counts_what_it_leaves_out():
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), nn.Linear(2, 2))
    lines, hidden = module_lines(summarize(model), max_depth=1)
    assert [line.label for line in lines] == ["", "0", "1"] and hidden == 2
    lines, hidden = module_lines(summarize(block_stack()), max_depth=1)
    assert hidden == 364 - 4


class WithOwn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos_encoding = nn.Parameter(torch.zeros(100, 64))  # held beside the children
        self.scale = nn.Parameter(torch.ones(1), requires_grad=False)
        self.body = nn.Linear(64, 64)


def test_own_lines_make_children_add_up_to_their_parent():
    model = nn.Sequential(WithOwn())
    report = summarize(model)
    lines, _ = module_lines(report, None)
    own = next(line for line in lines if line.own)
    assert (own.label, own.type, own.depth) == ("0 (own)", "pos_encoding, scale", 2)
    assert (own.params, own.trainable_params) == (100 * 64 + 1, 100 * 64)
    parent = next(line for line in lines if line.label == "0")
    children = [line for line in lines if line.depth == 2]
    assert sum(line.params for line in children) == parent.params == numel(model[0])
    # A leaf's own parameters are its row: no "(own)" line.
    assert sum(line.own for line in lines) == 1
    assert "0 (own)" in str(report) and "pos_encoding, scale" in str(report)


def test_recurrent_groups_fold_alike_modules_but_never_a_mismatch():
    model = nn.ModuleList([nn.Sequential(nn.LSTM(4, 8)) for _ in range(5)])
    model.get_submodule("3.0").weight_hh_l0 = nn.Parameter(torch.zeros(32, 9))
    groups, hidden = recurrent_groups(summarize(model).recurrent, None)
    assert [(g.label, g.count) for g in groups] == [("*.0", 4), ("3.0", 1)]
    groups, hidden = recurrent_groups(summarize(model).recurrent, 1)
    assert [g.label for g in groups] == ["3.0"] and len(hidden) == 4


def test_fold_label():
    assert fold_label(["a.0.rnn", "a.1.rnn", "a.2.rnn"]) == "a.0–2.rnn"
    assert fold_label(["a.0.rnn", "a.2.rnn"]) == "a.*.rnn"
    assert fold_label(["a.0.b.0", "a.1.b.1"]) == "a.*.b.*"
    assert fold_label([""]) == "(root)"


def test_shown_path_keeps_short_paths_and_elides_the_middle_of_long_ones():
    parts = [f"layer{k}" for k in range(300)]
    assert shown_path(".".join(parts)) == "layer0.layer1.layer2.…(294 more).layer297.layer298.layer299"
    few_long = "a" * 60 + "." + "b" * 60  # two names: cut by characters, both ends kept
    assert shown_path(few_long) == "a" * 39 + "…" + "b" * 39 and len(shown_path(few_long)) <= PATH_LIMIT
    assert shown_path("encoder.0.rnn") == "encoder.0.rnn" and shown_path("") == ""


@given(st.lists(st.text(alphabet="ab0–9xyz", min_size=1, max_size=30), max_size=40))
def test_a_label_spells_its_segments_and_shortens_as_shown_path_does(segments: list[str]):
    label = Label(None, "")
    for segment in segments:
        label = label.child(segment)
    whole = ".".join(segments)
    assert label.text() == whole and label.length == len(whole) and label.parts == len(segments)
    assert label.shown() == shown_path(whole)  # from three segments each side, without spelling the rest
    assert label.shortened == (len(whole) > PATH_LIMIT)


def test_every_line_of_a_deep_chain_keeps_its_label_as_a_link():
    model: nn.Module = nn.Linear(2, 2)
    for _ in range(300):
        model = nn.Sequential(model)
    report = summarize(model)
    lines, hidden = module_lines(report, None, fold=False)
    assert hidden == 0 and len(lines) == 301
    for line, row in zip(lines, report.rows, strict=True):
        assert line.label == row.name and line.path == row.name and line.node is row.path
        assert line.shown == shown_path(row.name) and line.shortened == (len(row.name) > PATH_LIMIT)
    text = report.render(max_depth=None, fold=False)
    assert "0.0.0.…(294 more).0.0.0" in text and max(map(len, text.splitlines())) <= PATH_LIMIT + 50
