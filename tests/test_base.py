"""thirdparty.base: reading a library module's settings."""

from __future__ import annotations

import pytest
from torch import nn

from torchlstm_params.thirdparty.base import setting


def test_settings_are_read_as_ints_or_refused_naming_the_attribute():
    module = nn.Module()
    module.__dict__.update(a=3.0, b=2.5, c="x")
    assert setting(module, "a") == 3
    with pytest.raises(ValueError, match="b should be an int, got: float"):
        setting(module, "b")
    with pytest.raises(ValueError, match="c should be an int, got: str"):
        setting(module, "c")
