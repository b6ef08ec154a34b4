"""Property: for any settings torch accepts, formula == sum of numels, name by name."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings

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
    expected = {t.name: t.shape for layer in entry.breakdown for t in layer.tensors}
    assert expected == real
    assert entry.spec == spec
    assert entry.formula_params == sum(p.numel() for p in module.parameters())
    assert entry.tensor_params == entry.formula_params
    assert entry.matches
    assert report.total_params == entry.formula_params
