"""torch-geometric-temporal's graph-convolutional recurrent cells, built by the real package
(the configurations of its documented examples: 4 node features, 32 channels, K = 2 or 1)."""

from __future__ import annotations

import importlib.util

import pytest

from tests import helpers
from torchlstm_params.recurrence import recurrence_formula
from torchlstm_params.thirdparty.graph import dcrnn, gc_lstm, gconv_gru, gconv_lstm, tgcn

helpers.import_quietly("torch_geometric", reason="torch-geometric is not installed (see .ci/thirdparty.txt)")
if importlib.util.find_spec("torch_geometric_temporal") is None:  # its __init__ may not import: see tgt_recurrent
    pytest.skip("torch-geometric-temporal is not installed (see .ci/run)", allow_module_level=True)

F, H = 4, 32  # node features, out_channels


def _make(name: str, cls: str, *args: object, **kwargs: object):
    return getattr(helpers.tgt_recurrent(name), cls)(*args, **kwargs)


CASES = [
    # (module file, class, args, kwargs, count by hand)
    ("gconv_lstm", "GConvLSTM", (F, H, 2), {}, 4 * (2 * F * H + H) + 4 * (2 * H * H + H) + 3 * H + 4 * H),
    ("gconv_lstm", "GConvLSTM", (F, H, 1), {"bias": False}, 4 * (F * H) + 4 * (H * H) + 3 * H + 4 * H),
    ("gconv_gru", "GConvGRU", (F, H, 2), {}, 3 * (2 * F * H + H) + 3 * (2 * H * H + H)),
    ("gc_lstm", "GCLSTM", (F, H, 2), {}, 4 * F * H + 4 * (2 * H * H + H) + 4 * H),
    ("temporalgcn", "TGCN", (F, H), {}, 3 * (F * H + H) + 3 * (2 * H * H + H)),
    ("dcrnn", "DCRNN", (F, H, 1), {}, 3 * (2 * 1 * (F + H) * H + H)),
    ("dcrnn", "DCRNN", (F, H, 3), {}, 3 * (2 * 3 * (F + H) * H + H)),  # (bias=False fails in DConv's own init)
]


@pytest.mark.parametrize(("name", "cls", "args", "kwargs", "by_hand"), CASES)
def test_recognised_with_the_count_by_hand(name, cls, args, kwargs, by_hand):
    model = _make(name, cls, *args, **kwargs)
    report = helpers.assert_recognised(model, {"": cls})
    assert report.recurrent[0].formula_params == by_hand


def test_a3tgcn_is_covered_through_its_tgcn():
    helpers.tgt_recurrent("temporalgcn")  # the module attentiontemporalgcn imports relatively
    model = _make("attentiontemporalgcn", "A3TGCN", F, H, periods=12)
    report = helpers.assert_recognised(model, {"_base_tgcn": "TGCN"})
    assert report.total_params == report.recurrent[0].formula_params + 12  # the attention over 12 periods


@pytest.mark.parametrize(
    ("name", "cls", "args", "tensor"),
    [
        ("gconv_lstm", "GConvLSTM", (F, H, 2), "w_c_f"),
        ("gconv_gru", "GConvGRU", (F, H, 2), "conv_h_r.lins.1.weight"),
        ("gc_lstm", "GCLSTM", (F, H, 2), "W_o"),
        ("temporalgcn", "TGCN", (F, H), "linear_h.weight"),
        ("dcrnn", "DCRNN", (F, H, 2), "conv_x_r.weight"),
    ],
)
def test_a_tampered_tensor_is_named(name, cls, args, tensor):
    helpers.assert_tamper_named(_make(name, cls, *args), "", tensor)


@pytest.mark.parametrize(("name", "cls", "args", "kwargs", "by_hand"), CASES)
def test_the_checkpoint_agrees_with_the_live_model(name, cls, args, kwargs, by_hand, tmp_path):
    live, saved = helpers.checkpoint_rows(_make(name, cls, *args, **kwargs), tmp_path / "gnn.pt")
    assert len(live) == 1
    assert live == saved


def test_the_descriptions_are_the_classes_tensors():
    pairs = [
        (_make("gconv_lstm", "GConvLSTM", 3, 5, 3), gconv_lstm(3, 5, 3, True)),
        (_make("gconv_gru", "GConvGRU", 3, 5, 2, bias=False), gconv_gru(3, 5, 2, False)),
        (_make("gc_lstm", "GCLSTM", 3, 5, 2), gc_lstm(3, 5, 2, True)),
        (_make("temporalgcn", "TGCN2", 3, 5, batch_size=2), tgcn(3, 5, "TGCN2")),
        (_make("dcrnn", "DCRNN", 3, 5, 2), dcrnn(3, 5, 2, True)),
    ]
    for module, description in pairs:
        f = recurrence_formula(description)
        assert dict(zip(f.names, f.shapes, strict=True)) == {n: tuple(p.shape) for n, p in module.named_parameters()}
