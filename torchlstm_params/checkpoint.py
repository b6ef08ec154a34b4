"""Checkpoint files -> tensor names, shapes and dtypes -> a meta-device stand-in model.

Nothing here builds the user's model or reads tensor values:

- ``.safetensors``: only the header is read (through the ``safetensors`` package).
- ``.pt``/``.pth``/``.bin``/``.ckpt`` and anything else: ``torch.load(weights_only=True,
  mmap=True)``, so tensor storage stays mapped, unread, and a file that pickles code
  is refused instead of run (``trust_pickle=True`` lifts that, for files you trust).

From the names and shapes alone every recurrent module is inferred (kind, sizes,
layers, directions, projection, bias) and rebuilt on the meta device with the
checkpoint's own shapes, so ``summarize`` can cross-check it like a live model.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError, InvalidSettingsError
from .formulas import make_spec
from .names import parse_tensor_name
from .spec import LAYERS

__all__ = ["Checkpoint", "TensorMeta", "build_model", "read_checkpoint"]

_STATE_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights", "params")
_BUFFER_NAMES = frozenset({"running_mean", "running_var", "num_batches_tracked"})
_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}


@dataclass(frozen=True, slots=True)
class TensorMeta:
    """What a checkpoint says about one tensor, without its values."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    storage: tuple[int, int, tuple[int, ...]] | None = None  # (storage address, offset, stride): ties


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint's tensors (or, with trust_pickle, the module it pickled)."""

    path: str
    format: str  # "torch" or "safetensors"
    tensors: dict[str, TensorMeta] = field(default_factory=dict)
    found_under: str = ""  # where the state dict sat, e.g. "state_dict"; "" at the top
    module: nn.Module | None = None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"no such file: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not a checkpoint")


def _read_safetensors(path: Path) -> Checkpoint:
    try:
        from safetensors import safe_open
    except ImportError:  # pragma: no cover - the test extra installs it
        raise CheckpointError(
            f"{path}: reading .safetensors needs the safetensors package: pip install 'torchlstm_params[safetensors]'"
        ) from None
    tensors: dict[str, TensorMeta] = {}
    try:
        with safe_open(str(path), framework="pt") as handle:  # maps the file; reads the header only
            for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                piece = handle.get_slice(name)
                code = piece.get_dtype()
                dtype = _SAFETENSORS_DTYPES.get(code)
                if dtype is None:
                    raise CheckpointError(f"{path}: tensor {name!r} has dtype {code!r}, which torch cannot hold")
                tensors[name] = TensorMeta(tuple(piece.get_shape()), dtype)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - SafetensorError and friends: one clear line
        raise CheckpointError(f"{path} is not a valid safetensors file: {exc}") from None
    return Checkpoint(str(path), "safetensors", tensors)


def _refusal(path: Path, exc: Exception) -> CheckpointError:
    text = str(exc)
    found = re.search(r"(?:Unsupported global|GLOBAL|global):? ?(?:GLOBAL )?([\w.]+)", text)
    what = f" (it needs {found.group(1)})" if found else ""
    return CheckpointError(
        f"{path} pickles Python objects beyond tensors{what}, e.g. a whole model; weights_only loading refuses "
        "them because unpickling can run arbitrary code. Pass --trust-pickle (trust_pickle=True) only if you "
        "trust where the file came from."
    )


def _torch_load(path: Path, trust_pickle: bool) -> object:
    with path.open("rb") as fh:
        magic = fh.read(4)
    # torch.save writes a zip archive ("PK\x03\x04"); legacy files and raw pickles start with a PROTO opcode.
    if not (magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"):
        raise CheckpointError(f"{path} is not a readable torch checkpoint: neither a zip archive nor a pickle")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=not trust_pickle, mmap=True)
        except RuntimeError as exc:
            if "mmap can only be used" not in str(exc):
                raise
            # A legacy (non-zip) torch.save file: no mmap possible, read it plainly.
            return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            raise _refusal(path, exc) from None
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {_first_line(exc)}") from None
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint (truncated or corrupt?): {_first_line(exc)}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any other failure to load: one clear line
        raise CheckpointError(
            f"cannot read {path} as a torch checkpoint: {type(exc).__name__}: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _is_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) for k in obj)
        and any(isinstance(v, torch.Tensor) for v in obj.values())
    )


def _find_state_dict(obj: object, where: str = "", depth: int = 0) -> tuple[Mapping[str, object], str] | None:
    if _is_state_dict(obj):
        assert isinstance(obj, Mapping)
        return obj, where
    if not isinstance(obj, Mapping) or depth > 3:
        return None
    for key in _STATE_KEYS:
        if key in obj:
            found = _find_state_dict(obj[key], f"{where}.{key}" if where else key, depth + 1)
            if found is not None:
                return found
    return None


def _meta(tensor: torch.Tensor) -> TensorMeta:
    storage = None
    try:
        storage = (tensor.untyped_storage().data_ptr(), int(tensor.storage_offset()), tuple(tensor.stride()))
    except (RuntimeError, NotImplementedError):  # tensors without plain storage: no tie detection
        storage = None
    return TensorMeta(tuple(tensor.shape), tensor.dtype, storage)


def read_checkpoint(path: str | Path, *, trust_pickle: bool = False) -> Checkpoint:
    """Read a checkpoint's tensor names, shapes and dtypes (never their values)."""
    file = Path(path)
    _check_file(file)
    if file.suffix == ".safetensors":
        return _read_safetensors(file)
    obj = _torch_load(file, trust_pickle)
    if isinstance(obj, nn.Module):
        return Checkpoint(str(file), "torch", module=obj)
    found = _find_state_dict(obj)
    if found is None:
        keys = f" with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, Mapping) else ""
        raise CheckpointError(f"{file} holds a {type(obj).__name__}{keys}, not a state dict of tensors or a module")
    state, where = found
    tensors = {name: _meta(value) for name, value in state.items() if isinstance(value, torch.Tensor)}
    return Checkpoint(str(file), "torch", tensors, where)


@dataclass(frozen=True, slots=True)
class Inferred:
    """A recurrent module as read from key names and shapes."""

    path: str
    kind: str
    settings: dict[str, object]
    note: str = ""


def _split(name: str) -> tuple[str, str]:
    prefix, _, leaf = name.rpartition(".")
    return prefix, leaf


def _infer(prefix: str, leaves: Mapping[str, TensorMeta]) -> Inferred | None:
    """Kind and settings of the recurrent tensors under one module path, or None."""
    full = "weight_ih_l0" in leaves and "weight_hh_l0" in leaves
    cell = "weight_ih" in leaves and "weight_hh" in leaves
    if not (full or cell):
        return None
    sfx = "_l0" if full else ""
    w_ih, w_hh = leaves[f"weight_ih{sfx}"].shape, leaves[f"weight_hh{sfx}"].shape
    w_hr = leaves.get(f"weight_hr{sfx}")
    if len(w_ih) != 2 or len(w_hh) != 2:
        return None
    if w_hr is not None and len(w_hr.shape) == 2:
        hidden = w_hr.shape[1]
        proj = w_hr.shape[0]
    else:
        hidden, proj = w_hh[1], 0
    if hidden == 0 or w_ih[0] % hidden:
        return None
    gates = w_ih[0] // hidden
    base = {4: "LSTM", 3: "GRU", 1: "RNN"}.get(gates)
    if base is None:
        return None
    note = ""
    if base == "RNN":
        note = f"{prefix or '(root)'}: tanh or relu cannot be told apart from shapes (same count); shown as tanh"
    settings: dict[str, object] = {"input_size": w_ih[1], "hidden_size": hidden, "bias": f"bias_ih{sfx}" in leaves}
    if full:
        names = [n for leaf in leaves if (n := parse_tensor_name(leaf)) is not None and n.layer is not None]
        settings["num_layers"] = max(n.layer for n in names if n.layer is not None) + 1
        settings["bidirectional"] = any(n.reverse for n in names)
        if proj:
            settings["proj_size"] = proj
        kind = base
    else:
        kind = f"{base}Cell"
    return Inferred(prefix, kind, settings, note)


def _recurrent_module(inferred: Inferred) -> nn.Module:
    cls = LAYERS[inferred.kind]
    settings = dict(inferred.settings)
    kind = "RNN_TANH" if inferred.kind == "RNN" else inferred.kind
    make_spec(kind, **settings)  # raises InvalidSettingsError, naming the field
    input_size, hidden_size = settings.pop("input_size"), settings.pop("hidden_size")
    with torch.device("meta"):
        return cls(input_size, hidden_size, **settings)


def build_model(checkpoint: Checkpoint) -> tuple[nn.Module, list[str]]:
    """A meta-device stand-in for the checkpoint: recurrent modules rebuilt, every tensor in place.

    Modules appear in the checkpoint's key order. Returns the model and notes (ambiguities, and
    recurrent-looking tensors whose shapes are too inconsistent to infer settings from).
    """
    if checkpoint.module is not None:
        return checkpoint.module, []
    by_prefix: dict[str, dict[str, TensorMeta]] = {}
    for name, meta in checkpoint.tensors.items():
        prefix, leaf = _split(name)
        by_prefix.setdefault(prefix, {})[leaf] = meta
    notes: list[str] = []
    recurrent: dict[str, Inferred] = {}
    for prefix, leaves in by_prefix.items():
        inferred = _infer(prefix, leaves)
        if inferred is not None:
            recurrent[prefix] = inferred
            if inferred.note:
                notes.append(inferred.note)

    made: dict[str, nn.Module] = {}

    def node(path: str) -> nn.Module:
        found = made.get(path)
        if found is not None:
            return found
        module = nn.Module()
        inferred = recurrent.get(path)
        if inferred is not None:
            try:
                module = _recurrent_module(inferred)
                module._parameters.clear()  # the checkpoint's own tensors go in below
            except (InvalidSettingsError, TypeError, ValueError) as exc:
                notes.append(f"{path or '(root)'}: recurrent tensors with inconsistent shapes ({exc})")
        if path:
            parent_path, name = _split(path)
            node(parent_path).add_module(name, module)
        made[path] = module
        return module

    shared: dict[tuple[object, ...], nn.Parameter] = {}
    for name, meta in checkpoint.tensors.items():  # registration order = checkpoint order
        prefix, leaf = _split(name)
        owner = node(prefix)
        tensor = torch.empty(meta.shape, dtype=meta.dtype, device="meta")
        if leaf in _BUFFER_NAMES:
            owner.register_buffer(leaf, tensor)
            continue
        key = None if meta.storage is None else (*meta.storage, meta.shape, meta.dtype)
        param = shared.get(key) if key is not None else None
        if param is None:
            param = nn.Parameter(tensor, requires_grad=tensor.is_floating_point() or tensor.is_complex())
            if key is not None:
                shared[key] = param
        owner.register_parameter(leaf, param)
    return node(""), notes
