"""speechbrain's LiGRU, SLiGRU, QuasiRNN and its quaternion- and complex-valued RNNs, built by the real
package from its documented examples."""

from __future__ import annotations

import pytest
import torch

from tests import helpers
from torchlstm_params import summarize
from torchlstm_params.recurrence import recurrence_formula
from torchlstm_params.thirdparty import infer_checkpoint
from torchlstm_params.thirdparty.speech import hypercomplex_rnn, ligru, quasi_rnn

RNN = helpers.speechbrain_rnn(reason="speechbrain is not installed (pip install --no-deps speechbrain; see .ci/run)")


def test_ligru_docstring_example():
    # speechbrain's example: LiGRU(input_shape=inp_tensor.shape, hidden_size=5), inp_tensor = rand([4, 10, 20]).
    net = RNN.LiGRU(input_shape=[4, 10, 20], hidden_size=5)
    report = helpers.assert_recognised(net, {"": "LiGRU"})
    # By hand: w 2·5·20, u 2·5·5, batch norm weight and bias 2·(2·5); no bias vectors.
    assert report.recurrent[0].formula_params == 2 * 5 * 20 + 2 * 5 * 5 + 2 * 10 == 270
    assert report.recurrent[0].spec.gate_groups == "2"


def test_bidirectional_ligru_shares_its_weights_and_feeds_2h_upward():
    net = RNN.LiGRU(input_shape=[4, 10, 20], hidden_size=5, num_layers=3, bidirectional=True, normalization="layernorm")
    report = helpers.assert_recognised(net, {"": "LiGRU"})
    layer0 = 2 * 5 * 20 + 2 * 5 * 5 + 2 * 10
    upper = 2 * 5 * 10 + 2 * 5 * 5 + 2 * 10  # reads both directions' 2h outputs, one set of weights
    assert report.recurrent[0].formula_params == layer0 + 2 * upper
    assert report.recurrent[0].spec.shared_directions
    assert "one set of weights" in report.render(explain=True)


def test_sligru_docstring_example_and_its_affine_recurrent_norm():
    helpers.assert_recognised(RNN.SLiGRU(input_shape=[4, 10, 20], hidden_size=5), {"": "SLiGRU"})
    net = RNN.SLiGRU(input_shape=[4, 10, 20], hidden_size=5, recurrent_elementwise_affine=True, num_layers=2)
    report = helpers.assert_recognised(net, {"": "SLiGRU"})
    assert report.recurrent[0].formula_params == 270 + 20 + (2 * 5 * 5 + 2 * 5 * 5 + 2 * 10 + 20)


def test_quasi_rnn_docstring_example():
    # speechbrain's example: QuasiRNN(256, num_layers=4, input_shape=a.shape, bidirectional=True),
    # a = rand([8, 120, 40]).
    model = RNN.QuasiRNN(256, num_layers=4, input_shape=[8, 120, 40], bidirectional=True)
    report = helpers.assert_recognised(model, {"": "QuasiRNN"})
    h = 256
    assert report.recurrent[0].formula_params == (3 * h * 40 + 3 * h) + 3 * (3 * h * 2 * h + 3 * h)


def test_quasi_rnn_without_output_gate_has_two_gate_groups():
    model = RNN.QuasiRNN(16, input_size=8, num_layers=2, output_gate=False)
    report = helpers.assert_recognised(model, {"": "QuasiRNN"})
    assert report.recurrent[0].formula_params == (2 * 16 * 8 + 32) + (2 * 16 * 16 + 32)


@pytest.mark.parametrize(
    ("make", "tensor"),
    [
        (lambda: RNN.LiGRU(input_shape=[4, 10, 20], hidden_size=5, num_layers=2), "rnn.1.u.weight"),
        (lambda: RNN.SLiGRU(input_shape=[4, 10, 20], hidden_size=5), "rnn.0.w.weight"),
        (lambda: RNN.QuasiRNN(16, input_size=8, num_layers=2), "qrnn.1.w.weight"),
    ],
)
def test_a_tampered_tensor_is_named(make, tensor):
    helpers.assert_tamper_named(make(), "", tensor)


def test_dropout_masks_are_buffers_not_parameters():
    net = RNN.LiGRU(input_shape=[4, 10, 20], hidden_size=5)
    report = summarize(net)
    assert report.buffer_elements >= 16_000 * 5
    assert report.total_params == 270


@pytest.mark.parametrize(
    "make",
    [
        lambda: RNN.LiGRU(input_shape=[4, 10, 20], hidden_size=5, num_layers=2, bidirectional=True),
        lambda: RNN.SLiGRU(input_shape=[4, 10, 20], hidden_size=5, num_layers=2),
        lambda: RNN.SLiGRU(input_shape=[4, 10, 20], hidden_size=5, recurrent_elementwise_affine=True),
    ],
)
def test_the_checkpoint_agrees_with_the_live_model(make, tmp_path):
    live, saved = helpers.checkpoint_rows(make(), tmp_path / "ligru.pt")
    assert len(live) == 1
    assert live == saved


def test_the_descriptions_are_the_classes_tensors():
    pairs = [
        (RNN.LiGRU(input_shape=[2, 3, 7], hidden_size=4, num_layers=2), ligru(7, 4, 2, False)),
        (
            RNN.SLiGRU(input_shape=[2, 3, 7], hidden_size=4, recurrent_elementwise_affine=True),
            ligru(7, 4, 1, False, kind="SLiGRU", recurrent_norm=True),
        ),
        (RNN.QuasiRNN(4, input_size=7, num_layers=2, bidirectional=True), quasi_rnn(7, 4, 2, True, True)),
    ]
    for module, description in pairs:
        f = recurrence_formula(description)
        assert dict(zip(f.names, f.shapes, strict=True)) == {n: tuple(p.shape) for n, p in module.named_parameters()}


# Quaternion- and complex-valued layers. Counts derived by hand from speechbrain's source: a QLinear
# (CLinear) holds c = 4 (2) matrices (in/c, n) and, with bias, a bias of c·n; the class's hidden_size h
# is in quaternion (complex) units, so a layer outputs c·h real features and the layers above read c·h
# (2·c·h bidirectional, both directions on one set of weights). Per layer, in_k its real input width:
#   QLSTM  w (in_k, 4h) + bias 16h, u (4h, 4h) + bias 16h    = 4h·in_k + 16h² + 32h
#   QRNN   w (in_k, h) + bias 4h, u (4h, h) + bias 4h         = h·in_k + 4h² + 8h
#   QLiGRU w (in_k, 2h), u (4h, 2h), QBatchNorm gamma 2h, beta 8h           = 2h·in_k + 8h² + 10h
#   CLSTM  w (in_k, 4h) + b 8h, u (2h, 4h) + b 8h             = 4h·in_k + 8h² + 16h
#   CRNN   w (in_k, h), u (2h, h), no bias                    = h·in_k + 2h²
#   CLiGRU w (in_k, 2h), u (2h, 2h), norm gamma_rr/ii/ri 2h each, beta 4h   = 2h·in_k + 4h² + 10h
# (the layers never read the class's bias setting). CLinear reads ⌊in/2⌋ complex features of an odd width.
QRNN = helpers.speechbrain_module(
    "speechbrain.nnet.quaternion_networks.q_RNN",
    reason="speechbrain is not installed (pip install --no-deps speechbrain; see .ci/run)",
)
CRNN = helpers.speechbrain_module(
    "speechbrain.nnet.complex_networks.c_RNN",
    reason="speechbrain is not installed (pip install --no-deps speechbrain; see .ci/run)",
)

PER_LAYER = {
    "QLSTM": lambda h, i: 4 * h * i + 16 * h * h + 32 * h,
    "QRNN": lambda h, i: h * i + 4 * h * h + 8 * h,
    "QLiGRU": lambda h, i: 2 * h * i + 8 * h * h + 10 * h,
    "CLSTM": lambda h, i: 4 * h * i + 8 * h * h + 16 * h,
    "CRNN": lambda h, i: h * i + 2 * h * h,
    "CLiGRU": lambda h, i: 2 * h * i + 4 * h * h + 10 * h,
}


def hand_count(kind, fea_dim, h, num_layers=1, bidirectional=False):
    c = 4 if kind.startswith("Q") else 2
    widths = [c * (fea_dim // c)] + [(2 if bidirectional else 1) * c * h] * (num_layers - 1)
    return sum(PER_LAYER[kind](h, width) for width in widths)


def hypercomplex(kind, **kwargs):
    return getattr(QRNN if kind.startswith("Q") else CRNN, kind)(**kwargs)


@pytest.mark.parametrize(
    ("kind", "fea_dim"),
    # speechbrain's examples: QLSTM(hidden_size=16, input_shape=inp_tensor.shape), inp_tensor =
    # rand([10, 16, 40]); the same for QRNN, QLiGRU and CLSTM; CRNN and CLiGRU on rand([10, 16, 30]).
    [("QLSTM", 40), ("QRNN", 40), ("QLiGRU", 40), ("CLSTM", 40), ("CRNN", 30), ("CLiGRU", 30)],
)
def test_hypercomplex_docstring_examples(kind, fea_dim):
    inp_tensor = torch.rand([10, 16, fea_dim])
    net = hypercomplex(kind, hidden_size=16, input_shape=inp_tensor.shape)
    report = helpers.assert_recognised(net, {"": kind})
    entry = report.recurrent[0]
    assert entry.formula_params == hand_count(kind, fea_dim, 16)
    assert (entry.spec.input_size, entry.spec.hidden_size) == (fea_dim, 16)
    assert report.hints == ()  # recognised: never listed as "looks recurrent"


def test_the_docstring_counts_written_out():
    # The six examples' counts, multiplied out by hand: h = 16, in = 40 (30 for CRNN and CLiGRU).
    nets = {
        "QLSTM": (40, 4 * 16 * 40 + 16 * 256 + 32 * 16),  # 2,560 + 4,096 + 512
        "QRNN": (40, 16 * 40 + 4 * 256 + 8 * 16),  # 640 + 1,024 + 128
        "QLiGRU": (40, 2 * 16 * 40 + 8 * 256 + 10 * 16),  # 1,280 + 2,048 + 160
        "CLSTM": (40, 4 * 16 * 40 + 8 * 256 + 16 * 16),  # 2,560 + 2,048 + 256
        "CRNN": (30, 16 * 30 + 2 * 256),  # 480 + 512
        "CLiGRU": (30, 2 * 16 * 30 + 4 * 256 + 10 * 16),  # 960 + 1,024 + 160
    }
    for kind, (fea_dim, count) in nets.items():
        net = hypercomplex(kind, hidden_size=16, input_shape=[10, 16, fea_dim])
        assert helpers.numel(net) == summarize(net).recurrent[0].formula_params == count, kind
    assert [n for _, n in nets.values()] == [7168, 1792, 3488, 4864, 992, 2144]


VARIED = [
    ("QLSTM", {"hidden_size": 8, "input_shape": [4, 10, 24], "num_layers": 3}),
    ("QLSTM", {"hidden_size": 4, "input_shape": [4, 10, 16], "num_layers": 2, "bidirectional": True, "bias": False}),
    ("QRNN", {"hidden_size": 4, "input_shape": [4, 10, 5, 4], "num_layers": 2, "bidirectional": True}),
    ("QLiGRU", {"hidden_size": 4, "input_shape": [4, 10, 12], "num_layers": 2, "bidirectional": True, "dropout": 0.2}),
    ("CLSTM", {"hidden_size": 6, "input_shape": [4, 10, 14], "num_layers": 2, "bias": False}),
    ("CRNN", {"hidden_size": 5, "input_shape": [4, 10, 8], "num_layers": 3, "bidirectional": True}),
    ("CLiGRU", {"hidden_size": 4, "input_shape": [4, 10, 10], "num_layers": 2, "normalization": "layernorm"}),
    ("CLiGRU", {"hidden_size": 3, "input_shape": [4, 10, 6], "num_layers": 2, "bidirectional": True}),
]


@pytest.mark.parametrize(("kind", "kwargs"), VARIED)
def test_hypercomplex_varied_configurations(kind, kwargs):
    net = hypercomplex(kind, **kwargs)
    report = helpers.assert_recognised(net, {"": kind})
    shape = kwargs["input_shape"]
    fea_dim = shape[2] * (shape[3] if len(shape) > 3 else 1)
    layers, bidirectional = kwargs.get("num_layers", 1), kwargs.get("bidirectional", False)
    assert report.recurrent[0].formula_params == hand_count(kind, fea_dim, kwargs["hidden_size"], layers, bidirectional)
    assert report.hints == ()


def test_the_class_bias_setting_is_not_passed_on_to_the_layers():
    # QLSTM(bias=False) still holds its biases; CRNN(bias=True) holds none.
    h = 4
    qlstm = QRNN.QLSTM(hidden_size=h, input_shape=[4, 10, 8], bias=False)
    entry = helpers.assert_recognised(qlstm, {"": "QLSTM"}).recurrent[0]
    assert entry.formula_params == 4 * h * 8 + 16 * h * h + 32 * h
    assert entry.spec.bias and "with bias vectors whatever the class's bias setting" in entry.spec.note
    crnn = CRNN.CRNN(hidden_size=h, input_shape=[4, 10, 8], bias=True)
    entry = helpers.assert_recognised(crnn, {"": "CRNN"}).recurrent[0]
    assert entry.formula_params == h * 8 + 2 * h * h
    assert not entry.spec.bias


def test_an_odd_complex_input_width_is_read_as_clinear_reads_it():
    # CLinear keeps ⌊31/2⌋ = 15 complex input features: w holds 2 matrices (15, 4h).
    net = CRNN.CLSTM(hidden_size=4, input_shape=[4, 10, 31])
    entry = helpers.assert_recognised(net, {"": "CLSTM"}).recurrent[0]
    assert entry.formula_params == 2 * 15 * 16 + 32 + 2 * 4 * 16 + 32
    assert "⌊in/2⌋" in entry.spec.closed_form
    assert "not a multiple of 2" in entry.spec.note


@pytest.mark.parametrize(
    ("kind", "kwargs", "tensor"),
    [
        ("QLSTM", {"hidden_size": 4, "input_shape": [4, 10, 8], "num_layers": 2}, "rnn.1.u.i_weight"),
        ("QRNN", {"hidden_size": 4, "input_shape": [4, 10, 8]}, "rnn.0.w.k_weight"),
        ("QLiGRU", {"hidden_size": 4, "input_shape": [4, 10, 8]}, "rnn.0.norm.gamma"),
        ("CLSTM", {"hidden_size": 4, "input_shape": [4, 10, 8]}, "rnn.0.u.b"),
        ("CRNN", {"hidden_size": 4, "input_shape": [4, 10, 8], "num_layers": 2}, "rnn.1.w.real_weight"),
        ("CLiGRU", {"hidden_size": 4, "input_shape": [4, 10, 8]}, "rnn.0.norm.gamma_ri"),
    ],
)
def test_a_tampered_hypercomplex_tensor_is_named(kind, kwargs, tensor):
    helpers.assert_tamper_named(hypercomplex(kind, **kwargs), "", tensor)


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        ("QLSTM", {"hidden_size": 16, "input_shape": [10, 16, 40]}),
        ("QRNN", {"hidden_size": 16, "input_shape": [10, 16, 40]}),
        ("QLiGRU", {"hidden_size": 16, "input_shape": [10, 16, 40]}),
        ("CLSTM", {"hidden_size": 16, "input_shape": [10, 16, 40]}),
        ("CRNN", {"hidden_size": 16, "input_shape": [10, 16, 30]}),
        ("CLiGRU", {"hidden_size": 16, "input_shape": [10, 16, 30]}),
        *VARIED,
    ],
)
def test_a_hypercomplex_checkpoint_agrees_with_the_live_model(kind, kwargs, tmp_path):
    live, saved = helpers.checkpoint_rows(hypercomplex(kind, **kwargs), tmp_path / "hypercomplex.pt")
    assert [row[:2] for row in live] == [("", kind)]
    assert live == saved


def test_an_odd_complex_width_reads_one_less_from_a_checkpoint(tmp_path):
    live, saved = helpers.checkpoint_rows(CRNN.CLSTM(hidden_size=4, input_shape=[4, 10, 31]), tmp_path / "odd.pt")
    assert (live[0][2], saved[0][2]) == (31, 30)  # the input size: the state dict holds 15 complex features
    assert [row[3:] for row in live] == [row[3:] for row in saved]


@pytest.mark.parametrize(("kind", "kwargs"), VARIED)
def test_the_hypercomplex_descriptions_are_the_classes_tensors_and_buffers(kind, kwargs):
    module = hypercomplex(kind, **kwargs)
    shape = kwargs["input_shape"]
    description = hypercomplex_rnn(
        kind,
        shape[2] * (shape[3] if len(shape) > 3 else 1),
        kwargs["hidden_size"],
        kwargs.get("num_layers", 1),
        kwargs.get("bidirectional", False),
        batchnorm=kwargs.get("normalization", "batchnorm") == "batchnorm",
    )
    f = recurrence_formula(description)
    assert dict(zip(f.names, f.shapes, strict=True)) == {n: tuple(p.shape) for n, p in module.named_parameters()}
    assert sorted(description.buffers) == sorted(n for n, _ in module.named_buffers())


def test_hypercomplex_checkpoint_anchors_need_their_companions():
    # Three gate groups fit no class; a QLSTM's shapes without its biases are not a QLSTM.
    assert infer_checkpoint({"rnn.0.u.r_weight": (4, 12), "rnn.0.w.r_weight": (2, 12), "rnn.0.h_init": (1, 16)}) == []
    assert infer_checkpoint({"rnn.0.u.r_weight": (4, 16), "rnn.0.w.r_weight": (2, 16)}) == []
    found = infer_checkpoint({"m.rnn.0.u.real_weight": (4, 4), "m.rnn.0.w.real_weight": (3, 4)})
    assert [(f.path, f.recurrence.kind, f.recurrence.input_size, f.recurrence.hidden_size) for f in found] == [
        ("m", "CRNN", 6, 4)
    ]
