"""Command-line specs -> models, built on the meta device (no weights allocated).

A layer expression such as ``"LSTM(10, 20, num_layers=2)"`` is parsed with
``ast`` and only literal arguments are accepted: nothing is ever ``eval``-ed.
A factory ``package.module:callable`` is imported and called.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable, Mapping

import torch
from torch import nn

from .errors import SpecError

__all__ = ["LAYERS", "build_expression", "build_factory", "is_expression", "parse_expression"]

#: The layer names an expression may call, with or without ``nn.`` / ``torch.nn.``.
LAYERS: dict[str, type[nn.Module]] = {
    "LSTM": nn.LSTM,
    "GRU": nn.GRU,
    "RNN": nn.RNN,
    "LSTMCell": nn.LSTMCell,
    "GRUCell": nn.GRUCell,
    "RNNCell": nn.RNNCell,
}
_PREFIXES = ("", "nn.", "torch.nn.")


def is_expression(text: str) -> bool:
    """True when ``text`` looks like ``Name(...)``: factory paths never hold a parenthesis."""
    return "(" in text


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def parse_expression(text: str) -> tuple[type[nn.Module], tuple[object, ...], dict[str, object]]:
    """``"nn.GRU(8, 16, bidirectional=True)"`` -> ``(nn.GRU, (8, 16), {"bidirectional": True})``."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SpecError(f"cannot parse layer expression {text!r}: {exc.msg} at column {exc.offset}") from None
    call = tree.body
    if not isinstance(call, ast.Call):
        raise SpecError(f"a layer expression is one call such as 'LSTM(10, 20)', got {text!r}")
    name = _dotted(call.func)
    cls = None
    if name is not None:
        for prefix in _PREFIXES:
            if name.startswith(prefix) and name[len(prefix) :] in LAYERS:
                cls = LAYERS[name[len(prefix) :]]
    if cls is None:
        raise SpecError(f"unknown layer {name or ast.unparse(call.func)!r}; expected one of {', '.join(LAYERS)}")
    try:
        args = tuple(ast.literal_eval(a) for a in call.args)
        kwargs = {}
        for kw in call.keywords:
            if kw.arg is None:
                raise SpecError(f"'**' is not allowed in a layer expression: {text!r}")
            kwargs[kw.arg] = ast.literal_eval(kw.value)
    except SpecError:  # a ValueError too: it names what is wrong already
        raise
    except ValueError:
        raise SpecError(
            f"layer expression arguments must be literals (numbers, strings, True/False): {text!r}"
        ) from None
    return cls, args, kwargs


def build_expression(text: str) -> nn.Module:
    """Build the layer an expression names, on the meta device."""
    cls, args, kwargs = parse_expression(text)
    try:
        with torch.device("meta"):
            return cls(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{text}: {exc}") from None


def build_factory(target: str, kwargs: Mapping[str, object] | None = None) -> nn.Module:
    """Import ``package.module:callable`` and call it, on the meta device when it allows."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise SpecError(f"a factory is 'package.module:callable', got {target!r}")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"cannot import {module_name!r} for factory {target!r}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SpecError(f"{module_name!r} has no attribute {attr!r} (factory {target!r})") from None
    if not callable(obj):
        raise SpecError(f"factory {target!r} is a {type(obj).__name__}, not a callable")
    factory: Callable[..., object] = obj
    options = dict(kwargs or {})
    try:
        with torch.device("meta"):
            model = factory(**options)
    except Exception:  # noqa: BLE001 - a factory may refuse meta; build it for real then
        try:
            model = factory(**options)
        except Exception as exc:  # noqa: BLE001 - user code: report, never a traceback
            raise SpecError(f"factory {target!r} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise SpecError(f"factory {target!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model
