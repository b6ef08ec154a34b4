"""The meta-device stand-in built from a state dict's metadata: real torch classes, the checkpoint's own tensors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType

import pytest
import torch
from hypothesis import given, settings
from torch import nn

from tests.strategies import Config, configs
from torchlstm_params import summarize
from torchlstm_params.standin import BUFFER_NAMES, TensorMeta, build_stand_in


def metadata(state: dict[str, torch.Tensor]) -> dict[str, TensorMeta]:
    return {name: TensorMeta(tuple(t.shape), t.dtype) for name, t in state.items()}


@settings(max_examples=60, deadline=None)
@given(configs())
def test_a_recurrent_stand_in_is_the_torch_class_with_the_torch_settings_and_tensors(config: Config):
    with torch.device("meta"):
        live = nn.Sequential(config.build())
    built = build_stand_in(metadata(live.state_dict()))
    stand_in = built.model._modules["0"]
    assert type(stand_in) is type(live[0])
    for name in ("input_size", "hidden_size", "bias", "num_layers", "bidirectional", "proj_size"):
        assert getattr(stand_in, name, None) == getattr(live[0], name, None)
    got = {n: tuple(t.shape) for n, t in built.model.state_dict().items()}
    assert got == {n: tuple(t.shape) for n, t in live.state_dict().items()}
    assert summarize(built.model).recurrent[0].formula_params == sum(p.numel() for p in live.parameters())


def _torch_init_calls(build: Callable[[], object]) -> list[str]:
    """The calls of torch's RNNBase.__init__ and reset_parameters made while ``build`` runs (by the profiler
    hook: deterministic, where timing the build against torch's own was not)."""
    watched = {nn.RNNBase.__init__.__code__, nn.RNNBase.reset_parameters.__code__}
    calls: list[str] = []

    def profiler(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code in watched:
            calls.append(frame.f_code.co_name)

    sys.setprofile(profiler)
    try:
        build()
    finally:
        sys.setprofile(None)
    return calls


def test_torch_init_is_not_run_for_a_stand_in():
    # torch's RNNBase.__init__ loops over layers creating and initialising weights; the stand-in does not.
    state = {
        f"rnn.{r}_l{k}": TensorMeta((4, 1), torch.float32) for k in range(2000) for r in ("weight_ih", "weight_hh")
    }
    state["rnn.weight_ih_l0"] = TensorMeta((4, 3), torch.float32)
    built: list[nn.Module] = []
    assert _torch_init_calls(lambda: built.append(build_stand_in(state).model)) == []
    rnn = built[0]._modules["rnn"]
    assert isinstance(rnn, nn.LSTM) and rnn.num_layers == 2000
    assert list(rnn._parameters) == list(rnn._flat_weights_names)  # the checkpoint's tensors, nothing more
    with torch.device("meta"):  # the hook sees torch's own build: the check above can fail
        assert _torch_init_calls(lambda: nn.LSTM(3, 1, num_layers=2, bias=False)) == ["__init__", "reset_parameters"]


def test_buffers_by_dtype_and_conventional_name():
    names = [
        "bn.running_mean",
        "bn.num_batches_tracked",
        "ligru.drop_masks",
        "tft._mask",
        "attn.attn_mask",
        "emb.position_ids",
        "rope.inv_freq",
        "rope.cos_cached",
        "fc.weight",
        "fc.masked_weight",
        "counts",
    ]
    state = {n: TensorMeta((2,), torch.float32) for n in names}
    state["counts"] = TensorMeta((2,), torch.int32)
    built = build_stand_in(state)
    assert set(built.buffers) == set(names) - {"fc.weight", "fc.masked_weight"}
    assert BUFFER_NAMES.fullmatch("masked_weight") is None
    assert not built.trainable_recorded
    assert "a state dict does not record which tensors are buffers" in built.notes[-1]
    overridden = build_stand_in(state, buffers=r"^fc\.")
    assert set(overridden.buffers) == {"fc.weight", "fc.masked_weight", "counts"}  # integers stay buffers


def test_ties_follow_the_storage_identity_the_reader_gives():
    same = ("storage-0", 0, (1,))
    state = {
        "a.weight": TensorMeta((4,), torch.float32, same),
        "b.weight": TensorMeta((4,), torch.float32, same),
        "c.weight": TensorMeta((4,), torch.float32, ("storage-0", 4, (1,))),  # same storage, another view
        "d.weight": TensorMeta((4,), torch.float32, None),  # no identity (meta): never tied
        "e.weight": TensorMeta((4,), torch.float32, None),
    }
    model = build_stand_in(state).model
    report = summarize(model)
    assert report.total_params == 16
    assert [s.names for s in report.shared] == [("a.weight", "b.weight")]


def test_any_key_is_held_as_it_is():
    keys = ["training", "forward.weight", "a", "a.b", "", "a..b", "x.", "_parameters", "__dict__", "lstm.mode"]
    state = {k: TensorMeta((1,), torch.float32) for k in keys}
    model = build_stand_in(state).model
    assert model.training is True  # the tensor "training" did not replace the flag
    assert sorted(model.state_dict()) == sorted(keys)
    assert summarize(model).total_params == len(keys)


def test_deep_keys_need_no_recursion():
    key = ".".join(["m"] * 5000) + ".weight"
    model = build_stand_in({key: TensorMeta((3,), torch.float32)}).model
    assert summarize(model).total_params == 3


def test_stand_ins_share_one_read_only_hook_registry():
    model = build_stand_in({"a.weight": TensorMeta((2,), torch.float32), "b.weight": TensorMeta((2,), torch.float32)})
    a, b = model.model._modules["a"], model.model._modules["b"]
    assert a._forward_hooks is b._forward_hooks and len(a._forward_hooks) == 0
    assert a._parameters is not b._parameters
    with pytest.raises(TypeError):  # refused loudly: a stand-in runs no forward
        a.register_forward_hook(lambda *args: None)
    assert len(b._forward_hooks) == 0
