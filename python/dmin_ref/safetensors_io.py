"""Minimal safetensors container writer/reader for dmin weights files.

Implements weights_format.md sections 1-2 with only the standard library and numpy:

    offset 0    u64 little-endian N = byte length of the JSON header
    offset 8    N bytes of UTF-8 JSON, right-padded with spaces so that 8 + N is a multiple of 64
    offset 8+N  data section: F32 little-endian tensors back to back in header order

Tensors are F32, or BF16 (the upper half of a float32, rounded to nearest even; written with
dtype="BF16", read back widened to float32).  The reader applies the same checks the C++ reader does
(truncation, header length, duplicate keys, dtype, shapes, contiguous data_offsets, non-finite
values) so that Python-side tests catch files the C++ side would reject.
"""

import json
import os
import struct
from collections import OrderedDict

import numpy as np

ALIGNMENT = 64
MAX_HEADER_BYTES = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """Malformed container or tensor data (one-line message)."""


def _to_f32_array(name, value):
    if hasattr(value, "detach"):  # torch.Tensor without importing torch here
        value = value.detach().cpu()
        if value.dtype.is_floating_point:
            value = value.float()
        value = value.numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise SafetensorsError("tensor '%s': cannot store dtype %s as F32" % (name, arr.dtype))
    if arr.dtype != np.float32 and arr.dtype.kind == "f":
        arr = arr.astype(np.float32)
    elif arr.dtype.kind in "iu":
        raise SafetensorsError("tensor '%s': integer dtype %s is not stored (only F32)" % (name, arr.dtype))
    if not np.all(np.isfinite(arr)):
        raise SafetensorsError("tensor '%s' contains non-finite values" % name)
    return np.ascontiguousarray(arr, dtype="<f4")


def to_bf16_bits(arr):
    """float32 array -> uint16 bf16 bits, rounded to nearest even (NaN kept NaN)."""
    u = np.ascontiguousarray(arr, dtype="<f4").view("<u4").astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint32)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r = np.where(nan, (u >> 16) | 0x40, r)
    return r.astype("<u2")


def round_bf16(arr):
    """float32 array rounded to bf16 and widened back (the values a BF16 file holds)."""
    return (to_bf16_bits(arr).astype(np.uint32) << 16).view(np.float32).reshape(np.shape(arr))


def encode(tensors, metadata=None, dtype="F32"):
    """Return the bytes of a safetensors file.

    tensors: ordered mapping name -> array-like (float; stored as `dtype`, F32 or BF16); order is kept.
    metadata: mapping str -> str stored as ``__metadata__`` (first key of the header).
    """
    if dtype not in ("F32", "BF16"):
        raise SafetensorsError("dtype %r: only F32 and BF16 are written" % (dtype,))
    header = OrderedDict()
    if metadata is not None:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise SafetensorsError("__metadata__ must map strings to strings (key %r)" % (k,))
        header["__metadata__"] = OrderedDict(metadata)
    blobs = []
    offset = 0
    for name, value in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise SafetensorsError("invalid tensor name %r" % (name,))
        arr = _to_f32_array(name, value)
        raw = arr.tobytes() if dtype == "F32" else to_bf16_bits(arr).tobytes()
        header[name] = OrderedDict(
            [("dtype", dtype), ("shape", [int(d) for d in arr.shape]),
             ("data_offsets", [offset, offset + len(raw)])])
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    pad = (-(8 + len(text))) % ALIGNMENT
    text += b" " * pad
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write_file(path, tensors, metadata=None):
    """Write a safetensors file (not atomic; see export.atomic_write for that)."""
    data = encode(tensors, metadata)
    with open(path, "wb") as fh:
        fh.write(data)
    return len(data)


def _no_duplicates(pairs):
    obj = OrderedDict()
    for k, v in pairs:
        if k in obj:
            raise SafetensorsError("header: duplicate key %r" % (k,))
        obj[k] = v
    return obj


def decode(data, check_finite=True):
    """Parse safetensors bytes. Returns (tensors: OrderedDict name -> np.float32 array, metadata dict)."""
    if len(data) < 8:
        raise SafetensorsError("truncated file: %d bytes, need at least 8" % len(data))
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise SafetensorsError("header length %d exceeds the 100 MiB limit" % n)
    if 8 + n > len(data):
        raise SafetensorsError("truncated file: header length %d but only %d bytes follow" % (n, len(data) - 8))
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates)
    except SafetensorsError:
        raise
    except (UnicodeDecodeError, ValueError) as exc:
        raise SafetensorsError("header is not valid JSON: %s" % exc)
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise SafetensorsError("header: __metadata__ must be an object of strings")
    body = memoryview(data)[8 + n:]
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict):
            raise SafetensorsError("tensor '%s': entry is not an object" % name)
        for field in ("dtype", "shape", "data_offsets"):
            if field not in info:
                raise SafetensorsError("tensor '%s': missing field %s" % (name, field))
        if info["dtype"] not in ("F32", "BF16"):
            raise SafetensorsError("tensor '%s': dtype %r is not F32 or BF16" % (name, info["dtype"]))
        size = 4 if info["dtype"] == "F32" else 2
        shape = info["shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise SafetensorsError("tensor '%s': shape must be a list of non-negative integers" % name)
        offs = info["data_offsets"]
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offs)):
            raise SafetensorsError("tensor '%s': data_offsets must be two non-negative integers" % name)
        count = 1
        for d in shape:
            count *= d
        if count * size != offs[1] - offs[0]:
            raise SafetensorsError("tensor '%s': shape %s needs %d bytes but data_offsets span %d"
                                   % (name, shape, count * size, offs[1] - offs[0]))
        entries.append((offs[0], offs[1], name, shape))
    entries.sort()
    pos = 0
    for begin, end, name, _ in entries:
        if begin != pos:
            raise SafetensorsError("tensor '%s': data_offsets [%d, %d] leave a gap or overlap (expected begin %d)"
                                   % (name, begin, end, pos))
        pos = end
    if pos != len(body):
        raise SafetensorsError("data_offsets: tensors cover %d bytes but the data section has %d" % (pos, len(body)))
    tensors = OrderedDict()
    for name, info in header.items():
        begin, end = info["data_offsets"]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(body[begin:end], dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32).reshape(info["shape"]).astype(np.float32)
        else:
            arr = np.frombuffer(body[begin:end], dtype="<f4").reshape(info["shape"]).astype(np.float32)
        if check_finite and not np.all(np.isfinite(arr)):
            raise SafetensorsError("tensor '%s' contains non-finite values" % name)
        tensors[name] = arr
    return tensors, (dict(metadata) if metadata is not None else None)


def read_file(path, check_finite=True):
    with open(path, "rb") as fh:
        data = fh.read()
    return decode(data, check_finite=check_finite)


def header_info(path):
    """Return (header_length N, parsed header dict) without decoding tensors."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        (n,) = struct.unpack("<Q", head)
        text = fh.read(n)
    return n, json.loads(text.decode("utf-8"), object_pairs_hook=OrderedDict)


__all__ = ["SafetensorsError", "encode", "decode", "write_file", "read_file", "header_info", "ALIGNMENT"]

if __name__ == "__main__":  # tiny self-check
    import sys
    for p in sys.argv[1:]:
        t, m = read_file(p)
        print(p, os.path.getsize(p), "bytes,", len(t), "tensors, metadata keys:", sorted((m or {}).keys()))
