"""torchaudio's ``_CustomLSTM`` (the Emformer RNN-T predictor), read from the real package.

torchaudio's PyPI wheels are CUDA builds whose compiled extension does not load beside the
CPU torch; its models are pure Python. CI installs it with ``--no-deps`` and sets the
unloadable extension aside (see .ci/run).
"""

from __future__ import annotations

import pytest

from tests import helpers
from torchlstm_params.recurrence import recurrence_formula
from torchlstm_params.thirdparty.audio import custom_lstm

rnnt = pytest.importorskip(
    "torchaudio.models.rnnt", reason="torchaudio is not installed (pip install --no-deps torchaudio; see .ci/run)"
)


def test_emformer_rnnt_base_predictor_is_three_layer_normed_custom_lstms():
    # torchaudio's documented base model (EMFORMER_RNNT_BASE_LIBRISPEECH uses 4097 symbols).
    model = rnnt.emformer_rnnt_base(num_symbols=4097)
    kinds = {f"predictor.lstm_layers.{k}": "_CustomLSTM" for k in range(3)}
    report = helpers.assert_recognised(model, kinds)
    # By hand: x2g 4·512·512 (no bias with layer norm), p2g 4·512·512, c_norm 2·512, g_norm 2·2048.
    entry = report.recurrent[0]
    assert entry.formula_params == 4 * 512 * 512 * 2 + 2 * 512 + 2 * 2048 == 2_102_272
    assert not entry.spec.bias
    assert entry.formula.derivation == "4·512·512 + 4·512·512 + 2·512 + 2·2048 = 2,102,272"


def test_without_layer_norm_x2g_keeps_its_bias():
    # emformer_rnnt_model's documented keywords, at a small size, with the layer norm off.
    model = rnnt.emformer_rnnt_model(
        input_dim=80,
        encoding_dim=96,
        num_symbols=30,
        segment_length=4,
        right_context_length=1,
        time_reduction_input_dim=128,
        time_reduction_stride=4,
        transformer_num_heads=4,
        transformer_ffn_dim=256,
        transformer_num_layers=2,
        transformer_dropout=0.1,
        transformer_activation="gelu",
        transformer_left_context_length=0,
        transformer_max_memory_size=0,
        transformer_weight_init_scale_strategy="depthwise",
        transformer_tanh_on_mem=True,
        symbol_embedding_dim=64,
        num_lstm_layers=2,
        lstm_layer_norm=False,
        lstm_layer_norm_epsilon=1e-5,
        lstm_dropout=0.1,
    )
    report = helpers.assert_recognised(
        model, {"predictor.lstm_layers.0": "_CustomLSTM", "predictor.lstm_layers.1": "_CustomLSTM"}
    )
    entry = report.recurrent[1]
    assert entry.spec.bias
    assert entry.formula_params == 4 * 64 * 64 + 4 * 64 + 4 * 64 * 64


def test_a_tampered_gate_matrix_is_named():
    model = rnnt.emformer_rnnt_base(num_symbols=4097).predictor
    helpers.assert_tamper_named(model, "lstm_layers.1", "p2g.weight")


def test_a_missing_layer_norm_is_named():
    model = rnnt.emformer_rnnt_base(num_symbols=4097).predictor
    del model.lstm_layers[0].g_norm.bias
    model.lstm_layers[0].g_norm.register_parameter("bias", None)
    from torchlstm_params import summarize

    entry = summarize(model).recurrent[0]
    assert [(f.tensor, f.problem) for f in entry.findings] == [("g_norm.bias", "missing")]


def test_the_checkpoint_agrees_with_the_live_model(tmp_path):
    live, saved = helpers.checkpoint_rows(rnnt.emformer_rnnt_base(num_symbols=4097), tmp_path / "rnnt.pt")
    assert len(live) == 3
    assert live == saved


def test_the_description_is_the_classes_tensors():
    module = rnnt._CustomLSTM(7, 5, layer_norm=True)
    f = recurrence_formula(custom_lstm(7, 5, True))
    assert dict(zip(f.names, f.shapes, strict=True)) == {n: tuple(p.shape) for n, p in module.named_parameters()}
