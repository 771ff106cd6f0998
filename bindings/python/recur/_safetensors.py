"""A small safetensors reader and writer in pure Python, and ``save`` for model files."""

import contextlib
import json
import os
import secrets
from collections.abc import Mapping

import numpy as np

from ._errors import RecurError

__all__ = ["load_tensors", "save_tensors", "save"]

# The limit of model-format.md (Container).
_MAX_HEADER_LENGTH = 100_000_000

_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
# bfloat16 has no numpy dtype: it is read as the upper half of a float32.
_BF16_STORAGE = np.dtype("<u2")
_NAMES = {dtype.newbyteorder("="): name for name, dtype in _DTYPES.items()}


def load_tensors(path) -> dict:
    """Every tensor of a safetensors file, by name, as numpy arrays the caller owns.

    BF16 tensors are returned as float32; every other dtype as the matching numpy dtype.
    Raises RecurError "io" when the file cannot be read and "format" when it is malformed.
    """
    def fail(what):
        return RecurError("format", f"{path}: {what}")

    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size < 8:
                raise fail(f"file is {size} bytes, too short for a safetensors header")
            header_length = int.from_bytes(file.read(8), "little")
            if header_length > _MAX_HEADER_LENGTH:
                raise fail(f"header length {header_length} is above the limit of {_MAX_HEADER_LENGTH} bytes")
            if 8 + header_length > size:
                raise fail(f"header length {header_length} runs past the end of the {size}-byte file")
            try:
                header = json.loads(file.read(header_length).decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as error:
                raise fail(f"header is not valid JSON ({error})") from None
            if not isinstance(header, dict):
                raise fail("header is not a JSON object")
            body_start, body_size = 8 + header_length, size - 8 - header_length
            entries = sorted((_parse_entry(name, entry, body_size, fail), name)
                             for name, entry in header.items() if name != "__metadata__")
            for ((_, end, _, _), first), ((begin, _, _, _), second) in zip(entries, entries[1:]):
                if begin < end:
                    raise fail(f"tensors {first!r} and {second!r} overlap")
            tensors = {}
            for (begin, end, dtype, shape), name in entries:
                file.seek(body_start + begin)
                try:
                    stored = np.empty(shape, _BF16_STORAGE if dtype == "BF16" else _DTYPES[dtype])
                except ValueError as error:  # numpy's own limits on rank and extents
                    raise fail(f"tensor {name!r}: shape {list(shape)} cannot be held ({error})") from None
                if file.readinto(stored.reshape(-1).view(np.uint8)) != end - begin:
                    raise fail(f"tensor {name!r}: file ended while reading its data")
                tensors[name] = _to_native(stored, dtype)
            return {name: tensors[name] for name in header if name != "__metadata__"}
    except OSError as error:
        raise RecurError("io", f"{path}: {error.strerror or error}") from None


def _to_native(stored: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return (stored.astype(np.uint32) << 16).view(np.float32)
    return stored.astype(stored.dtype.newbyteorder("="), copy=False)


def _parse_entry(name, entry, body_size, fail):
    """(begin, end, dtype, shape) of one header entry, checked against the data section."""
    if not isinstance(entry, dict):
        raise fail(f"tensor {name!r}: header entry is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in _DTYPES and dtype != "BF16":
        raise fail(f"tensor {name!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise fail(f"tensor {name!r}: shape {shape!r} is not a list of non-negative integers")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= body_size):
        raise fail(f"tensor {name!r}: data_offsets {offsets!r} do not lie inside the {body_size}-byte data")
    itemsize = (_BF16_STORAGE if dtype == "BF16" else _DTYPES[dtype]).itemsize
    expected = int(np.prod(shape, dtype=object)) * itemsize
    if offsets[1] - offsets[0] != expected:
        raise fail(f"tensor {name!r}: {offsets[1] - offsets[0]} bytes of data, but {dtype} {shape} needs {expected}")
    return offsets[0], offsets[1], dtype, tuple(shape)


def save_tensors(path, tensors: Mapping, metadata: Mapping | None = None) -> None:
    """Writes ``tensors`` (name → numpy array, or anything with ``.numpy()`` or ``__array__``,
    such as a torch tensor) to a safetensors file, with ``metadata`` (str → str) as
    ``__metadata__``. The file is replaced atomically: readers see the old or the new file."""
    if not isinstance(tensors, Mapping):
        raise RecurError("invalid_argument", f"tensors must be a dict of name → array, found {type(tensors).__name__}")
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise RecurError("invalid_argument", f"tensor name {name!r} is not a usable name")
        arrays[name] = _little_endian(name, value)
    header = {}
    if metadata is not None:
        if not isinstance(metadata, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise RecurError("invalid_argument", "metadata must be a dict of str → str")
        header["__metadata__"] = dict(metadata)
    # Widest items first, so every tensor's data stays aligned to its item size (the header is
    # padded to 8 bytes), as the safetensors library writes them.
    order = sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))
    offset = 0
    for name in order:
        array = arrays[name]
        header[name] = {"dtype": _NAMES[array.dtype.newbyteorder("=")], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    _write_atomically(path, [len(encoded).to_bytes(8, "little"), encoded]
                      + [arrays[name].reshape(-1).view(np.uint8) for name in order])


def _little_endian(name, value) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        if hasattr(value, "detach"):      # a torch tensor that may require grad
            value = value.detach()
        if hasattr(value, "cpu"):
            value = value.cpu()
        if hasattr(value, "numpy"):
            value = value.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise RecurError("invalid_argument", f"tensor {name!r}: not an array ({error})") from None
    if array.dtype.newbyteorder("=") not in _NAMES:
        raise RecurError("invalid_argument", f"tensor {name!r}: dtype {array.dtype} cannot be stored in safetensors")
    return np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")


def _write_atomically(path, chunks) -> None:
    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise RecurError("io", f"{path}: cannot create a file in {folder}: {error.strerror or error}") from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise RecurError("io", f"{path}: {error.strerror or error}") from None
        raise


def save(path, arch: Mapping, tensors: Mapping) -> None:
    """Writes a Recur model file: ``tensors`` (e.g. a PyTorch ``state_dict()`` with each layer's
    weights under ``<layer name>.``, as model-format.md names them) plus the architecture
    ``arch`` (a dict, the model-format.md JSON) as ``__metadata__["recur"]``."""
    if not isinstance(arch, Mapping):
        raise RecurError("invalid_argument", f"arch must be a dict (the architecture JSON), found {type(arch).__name__}")
    try:
        document = json.dumps(arch, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise RecurError("invalid_argument", f"arch cannot be written as JSON: {error}") from None
    save_tensors(path, tensors, {"recur": document})
