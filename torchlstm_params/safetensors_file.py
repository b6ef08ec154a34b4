"""``.safetensors`` files: names, shapes and dtypes from the header alone, in storage order.

The header (an 8-byte little-endian length, then JSON) is parsed here with the checks the
``safetensors`` package makes (offsets inside the data, sizes that match shape and dtype, the
data covered exactly), so the file is read by any name (UTF-8 or not) and every dtype the format
shares with torch (``U16``/``U32``/``U64`` included) is taken. Tensors are listed by their storage
offset: the order the writer stored them in (the ``safetensors`` package itself writes by dtype
size, then name).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import torch

from .errors import CheckpointError
from .standin import TensorMeta

__all__ = ["read_safetensors_header"]

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


def read_safetensors_header(path: Path) -> dict[str, TensorMeta]:
    """Name -> metadata of every tensor of a ``.safetensors`` file, in storage-offset order."""
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
    return {name: meta for name, meta, _, _ in entries}
