"""Sizing: the largest hidden size within a parameter budget, and the configurations closest to a target.

Exact: both search the closed-form PyTorch count of :mod:`torchlstm_params.formulas`.

>>> fit_hidden_size("LSTM", 300, 5_000_000, num_layers=2)
596
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from .errors import InvalidSettingsError
from .formulas import count_params

__all__ = ["closest_configs", "fit_hidden_size"]

_T = TypeVar("_T")


def fit_hidden_size(
    kind: str,
    input_size: int,
    budget: int,
    num_layers: int = 1,
    *,
    bidirectional: bool = False,
    proj_size: int = 0,
    bias: bool = True,
) -> int:
    """The largest hidden size whose PyTorch parameter count fits ``budget`` (exact).

    >>> fit_hidden_size("LSTM", 10, 2560)
    20
    """
    _require_count("fit_hidden_size", "budget", budget)
    _require_count("fit_hidden_size", "proj_size", proj_size)

    def count(h: int) -> int:
        return count_params(
            kind, input_size, h, num_layers, bias=bias, bidirectional=bidirectional, proj_size=proj_size
        )

    low = proj_size + 1  # the smallest hidden size these settings allow
    if count(low) > budget:
        raise InvalidSettingsError(
            f"budget {budget:,} is below the smallest {kind} with these settings: hidden_size={low} "
            f"needs {count(low):,} parameters"
        )
    high = low + 1
    while count(high) <= budget:  # the count grows at least quadratically: few doublings
        high *= 2
    while high - low > 1:  # invariant: count(low) <= budget < count(high)
        mid = (low + high) // 2
        if count(mid) <= budget:
            low = mid
        else:
            high = mid
    return low


def closest_configs(
    kind: str,
    input_size: int,
    target: int,
    *,
    layers: Sequence[int] = (1, 2, 3, 4),
    directions: Sequence[bool] = (False, True),
    bias: bool = True,
) -> list[tuple[int, bool, int, int]]:
    """For each (num_layers, bidirectional), the hidden size whose count is closest to ``target``.

    Returns ``(num_layers, bidirectional, hidden_size, params)`` sorted by distance to the target.
    """
    _require_count("closest_configs", "target", target)
    layer_counts = _items("layers", layers)
    bidirectional = _items("directions", directions)
    rows = []
    for n in layer_counts:
        for bidi in bidirectional:
            try:
                h = fit_hidden_size(kind, input_size, target, n, bidirectional=bidi, bias=bias)
            except InvalidSettingsError:
                h = 0
            candidates = [c for c in (h, h + 1) if c >= 1]
            counted = [(count_params(kind, input_size, c, n, bias=bias, bidirectional=bidi), c) for c in candidates]
            params, best = min(counted, key=lambda pc: (abs(pc[0] - target), pc[1]))
            rows.append((n, bidi, best, params))
    rows.sort(key=lambda row: (abs(row[3] - target), row[0], row[1]))
    return rows


def _require_count(caller: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        kind = type(value).__name__
        raise InvalidSettingsError(f"{caller}(): {name} must be an int >= 0, got: {kind} ({value!r:.80})")


def _items(name: str, values: Iterable[_T]) -> tuple[_T, ...]:
    """``values`` as a tuple (each item is checked where it is used: as num_layers or bidirectional)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidSettingsError(f"closest_configs(): {name} must be a sequence, got: {values!r:.80}")
    return tuple(values)
