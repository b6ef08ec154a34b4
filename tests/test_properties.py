"""Property: for any settings torch accepts, formula == sum of numels, name by name."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import Config, configs
from torchlstm_params import summarize


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_formula_equals_torch_tensors_on_meta(config: Config):
    with torch.device("meta"):
        module = config.build()
    spec = config.spec()
    report = summarize(module)
    (entry,) = report.recurrent
    real = {name: tuple(p.shape) for name, p in module.named_parameters()}
    expected = {t.name: t.shape for layer in entry.formula.layers for t in layer.tensors}
    assert expected == real
    assert entry.spec == spec
    assert entry.formula_params == sum(p.numel() for p in module.parameters())
    assert entry.tensor_params == entry.formula_params
    assert entry.matches
    assert report.total_params == entry.formula_params


DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), st.data())
def test_trainable_and_dtype_figures_follow_each_tensor(config: Config, data: st.DataObject):
    """Frozen tensors and mixed dtypes inside a recurrent module: every figure equals torch's own sums."""
    with torch.device("meta"):
        module = config.build()
    for name, p in list(module.named_parameters()):
        p.requires_grad_(data.draw(st.booleans(), label=f"{name} trainable"))
        dtype = data.draw(st.sampled_from(DTYPES), label=f"{name} dtype")
        setattr(module, name, torch.nn.Parameter(p.to(dtype), requires_grad=p.requires_grad))
    report = summarize(module)
    params = list(module.parameters())
    assert report.total_params == sum(p.numel() for p in params)
    assert report.trainable_params == sum(p.numel() for p in params if p.requires_grad)
    by_dtype: dict[str, int] = {}
    for p in params:
        key = str(p.dtype).removeprefix("torch.")
        by_dtype[key] = by_dtype.get(key, 0) + p.numel() * p.element_size()
    assert report.bytes_by_dtype == by_dtype
    (entry,) = report.recurrent
    assert entry.matches
