"""Value scans: how many NaN and Inf values tensors hold, in bounded memory.

``scan_tensors`` scans live tensors (the sanity check's ``NON_FINITE``);
``scan_file`` scans a checkpoint file's tensors without building anything:

- ``.safetensors``: the file is memory-mapped and each tensor viewed in place
  (``torch.frombuffer`` over the map, at the offsets the header gives).
- torch files: ``torch.load(mmap=True, weights_only=True)``, which maps the
  storages instead of reading them (a legacy, non-zip file cannot be mapped
  and is read whole: the result says so).

Either way one tensor is looked at at a time, in chunks of at most
``chunk_elements`` values, so the memory a scan adds is a few bool and
int64 scalars plus one chunk's temporaries, whatever the file's size. A tensor
stored twice (tied weights) is scanned once. Integer and bool tensors cannot
hold NaN or Inf: they are counted apart, not scanned.
"""

from __future__ import annotations

import json
import mmap
import pickle
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import torch
from torch import nn

from .errors import CheckpointError
from .names import qualified

__all__ = ["CHUNK_ELEMENTS", "NonFinite", "ScanRefused", "ValueScan", "count_non_finite", "scan_file", "scan_tensors"]

#: The most values looked at in one step of a scan (one chunk's temporaries are a few bytes per value).
CHUNK_ELEMENTS: Final = 1 << 20

#: Dtypes torch.isfinite, isnan and isinf handle directly; others (float8) are widened to float32 a
#: chunk at a time (isfinite has no kernel for most float8 types, and calls float8_e8m0fnu's NaN finite).
_NATIVE: Final = frozenset(
    {torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.complex128, torch.complex64, torch.complex32}
)
#: Floating dtypes with no encoding for NaN or Inf.
_ALWAYS_FINITE: Final = frozenset(
    dt for dt in (getattr(torch, "float4_e2m1fn_x2", None),) if isinstance(dt, torch.dtype)
)
_MKLDNN: Final = getattr(torch, "_mkldnn")  # noqa: B009  # the MKL-DNN layout (untyped in torch's stubs)
_SAFETENSORS_DTYPES: Final = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


class ScanRefused(CheckpointError):
    """A file whose values this scan cannot read (its message says why): the scan is skipped, not failed."""


@dataclass(frozen=True, slots=True)
class NonFinite:
    """One tensor holding NaN or Inf values: its full name and the counts.

    Attributes:
        name: the tensor's full name (``module.path.tensor``, or a checkpoint's key).
        nan: how many of its values are NaN.
        inf: how many are +Inf or -Inf.
        numel: how many values were scanned: the values it stores (a sparse tensor's stored values).
        layout: its layout (``strided``, ``sparse_coo``, ``mkldnn``, ``strided nested``, ...).
        total: its logical element count, where that differs from ``numel`` (sparse layouts); else None.
    """

    name: str
    nan: int
    inf: int
    numel: int
    layout: str = "strided"
    total: int | None = None


@dataclass(frozen=True, slots=True)
class ValueScan:
    """What a value scan looked at, what it could not look at, and what it found.

    ``tensors``/``elements``/``bytes`` are the floating (and complex) tensors scanned;
    ``not_floating`` the integer and bool tensors, which cannot hold NaN or Inf;
    ``skipped`` maps a reason (``"on the meta device (no values)"``) to how many
    tensors it kept from being scanned. ``source`` is ``"model"`` or the file's path;
    ``mapped`` whether the file's values were read through a memory map.

    Attributes:
        source: ``"model"`` (live parameters) or the checkpoint file's path.
        tensors: floating and complex tensors scanned (a tied tensor once).
        elements: their values.
        bytes: their bytes.
        not_floating: integer and bool tensors, which cannot hold NaN or Inf (not scanned).
        skipped: reason -> how many tensors it kept from being scanned (meta, lazy, unknown dtype).
        non_finite: every scanned tensor holding NaN or Inf.
        chunk_elements: the most values looked at in one step.
        mapped: whether a file's values were read through a memory map.
        unchecked: ``(name, "dtype, layout", why)`` of each tensor whose values torch could not read
            (the sanity check's ``NON_FINITE_UNCHECKED``).
    """

    source: str
    tensors: int
    elements: int
    bytes: int
    not_floating: int
    skipped: Mapping[str, int]
    non_finite: tuple[NonFinite, ...]
    chunk_elements: int = CHUNK_ELEMENTS
    mapped: bool = False
    unchecked: tuple[tuple[str, str, str], ...] = ()

    @property
    def complete(self) -> bool:
        """True when every tensor that could hold NaN or Inf was scanned."""
        return not self.skipped

    def describe(self) -> str:
        """One line: how much was scanned, from where, and what was not."""
        where = "the model's parameters" if self.source == "model" else self.source
        text = f"{self.tensors:,} tensors, {self.elements:,} values, {self.bytes:,} B scanned from {where}"
        if self.source != "model":
            text += (
                f" (memory-mapped, one tensor at a time, at most {self.chunk_elements:,} values per step)"
                if self.mapped
                else " (a legacy non-zip torch file: read whole, it cannot be memory-mapped)"
            )
        if self.not_floating:
            text += f"; {self.not_floating:,} integer or bool tensors cannot hold NaN/Inf"
        for reason, count in self.skipped.items():
            text += f"; {count:,} tensors not scanned: {reason}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "tensors": self.tensors,
            "elements": self.elements,
            "bytes": self.bytes,
            "not_floating": self.not_floating,
            "skipped": dict(self.skipped),
            "non_finite": [
                {"name": n.name, "nan": n.nan, "inf": n.inf, "numel": n.numel, "layout": n.layout, "total": n.total}
                for n in self.non_finite
            ],
            "chunk_elements": self.chunk_elements,
            "mapped": self.mapped,
            "unchecked": [{"name": n, "kind": k, "why": w} for n, k, w in self.unchecked],
        }


def _chunks(tensor: torch.Tensor, chunk_elements: int) -> Iterator[torch.Tensor]:
    """``tensor``'s values as flat pieces of at most ``chunk_elements`` values (copies only a piece at a time)."""
    if tensor.dim() == 0:
        yield tensor.reshape(1)
        return
    if tensor.is_contiguous():
        flat = tensor.view(-1)
        for start in range(0, flat.numel(), chunk_elements):
            yield flat[start : start + chunk_elements]
        return
    row = tensor[0].numel() if tensor.shape[0] else 0
    step = max(1, chunk_elements // max(row, 1))
    for start in range(0, tensor.shape[0], step):
        yield tensor[start : start + step].reshape(-1)


def count_non_finite(tensor: torch.Tensor, chunk_elements: int = CHUNK_ELEMENTS) -> tuple[int, int]:
    """``(NaN count, Inf count)`` of a floating or complex tensor, ``chunk_elements`` values at a time.

    >>> count_non_finite(torch.tensor([1.0, float("nan"), float("inf"), float("-inf")]), chunk_elements=3)
    (1, 2)
    """
    nan = inf = 0
    with torch.no_grad():
        for piece in _chunks(tensor.detach(), chunk_elements):
            if piece.dtype not in _NATIVE:
                piece = piece.float()  # float8 and friends: widen one chunk to count it
            if bool(torch.isfinite(piece).all()):
                continue
            nan += int(torch.isnan(piece).sum())
            inf += int(torch.isinf(piece).sum())
    return nan, inf


def layout_of(tensor: torch.Tensor) -> str:
    """``strided``, ``sparse_coo``, ``mkldnn``, ..., with `` nested`` for a nested tensor."""
    layout = str(tensor.layout).removeprefix("torch.").removeprefix("_")
    return f"{layout} nested" if tensor.is_nested else layout


def stored_values(tensor: torch.Tensor) -> torch.Tensor:
    """The values ``tensor`` stores, as a strided tensor, never changing it.

    Sparse: the stored values; MKL-DNN: a dense copy; quantized: the dequantized values; nested:
    each component; a DTensor: this rank's shard (no collective call).
    """
    values = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    if values.is_nested:
        return torch.cat([part.reshape(-1) for part in values.unbind()])
    if values.layout == torch.sparse_coo:
        return values._values()
    if values.layout in (torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc):
        return values.values()
    if values.layout == _MKLDNN:
        return values.to_dense()
    if values.is_quantized:
        return values.dequantize()
    return values


def _storage_key(tensor: torch.Tensor) -> tuple[object, ...] | None:
    try:
        ptr = tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None
    return (ptr, tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)


class _Tally:
    """Running figures of one scan."""

    def __init__(self, chunk_elements: int) -> None:
        self.chunk = chunk_elements
        self.tensors = self.elements = self.bytes = self.not_floating = 0
        self.skipped: dict[str, int] = {}
        self.found: list[NonFinite] = []
        self.unchecked: list[tuple[str, str, str]] = []
        self.seen: set[tuple[object, ...]] = set()

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def add(self, name: str, tensor: torch.Tensor, meta_reason: str = "saved from the meta device (no values)") -> None:
        if tensor.is_meta:
            self.skip(meta_reason)
            return
        key = _storage_key(tensor) if tensor.layout == torch.strided and not tensor.is_nested else None
        if key is not None and key[0]:
            if key in self.seen:
                return
            self.seen.add(key)
        try:
            values = stored_values(tensor)
            if not (values.is_floating_point() or values.is_complex()) or values.dtype in _ALWAYS_FINITE:
                self.not_floating += 1
                return
            nan, inf = count_non_finite(values, self.chunk)
        except (NotImplementedError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else '(no message)'}"
            self.unchecked.append((name, f"{str(tensor.dtype).removeprefix('torch.')}, {layout_of(tensor)}", why))
            return
        self.tensors += 1
        self.elements += values.numel()
        self.bytes += values.numel() * values.element_size()
        if nan or inf:
            layout = layout_of(tensor)
            total = tensor.numel() if tensor.layout not in (torch.strided, _MKLDNN) else None
            self.found.append(NonFinite(name, nan, inf, values.numel(), layout, total))

    def result(self, source: str, mapped: bool = False) -> ValueScan:
        return ValueScan(
            source,
            self.tensors,
            self.elements,
            self.bytes,
            self.not_floating,
            dict(self.skipped),
            tuple(self.found),
            self.chunk,
            mapped,
            tuple(self.unchecked),
        )


def _is_lazy(tensor: torch.Tensor) -> bool:
    return isinstance(tensor, nn.UninitializedParameter | nn.UninitializedBuffer)


def scan_tensors(named: Iterable[tuple[str, torch.Tensor]], chunk_elements: int = CHUNK_ELEMENTS) -> ValueScan:
    """Scan live tensors, named ``module.path.tensor``. Meta and lazy tensors are skipped, and counted.

    A DTensor is scanned through this rank's shard (``to_local()``): no collective call.
    """
    tally = _Tally(chunk_elements)
    for name, tensor in named:
        if _is_lazy(tensor):
            tally.skip("uninitialized (lazy), no values yet")
            continue
        tally.add(name, tensor, "on the meta device (no values)")
    return tally.result("model")


# --- files ---


def _walk(obj: object, prefix: str, depth: int = 0) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in a loaded checkpoint, named by the keys that lead to it (joined with ``.``)."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, nn.Module):
        for name, tensor in obj.state_dict(keep_vars=True).items():
            yield qualified(prefix, name), tensor
    elif depth < 64 and isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from _walk(value, f"{prefix}.{key}" if prefix else str(key), depth + 1)
    elif depth < 64 and isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            yield from _walk(value, f"{prefix}.{i}" if prefix else str(i), depth + 1)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix) + 1 :] if prefix and name.startswith(prefix + ".") else name


def _scan_torch(path: Path, trust_pickle: bool, strip: str, chunk_elements: int) -> ValueScan:
    mapped = True
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle, mmap=True)
        except RuntimeError as exc:
            if "mmap can only be used" not in str(exc):
                raise
            mapped = False  # a legacy (non-zip) torch.save file: read whole
            obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            raise ScanRefused(
                "its values are read through torch.load(weights_only=True, mmap=True), which refuses a file that "
                "pickles more than tensors; --trust-pickle loads and scans it (only for a file you trust)"
            ) from None
        raise ScanRefused(f"torch.load cannot read its values: {_first_line(exc)}") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise ScanRefused(f"torch.load cannot read its values: {_first_line(exc)}") from None
    tally = _Tally(chunk_elements)
    for name, tensor in _walk(obj, ""):
        tally.add(_strip(name, strip), tensor)
    return tally.result(str(path), mapped)


def _scan_safetensors(path: Path, strip: str, chunk_elements: int) -> ValueScan:
    tally = _Tally(chunk_elements)
    with path.open("rb") as fh:
        size = path.stat().st_size
        if size < 8:
            raise CheckpointError(f"cannot scan the values of {path}: shorter than a safetensors header")
        (length,) = struct.unpack("<Q", fh.read(8))
        if length > size - 8:
            raise CheckpointError(f"cannot scan the values of {path}: header length {length:,} exceeds the file")
        try:
            header = json.loads(fh.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"cannot scan the values of {path}: header is not JSON ({exc})") from None
        start = 8 + length
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY) as mapped:  # private pages: writable, never written
            for name, entry in header.items():
                if name == "__metadata__":
                    continue
                dtype = _SAFETENSORS_DTYPES.get(entry.get("dtype"))
                if dtype is None:
                    tally.skip(f"dtype {entry.get('dtype')!r} has no torch equivalent")
                    continue
                begin, end = entry["data_offsets"]
                shape = tuple(entry["shape"])
                count = (end - begin) // dtype.itemsize
                if count == 0:
                    tally.add(_strip(name, strip), torch.empty(shape, dtype=dtype))
                    continue
                tensor = torch.frombuffer(mapped, dtype=dtype, count=count, offset=start + begin).view(shape)
                tally.add(_strip(name, strip), tensor)
                del tensor  # the map must have no views left when it closes
    return tally.result(str(path), mapped=True)


def scan_file(
    path: str | Path, *, trust_pickle: bool = False, strip: str = "", chunk_elements: int = CHUNK_ELEMENTS
) -> ValueScan:
    """Scan every floating tensor of a checkpoint file for NaN and Inf, one tensor at a time.

    Names are the file's keys; ``strip`` removes a leading ``prefix.`` (where the state dict
    sat, e.g. ``"state_dict"``) so they read as module paths.
    """
    file = Path(path)
    if file.suffix == ".safetensors":
        return _scan_safetensors(file, strip, chunk_elements)
    return _scan_torch(file, trust_pickle, strip, chunk_elements)
