"""speechbrain's LiGRU, SLiGRU and QuasiRNN, built by the real package from its documented examples."""

from __future__ import annotations

import pytest

from tests import helpers
from torchlstm_params import summarize
from torchlstm_params.recurrence import recurrence_formula
from torchlstm_params.thirdparty.speech import ligru, quasi_rnn

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
