"""Checkpoint files -> tensor names, shapes and dtypes (or a pickled module tree) -> a meta-device stand-in model.

Nothing here builds the user's model, runs code from the file or reads tensor values:

- ``.safetensors``: only the header is read (:mod:`torchlstm_params.safetensors_file`), in
  storage-offset order.
- ``.pt``/``.pth``/``.bin``/``.ckpt``/``.pkl`` and anything else: the safe reader
  (:mod:`torchlstm_params.unpickle`) reads the pickle without importing or calling anything the
  file names; tensors are records of shape, dtype and storage, never data. A pickled module
  (``torch.save(model)``, a TorchScript archive, a checkpoint holding the model) gives its real tree,
  settings and split of parameters and buffers (:mod:`torchlstm_params.whole_model`); a state dict
  (at the top, or under ``state_dict``, ``model``, ... as in Lightning and darts ``.ckpt`` files)
  gives names and shapes, from which :mod:`torchlstm_params.standin` infers the rest.
- ``trust_pickle=True`` (``--trust-pickle``) loads the file with ``torch.load(weights_only=False)``
  instead, which imports and runs what the file names: for files you trust, when the real objects
  are wanted (packed quantized weights, say).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import torch
from torch import nn

from .errors import CheckpointError
from .pickled import PickledModule, find_module, find_state_dict
from .safetensors_file import read_safetensors_header
from .standin import StandIn, TensorMeta, build_stand_in
from .unpickle import PickledObject, PickledTensor, read_pickled
from .whole_model import build_from_pickled

__all__ = ["Checkpoint", "StandIn", "TensorMeta", "build_model", "pickled_names", "read_checkpoint"]

_STATE_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights", "params")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint's tensors, or the module it pickled (read safely, or loaded when trusted)."""

    path: str
    format: str  # "safetensors", "torch.save", "torch.save-legacy", "torch.jit.save", "pickle" or "torch.load"
    tensors: dict[str, TensorMeta] = field(default_factory=dict)
    found_under: str = ""  # where the state dict or module sat, e.g. "state_dict"; "" at the top
    module: nn.Module | None = None  # the real module, with trust_pickle
    notes: tuple[str, ...] = ()  # what reading could not tell (meta tensors' ties, skipped entries)
    pickled: PickledModule | None = None  # the module tree, read without running the file


def _check_file(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"no such file: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not a checkpoint")


@contextmanager
def _loadable(path: Path) -> Iterator[str | IO[bytes]]:
    """``path`` as torch.load can open it: torch hands the name to C++ as UTF-8, so a name that is not
    UTF-8 goes through its open descriptor (``/proc/self/fd/N``, mmap still possible) or a file object."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        with path.open("rb") as fh:
            proc = f"/proc/self/fd/{fh.fileno()}"
            yield proc if os.path.exists(proc) else fh
        return
    yield name


def _torch_load(path: Path) -> object:
    """``torch.load(weights_only=False)``: the file's code runs. Only for trust_pickle=True."""
    try:
        with _loadable(path) as source:
            try:
                return torch.load(source, map_location="cpu", weights_only=False, mmap=isinstance(source, str))
            except RuntimeError as exc:
                if "mmap can only be used" not in str(exc):
                    raise
                # A legacy (non-zip) torch.save file: no mmap possible, read it plainly.
                return torch.load(source, map_location="cpu", weights_only=False)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {_first_line(exc)}") from None
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint (truncated or corrupt?): {_first_line(exc)}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any other failure to load (the file's own code too): one line
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
    """Shape, dtype and the memory it views. A storage's identity is its object (every tensor of one
    stored storage shares it while the loaded file is alive), never its address: every meta storage has
    address 0 and empty storages may share one. Meta and empty storages tie nothing."""
    storage = None
    try:
        untyped = tensor.untyped_storage()
        if not tensor.is_meta and untyped.nbytes() > 0:
            storage = (untyped._cdata, int(tensor.storage_offset()), tuple(tensor.stride()))
    except (RuntimeError, NotImplementedError):  # tensors without plain storage: no tie detection
        storage = None
    return TensorMeta(tuple(tensor.shape), tensor.dtype, storage)


def _shown(names: list[str]) -> str:
    return ", ".join(names[:8]) + (f" and {len(names) - 8:,} more" if len(names) > 8 else "")


def _record_meta(record: PickledTensor) -> TensorMeta:
    """A safely read tensor's metadata; its storage identity is the file's own storage key."""
    storage = None if record.storage is None else (record.storage.key, record.storage_offset, record.stride)
    return TensorMeta(record.shape, record.dtype, storage)


def _what(value: object) -> str:
    if isinstance(value, PickledObject):
        return f"a {value.qualified_name} (not run)"
    keys = f" with keys {sorted(map(str, value))[:8]}" if isinstance(value, Mapping) else ""
    return f"a {type(value).__name__}{keys}"


def _read_safely(file: Path) -> Checkpoint:
    found_file = read_pickled(file)
    notes = list(found_file.notes)
    located = find_module(found_file)
    if located is not None:
        tree, where = located
        return Checkpoint(str(file), found_file.format, {}, where, notes=tuple(notes), pickled=tree)
    state = find_state_dict(found_file)
    if state is None:
        raise CheckpointError(f"{file} holds {_what(found_file.root)}, not a state dict of tensors or a module")
    tensors = {name: _record_meta(record) for name, record in state.tensors.items()}
    if state.others:
        notes.append(
            f"{len(state.others):,} state dict entries are not tensors and are not counted: "
            f"{_shown(list(state.others))}"
        )
    no_storage = sum(record.storage is None for record in state.tensors.values())
    if no_storage:
        notes.append(
            f"{no_storage:,} tensors have no storage in the file (saved from the meta device): tied weights among "
            "them cannot be told apart, each is counted on its own"
        )
    return Checkpoint(str(file), found_file.format, tensors, state.where, notes=tuple(notes))


def _read_trusted(file: Path) -> Checkpoint:
    obj = _torch_load(file)
    if isinstance(obj, nn.Module):
        return Checkpoint(str(file), "torch.load", module=obj)
    found = _find_state_dict(obj)
    if found is None:
        raise CheckpointError(f"{file} holds {_what(obj)}, not a state dict of tensors or a module")
    state, where = found
    tensors: dict[str, TensorMeta] = {}
    skipped: list[str] = []
    on_meta = 0
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            tensors[name] = _meta(value)
            on_meta += value.is_meta
        else:
            skipped.append(name)
    notes = []
    if skipped:
        notes.append(f"{len(skipped):,} state dict entries are not tensors and are not counted: {_shown(skipped)}")
    if on_meta:
        notes.append(
            f"{on_meta:,} tensors were saved from the meta device, which stores no memory: tied weights among them "
            "cannot be told apart, each is counted on its own"
        )
    return Checkpoint(str(file), "torch.load", tensors, where, notes=tuple(notes))


def read_checkpoint(path: str | Path, *, trust_pickle: bool = False) -> Checkpoint:
    """Read a checkpoint's tensor names, shapes and dtypes, or its pickled module tree (never tensor values).

    Without ``trust_pickle`` nothing the file names is imported or run. With it, the file is
    loaded by ``torch.load(weights_only=False)``: only for files you trust.
    """
    file = Path(path)
    _check_file(file)
    if file.suffix == ".safetensors":
        return Checkpoint(str(file), "safetensors", read_safetensors_header(file))
    if trust_pickle:
        return _read_trusted(file)
    return _read_safely(file)


def pickled_names(path: str | Path) -> tuple[str, ...]:
    """The classes and functions a pickled file names: what ``torch.load(weights_only=False)`` would import.

    Read safely (nothing is imported); raises :class:`CheckpointError` when the file cannot be read so.
    """
    return read_pickled(path).stand_ins


def build_model(checkpoint: Checkpoint, *, buffers: str | None = None) -> StandIn:
    """The checkpoint's model: the pickled module itself (trusted), or a meta-device stand-in.

    Modules appear in the checkpoint's key order. The :class:`StandIn` carries the notes on what was
    inferred (buffers, ambiguities, recurrent-looking tensors that fit no torch layout) and the
    problems ``--check`` reports for them. ``buffers`` (a regular expression) overrides which
    tensors of a state dict are buffers.
    """
    if checkpoint.module is not None:
        return StandIn(checkpoint.module, checkpoint.notes)
    if checkpoint.pickled is not None:
        whole = build_from_pickled(checkpoint.pickled)
        return StandIn(whole.model, checkpoint.notes + whole.notes)
    built = build_stand_in(checkpoint.tensors, buffers=buffers)
    return StandIn(
        built.model,
        checkpoint.notes + built.notes,
        built.problems,
        built.buffers,
        trainable_recorded=built.trainable_recorded,
    )
