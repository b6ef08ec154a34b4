"""Command-line specs -> models, built on the meta device (no weights allocated).

A layer expression such as ``"LSTM(10, 20, num_layers=2)"`` is parsed with
``ast`` and only literal arguments are accepted (and ``torch.<dtype>`` names for
``dtype=``): nothing is ever ``eval``-ed. Its arguments are bound to the
layer's own parameter names first, so a misspelt keyword or layer name is named
with the closest real one. A factory ``package.module:callable`` or
``path/to/file.py:callable`` is imported and called: naming one is asking for
its code to run.

Every failure is a :class:`~torchlstm_params.errors.SpecError` of one line that
quotes at most a short excerpt of what was typed.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import torch
from torch import nn

from .errors import SpecError

__all__ = [
    "LAYERS",
    "MAX_EXPRESSION_LENGTH",
    "LayerExpression",
    "build_expression",
    "build_factory",
    "excerpt",
    "is_expression",
    "parse_expression",
    "read_expression",
]

#: The layer names an expression may call, with or without ``nn.`` / ``torch.nn.``.
LAYERS: dict[str, type[nn.Module]] = {
    "LSTM": nn.LSTM,
    "GRU": nn.GRU,
    "RNN": nn.RNN,
    "LSTMCell": nn.LSTMCell,
    "GRUCell": nn.GRUCell,
    "RNNCell": nn.RNNCell,
}
#: The longest layer expression accepted (real ones are well under 200 characters).
MAX_EXPRESSION_LENGTH: Final = 10_000
_PREFIXES = ("", "nn.", "torch.nn.")
# torch's positional order: RNNBase's parameters after ``mode``; nn.RNN takes ``nonlinearity`` 4th.
_STACK: Final = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional")
_STACK_TAIL: Final = ("proj_size", "device", "dtype")
_PARAMETERS: Final[dict[str, tuple[str, ...]]] = {
    "LSTM": _STACK + _STACK_TAIL,
    "GRU": _STACK + _STACK_TAIL,
    "RNN": (*_STACK[:3], "nonlinearity", *_STACK[3:], *_STACK_TAIL),
    **{
        name: tuple(p for p in inspect.signature(LAYERS[name].__init__).parameters if p != "self")
        for name in ("LSTMCell", "GRUCell", "RNNCell")
    },
}


def excerpt(text: str, limit: int = 80) -> str:
    """``text`` quoted, or a short excerpt of it with its length when it is long.

    >>> excerpt("LSTM(" + "1" * 200 + ")", limit=12)
    "'LSTM(1111111...' (206 characters)"
    """
    if len(text) <= limit:
        return repr(text)
    quoted = repr(text[:limit])
    return f"{quoted[:-1]}...{quoted[-1]} ({len(text):,} characters)"


def _shown(text: str) -> str:
    """The expression as messages name it: itself when short, else an excerpt."""
    return text if len(text) <= 80 else excerpt(text)


def is_expression(text: str) -> bool:
    """True when ``text`` looks like ``Name(...)``: factory paths never hold a parenthesis."""
    return "(" in text


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name (walked iteratively: chains can be long)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _unparsed(node: ast.expr) -> str:
    try:
        return ast.unparse(node)
    except (RecursionError, MemoryError):
        return "(an expression nested too deeply to show)"


def _layer(func: ast.expr) -> type[nn.Module]:
    name = _dotted(func)
    if name is not None:
        for prefix in _PREFIXES:
            if name.startswith(prefix) and name[len(prefix) :] in LAYERS:
                return LAYERS[name[len(prefix) :]]
    shown = excerpt(_unparsed(func) if name is None else name, 40)
    bare = (name or "").rpartition(".")[2]
    by_lower = {layer.lower(): layer for layer in LAYERS}
    close = by_lower.get(bare.lower()) or next(iter(difflib.get_close_matches(bare.lower(), list(by_lower), n=1)), None)
    hint = f" (did you mean {by_lower.get(close, close)!r}?)" if close else ""
    raise SpecError(f"unknown layer {shown}{hint}; expected one of {', '.join(LAYERS)}")


def _value(node: ast.expr, text: str) -> object:
    dotted = _dotted(node)
    if dotted is not None and dotted.startswith("torch."):
        return dotted  # a torch name such as torch.float16: resolved (as a dtype only) when bound
    try:
        return ast.literal_eval(node)
    except (RecursionError, MemoryError):
        raise SpecError(f"layer expression nested too deeply: {excerpt(text)}") from None
    except (ValueError, TypeError, SyntaxError):
        raise SpecError(
            f"layer expression arguments must be literals (numbers, strings, True/False): {excerpt(text)}"
        ) from None


def parse_expression(text: str) -> tuple[type[nn.Module], tuple[object, ...], dict[str, object]]:
    """``"nn.GRU(8, 16, bidirectional=True)"`` -> ``(nn.GRU, (8, 16), {"bidirectional": True})``."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise SpecError(f"a layer expression has at most {MAX_EXPRESSION_LENGTH:,} characters, got {excerpt(text, 40)}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SpecError(f"cannot parse layer expression {excerpt(text)}: {exc.msg} at column {exc.offset}") from None
    except (RecursionError, MemoryError):
        raise SpecError(f"layer expression nested too deeply to parse: {excerpt(text)}") from None
    call = tree.body
    if not isinstance(call, ast.Call):
        raise SpecError(f"a layer expression is one call such as 'LSTM(10, 20)', got {excerpt(text)}")
    cls = _layer(call.func)
    args = tuple(_value(a, text) for a in call.args)
    kwargs: dict[str, object] = {}
    for kw in call.keywords:
        if kw.arg is None:
            raise SpecError(f"'**' is not allowed in a layer expression: {excerpt(text)}")
        if kw.arg in kwargs:
            raise SpecError(f"keyword argument repeated: {kw.arg!r} in {excerpt(text)}")
        kwargs[kw.arg] = _value(kw.value, text)
    return cls, args, kwargs


def _dtype(value: object, text: str) -> torch.dtype:
    names = sorted(n for n in dir(torch) if isinstance(getattr(torch, n, None), torch.dtype))
    name = value.removeprefix("torch.") if isinstance(value, str) else None
    if name in names:
        found = getattr(torch, name)
        assert isinstance(found, torch.dtype)
        return found
    hint = next(iter(difflib.get_close_matches(name or "", names, n=1)), None)
    did = f" (did you mean {hint!r}?)" if hint else ""
    raise SpecError(f"{_shown(text)}: dtype {value!r:.40} is not a torch dtype{did}; e.g. 'float16' or torch.bfloat16")


@dataclass(frozen=True, slots=True)
class LayerExpression:
    """A parsed layer expression: the layer class and its arguments bound to their names.

    ``settings`` holds every argument given, by torch's parameter name, except ``device``
    and ``dtype``: ``dtype`` is resolved to a ``torch.dtype``, and ``device`` is read and
    set aside (an expression is built on ``meta``; counts do not depend on the device).
    """

    text: str
    cls: type[nn.Module]
    settings: dict[str, object]
    dtype: torch.dtype | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> str:
        return self.cls.__name__

    @property
    def num_layers(self) -> object:
        return self.settings.get("num_layers", 1)

    def build(self, num_layers: int | None = None) -> nn.Module:
        """The layer on the meta device; ``num_layers`` builds a shallower stand-in instead."""
        kwargs = dict(self.settings)
        if num_layers is not None:
            kwargs["num_layers"] = num_layers
        if self.dtype is not None:
            kwargs["dtype"] = self.dtype
        try:
            with torch.device("meta"):
                return self.cls(**kwargs)
        except Exception as exc:  # noqa: BLE001 - torch's own refusal (a size, an overflow): one line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise SpecError(f"{_shown(self.text)}: {first}") from None


def read_expression(text: str) -> LayerExpression:
    """Parse ``text`` and bind its arguments to the layer's parameter names (nothing is built)."""
    cls, args, kwargs = parse_expression(text)
    names = _PARAMETERS[cls.__name__]
    if len(args) > len(names):
        raise SpecError(f"{_shown(text)}: {cls.__name__} takes at most {len(names)} arguments, got {len(args)}")
    settings: dict[str, object] = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            raise SpecError(
                f"{_shown(text)}: {cls.__name__} has no argument {excerpt(key, 40)}"
                f"{_did_you_mean(key, names)}; it takes {', '.join(names)}"
            )
        if key in settings:
            raise SpecError(f"{_shown(text)}: {key} is given twice (by position and by name)")
        settings[key] = value
    for key, value in settings.items():
        if isinstance(value, str) and value.startswith("torch.") and key != "dtype":
            raise SpecError(f"{_shown(text)}: {key}={value} is not a literal; only dtype= takes a torch name")
    notes: list[str] = []
    if "device" in settings:
        device = settings.pop("device")
        try:
            torch.device(device)  # type: ignore[call-overload]
        except (RuntimeError, TypeError) as exc:
            raise SpecError(f"{_shown(text)}: device {device!r:.40} is not a torch device ({exc})") from None
        notes.append(
            f"device={device!r:.40} set aside: a layer expression is built on the meta device, and its "
            "counts do not depend on the device"
        )
    dtype = _dtype(settings.pop("dtype"), text) if "dtype" in settings else None
    return LayerExpression(text, cls, settings, dtype, tuple(notes))


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def build_expression(text: str) -> nn.Module:
    """Build the layer an expression names, on the meta device."""
    return read_expression(text).build()


def _import(module_name: str, target: str) -> object:
    """The module a factory names: a dotted module name, or a ``.py`` file's path."""
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        file = Path(module_name)
        if not file.is_file():
            raise SpecError(f"no such file {excerpt(module_name, 60)} for factory {excerpt(target, 80)}")
        name = f"torchlstm_params_factory_{''.join(c if c.isalnum() else '_' for c in file.stem)}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise SpecError(f"cannot load {excerpt(module_name, 60)} as Python for factory {excerpt(target, 80)}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling inside the file look their module up here
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the file's own code failed: one line
            del sys.modules[name]
            raise SpecError(f"running {excerpt(module_name, 60)} failed: {type(exc).__name__}: {exc}") from None
        return module
    if module_name.startswith("."):
        raise SpecError(
            f"a factory names an absolute module ('package.module:callable') or a file ('path/to/file.py:callable'), "
            f"got {excerpt(target, 80)}"
        )
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"cannot import {excerpt(module_name, 60)} for factory {excerpt(target, 80)}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the module's own code failed at import: one line
        raise SpecError(f"importing {excerpt(module_name, 60)} failed: {type(exc).__name__}: {exc}") from None


def _call(factory: Callable[..., object], options: dict[str, object], real: bool) -> object:
    if not real:
        try:
            with torch.device("meta"):
                return factory(**options)
        except Exception:  # noqa: BLE001 - a factory may refuse meta; build it for real then
            pass
    return factory(**options)


def build_factory(target: str, kwargs: Mapping[str, object] | None = None, *, real: bool = False) -> nn.Module:
    """Import ``package.module:callable`` (or ``path/to/file.py:callable``) and call it.

    On the meta device when the factory allows it (no weights allocated), for real
    when it refuses meta, or when ``real=True`` (so that its values can be read).
    """
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise SpecError(
            f"a factory is 'package.module:callable' or 'path/to/file.py:callable', got {excerpt(target, 80)}"
        )
    obj = _import(module_name, target)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SpecError(
                f"{excerpt(module_name, 60)} has no attribute {excerpt(attr, 60)} (factory {excerpt(target, 80)})"
            ) from None
    if not callable(obj):
        raise SpecError(f"factory {excerpt(target, 80)} is a {type(obj).__name__}, not a callable")
    factory: Callable[..., object] = obj
    options = dict(kwargs or {})
    try:
        model = _call(factory, options, real)
    except Exception as exc:  # noqa: BLE001 - user code: report, never a traceback
        raise SpecError(f"factory {excerpt(target, 80)} failed: {type(exc).__name__}: {exc}") from None
    except SystemExit as exc:
        raise SpecError(f"factory {excerpt(target, 80)} called sys.exit({exc.code!r})") from None
    if not isinstance(model, nn.Module):
        raise SpecError(f"factory {excerpt(target, 80)} returned {type(model).__name__}, not a torch.nn.Module")
    return model
