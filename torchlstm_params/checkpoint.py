"""Checkpoint files -> tensor names, shapes and dtypes -> a meta-device stand-in model.

Nothing here builds the user's model or reads tensor values:

- ``.safetensors``: only the header is read (parsed here, with the checks the
  ``safetensors`` package makes), and tensors are listed in storage-offset order:
  the order the writer saw them in.
- ``.pt``/``.pth``/``.bin``/``.ckpt`` and anything else: ``torch.load(weights_only=True,
  mmap=True)``, so tensor storage stays mapped, unread, and a file that pickles code
  is refused instead of run (``trust_pickle=True`` lifts that, for files you trust).

From the names and shapes alone every recurrent module is inferred and rebuilt on the
meta device with the checkpoint's own shapes (:mod:`torchlstm_params.standin`), so
``summarize`` can cross-check it like a live model.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

import torch
from torch import nn

from .errors import CheckpointError
from .standin import StandIn, TensorMeta, build_stand_in

__all__ = ["Checkpoint", "StandIn", "TensorMeta", "build_model", "read_checkpoint"]

_STATE_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights", "params")
#: safetensors dtype codes -> (torch dtype, bytes per element). Sub-byte codes (F4, F6_*) are not listed:
#: torch holds them only packed two to a byte, under another shape.
_SAFETENSORS_DTYPES: Final[Mapping[str, tuple[torch.dtype, int]]] = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U64": (torch.uint64, 8),
    "U32": (torch.uint32, 4),
    "U16": (torch.uint16, 2),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
    "C64": (torch.complex64, 8),
    "F8_E4M3": (torch.float8_e4m3fn, 1),
    "F8_E5M2": (torch.float8_e5m2, 1),
    "F8_E4M3FNUZ": (torch.float8_e4m3fnuz, 1),
    "F8_E5M2FNUZ": (torch.float8_e5m2fnuz, 1),
    "F8_E8M0": (torch.float8_e8m0fnu, 1),
}
_MAX_SAFETENSORS_HEADER = 100_000_000  # bytes; the safetensors package refuses larger headers too


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint's tensors (or, with trust_pickle, the module it pickled)."""

    path: str
    format: str  # "torch" or "safetensors"
    tensors: dict[str, TensorMeta] = field(default_factory=dict)
    found_under: str = ""  # where the state dict sat, e.g. "state_dict"; "" at the top
    module: nn.Module | None = None
    notes: tuple[str, ...] = ()  # what reading could not tell (meta tensors' ties, skipped entries)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"no such file: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not a checkpoint")


def _safetensors_header(path: Path) -> tuple[dict[str, object], int]:
    """The parsed JSON header and the size of the data that follows it."""
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is not a valid safetensors file: {size} bytes, shorter than its header")
        (length,) = struct.unpack("<Q", head)
        if length > min(size - 8, _MAX_SAFETENSORS_HEADER):
            raise CheckpointError(
                f"{path} is not a valid safetensors file: its header claims {length:,} bytes, the file has {size:,}"
            )
        raw = fh.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a valid safetensors file: header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a valid safetensors file: header is not a JSON object")
    return header, size - 8 - length


def _safetensors_entry(path: Path, name: str, entry: object) -> tuple[TensorMeta, int, int]:
    """(metadata, begin, end) of one header entry, checked the way the safetensors package checks it."""

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{path} is not a valid safetensors file: tensor {name!r} {why}")

    if not isinstance(entry, dict):
        raise bad("has no dtype/shape/data_offsets entry")
    code, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise bad(f"has shape {shape!r}, not a list of sizes")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):
        raise bad(f"has data_offsets {offsets!r}, not [begin, end]")
    known = _SAFETENSORS_DTYPES.get(code) if isinstance(code, str) else None
    if known is None:
        raise CheckpointError(
            f"{path}: tensor {name!r} has dtype {code!r}, which this reader does not know "
            f"(known: {', '.join(_SAFETENSORS_DTYPES)})"
        )
    dtype, itemsize = known
    numel = 1
    for d in shape:
        numel *= d
    if offsets[1] - offsets[0] != numel * itemsize:
        raise bad(
            f"of shape {shape} and dtype {code} needs {numel * itemsize:,} bytes, its offsets hold "
            f"{offsets[1] - offsets[0]:,}"
        )
    return TensorMeta(tuple(shape), dtype), offsets[0], offsets[1]


def _read_safetensors(path: Path) -> Checkpoint:
    header, data_size = _safetensors_header(path)
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError(f"{path} is not a valid safetensors file: __metadata__ is not a JSON object")
    entries = [(name, *_safetensors_entry(path, name, entry)) for name, entry in header.items()]
    entries.sort(key=lambda item: (item[2], item[3]))  # storage order: the order the writer saw (stable)
    position = 0
    for name, _, begin, end in entries:  # the data is covered exactly, without holes or overlaps
        if begin != position:
            raise CheckpointError(
                f"{path} is not a valid safetensors file: tensor {name!r} starts at byte {begin:,} of the data, "
                f"expected {position:,}"
            )
        position = end
    if position != data_size:
        raise CheckpointError(
            f"{path} is not a valid safetensors file: the tensors cover {position:,} bytes, the data is {data_size:,}"
        )
    return Checkpoint(str(path), "safetensors", {name: meta for name, meta, _, _ in entries})


def _refusal(path: Path, exc: Exception) -> CheckpointError:
    text = str(exc)
    found = re.search(r"(?:Unsupported global|GLOBAL|global):? ?(?:GLOBAL )?([\w.]+)", text)
    what = f" (it needs {found.group(1)})" if found else ""
    return CheckpointError(
        f"{path} pickles Python objects beyond tensors{what}, e.g. a whole model; weights_only loading refuses "
        "them because unpickling can run arbitrary code. Pass --trust-pickle (trust_pickle=True) only if you "
        "trust where the file came from."
    )


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


def _torch_load(path: Path, trust_pickle: bool) -> object:
    with path.open("rb") as fh:
        magic = fh.read(4)
    # torch.save writes a zip archive ("PK\x03\x04"); legacy files and raw pickles start with a PROTO opcode.
    if not (magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"):
        raise CheckpointError(f"{path} is not a readable torch checkpoint: neither a zip archive nor a pickle")
    try:
        with _loadable(path) as source:
            try:
                return torch.load(
                    source, map_location="cpu", weights_only=not trust_pickle, mmap=isinstance(source, str)
                )
            except RuntimeError as exc:
                if "mmap can only be used" not in str(exc):
                    raise
                # A legacy (non-zip) torch.save file: no mmap possible, read it plainly.
                return torch.load(source, map_location="cpu", weights_only=not trust_pickle)
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
    return Checkpoint(str(file), "torch", tensors, where, notes=tuple(notes))


def build_model(checkpoint: Checkpoint, *, buffers: str | None = None) -> StandIn:
    """The checkpoint's model: the pickled module itself (trusted), or a meta-device stand-in.

    Modules appear in the checkpoint's key order. The :class:`StandIn` carries the notes on what was
    inferred (buffers, ambiguities, recurrent-looking tensors that fit no torch layout) and the
    problems ``--check`` reports for them. ``buffers`` (a regular expression) overrides which
    tensors of a state dict are buffers.
    """
    if checkpoint.module is not None:
        return StandIn(checkpoint.module, checkpoint.notes)
    built = build_stand_in(checkpoint.tensors, buffers=buffers)
    return StandIn(
        built.model,
        checkpoint.notes + built.notes,
        built.problems,
        built.buffers,
        trainable_recorded=built.trainable_recorded,
    )
