"""In-process inference through librecur.so: Model and Session."""

import ctypes
import json
import math
import threading
from ctypes import POINTER, byref, c_size_t, c_void_p

import numpy as np

from . import _library
from ._errors import RecurError
from ._inputs import collect_inputs, generation_arguments

__all__ = ["Model", "Session"]

_DTYPE_CODES = {np.dtype(np.float32): _library.DTYPE_F32, np.dtype(np.int32): _library.DTYPE_I32,
                np.dtype(np.int64): _library.DTYPE_I64}
_CODE_DTYPES = {code: dtype for dtype, code in _DTYPE_CODES.items()}


class _Owned:
    """A C object freed exactly once: on ``release()`` or when the last Python reference to this
    wrapper goes. ``keep`` is held until then, so an object that depends on another (a session on
    its model) never outlives it in C."""

    __slots__ = ("pointer", "_free", "_keep", "_lock")

    def __init__(self, pointer: int, free, keep=None):
        self.pointer = pointer
        self._free = free
        self._keep = keep
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            pointer, self.pointer = self.pointer, None
            if pointer:
                self._free(pointer)
            self._keep = None

    def __del__(self):
        self.release()


def _c_inputs(inputs: list[tuple[str, np.ndarray]]) -> ctypes.Array:
    """recur_tensor structs that point at the arrays' own memory (the arrays must outlive the call)."""
    structs = (_library.Tensor * len(inputs))()
    for struct, (name, array) in zip(structs, inputs):
        if array.ndim > _library.MAX_RANK:
            raise RecurError("invalid_input", f"{name}: rank {array.ndim} is above the limit of {_library.MAX_RANK}")
        struct.name = name.encode("utf-8")
        struct.dtype = _DTYPE_CODES[array.dtype]
        struct.rank = array.ndim
        struct.shape[:array.ndim] = array.shape
        struct.data = _data_address(array)
    return structs


def _data_address(array: np.ndarray) -> int:
    """The address of a C-contiguous array's first element. Through ctypes' buffer export when the
    array is writable and not empty: 0.6 µs, against 1.5 for ``array.ctypes.data``, whose helper
    object a batch-1 call notices."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))
    except (TypeError, ValueError):  # read-only (TypeError) or empty (ValueError)
        return array.ctypes.data


class _Result:
    """A recur_result, freed when the last array over its memory goes: each array's base holds it.
    Unlike _Owned it has no explicit release and so needs no lock (1 µs a call less)."""

    __slots__ = ("_pointer", "_free")

    def __init__(self, pointer: int, free):
        self._pointer = pointer
        self._free = free

    def __del__(self):
        self._free(self._pointer)


def _take_result(lib, result: c_void_p) -> dict:
    """The result's tensors as numpy arrays over the result's own memory, not copies: copying a
    [64, 50, 512] output into fresh pages cost 0.55 ms a call. The result is freed when the last
    of the arrays goes (on an error here, when `owner` goes)."""
    owner = _Result(result.value, lib.recur_result_free)
    tensors, count = _TENSOR_POINTER(), c_size_t()
    status = lib.recur_result_tensors(result, byref(tensors), byref(count))
    if status:
        _library.check(lib, status, "recur_result_tensors")
    return _arrays_over(tensors, count.value, owner)


_TENSOR_POINTER = POINTER(_library.Tensor)


def _arrays_over(tensors, count: int, owner) -> dict:
    """tensors[0 ..< count] as numpy arrays over one buffer that holds `owner`: their data lie in
    one block in index order (recur_result_tensors), so one ctypes buffer, not one per tensor."""
    described = []
    for index in range(count):
        tensor = tensors[index]
        name, dtype, rank = tensor.name.decode("utf-8"), _CODE_DTYPES.get(tensor.dtype), tensor.rank
        if dtype is None or not 0 <= rank <= _library.MAX_RANK:
            raise RecurError("internal", f"result tensor {name!r}: dtype {tensor.dtype} rank {rank} unknown")
        described.append((name, dtype, tuple(tensor.shape[:rank]), tensor.data or 0))
    if not described:
        return {}
    _, last_dtype, last_shape, last_data = described[-1]
    start = described[0][3]
    size = max(last_data - start + max(math.prod(last_shape), 0) * last_dtype.itemsize, 0)
    memory = (ctypes.c_char * size).from_address(start)
    memory.owner = owner  # the arrays' base is `memory`, so the result lives as long as they do
    outputs = {}
    for name, dtype, shape, data in described:
        try:  # numpy refuses negative sizes and data outside the block
            outputs[name] = np.ndarray(shape, dtype, memory, data - start)
        except (ValueError, TypeError):
            raise RecurError("internal", f"result tensor {name!r}: shape {shape} at offset {data - start} "
                                         f"is outside the result's {size} bytes") from None
    return outputs


class Model:
    """A model loaded into this process (librecur.so). Immutable: any number of threads may call
    ``run``, ``generate``, ``encode`` and open sessions at once.

    Closing it is idempotent; afterwards its methods raise RecurError. Sessions opened earlier
    keep working: the C model is freed when the last of them closes.
    """

    def __init__(self, path):
        """Loads a model file (model-format.md). RecurError "io" if it cannot be read, "format" if
        it is malformed."""
        encoded = _library.encode_path(path)
        lib = _library.library()
        handle = c_void_p()
        _library.check(lib, lib.recur_model_load(encoded, byref(handle)), "recur_model_load")
        self._adopt(lib, handle)

    @classmethod
    def from_bytes(cls, data) -> "Model":
        """Loads a model from a file image in memory (bytes, bytearray, memoryview, numpy array),
        read during the call only: the model keeps none of it."""
        buffer = np.frombuffer(data, dtype=np.uint8)
        lib = _library.library()
        handle = c_void_p()
        _library.check(lib, lib.recur_model_load_memory(buffer.ctypes.data, buffer.size, byref(handle)),
                       "recur_model_load_memory")
        model = cls.__new__(cls)
        model._adopt(lib, handle)
        return model

    def _adopt(self, lib, handle: c_void_p) -> None:
        self._lib = lib
        self._model = _Owned(handle.value, lib.recur_model_free)
        text = c_void_p()
        _library.check(lib, lib.recur_model_describe(handle, byref(text)), "recur_model_describe")
        try:
            self._description = ctypes.string_at(text).decode("utf-8")
        finally:
            lib.recur_string_free(text)
        self._labels = json.loads(self._description).get("labels")

    def _handle(self) -> _Owned:
        """The C model, kept alive by the caller's reference for the length of a call."""
        model = self._model
        if model is None:
            raise RecurError("invalid_argument", "model is closed")
        return model

    def close(self) -> None:
        """Drops this object's hold on the C model (freed once no session needs it). Idempotent."""
        self._model = None

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> dict:
        """The architecture JSON (model-format.md) plus "inputs" and "outputs" ({name: {"dtype",
        "shape"}}, "B"/"T" for batch and steps), "parameters", "can_stream", "can_generate"."""
        self._handle()
        return json.loads(self._description)

    @property
    def labels(self) -> list | None:
        """The architecture's output class names, or None."""
        self._handle()
        return None if self._labels is None else list(self._labels)

    def run(self, x, lengths=None, states=None) -> dict:
        """Whole-sequence inference. ``x``: float32 [B, T, F] features or integer [B, T] token
        ids; ``lengths``: integer [B]; ``states``: {"L.h0": [layers·D, B, H], "L.c0": ...}.
        Returns {"output": ..., "L.h_n": ..., "L.c_n": ...} as numpy arrays."""
        inputs = collect_inputs(x, lengths, states)
        structs = _c_inputs(inputs)
        model = self._handle()
        result = c_void_p()
        _library.check(self._lib, self._lib.recur_model_run(model.pointer, structs, len(inputs), byref(result)),
                       "recur_model_run")
        return _take_result(self._lib, result)

    def session(self) -> "Session":
        """A streaming session (model-format.md, Streaming); RecurError "unsupported" for a
        bidirectional model."""
        model = self._handle()
        handle = c_void_p()
        _library.check(self._lib, self._lib.recur_session_open(model.pointer, byref(handle)), "recur_session_open")
        return Session(self._lib, _Owned(handle.value, self._lib.recur_session_free, keep=model))

    def generate(self, prompt, max_tokens, temperature=1.0, top_k=0, top_p=1.0, seed=None, stop=()) -> list:
        """Token ids generated after ``prompt`` (model-format.md, Generation): at most
        ``max_tokens``, ending early at a token in ``stop`` (not returned). ``temperature`` 0 is
        greedy; the same ``seed`` gives the same tokens (None: a fresh random seed)."""
        arguments = generation_arguments(prompt, max_tokens, temperature, top_k, top_p, seed, stop)
        prompt_ids = np.array(arguments["prompt"], dtype=np.int32)
        stop_ids = np.array(arguments["stop"], dtype=np.int32)
        try:
            tokens = np.empty(arguments["max_tokens"], dtype=np.int32)
        except (MemoryError, ValueError):
            raise RecurError("out_of_memory", f"max_tokens {arguments['max_tokens']} is too large to hold") from None
        sampling = _library.Sampling(arguments["temperature"], arguments["top_k"], arguments["top_p"],
                                     arguments["seed"])
        count = c_size_t()
        model = self._handle()
        _library.check(self._lib, self._lib.recur_generate(
            model.pointer, prompt_ids.ctypes.data, prompt_ids.size, byref(sampling), stop_ids.ctypes.data,
            stop_ids.size, tokens.size, tokens.ctypes.data, byref(count)), "recur_generate")
        return tokens[:count.value].tolist()

    def encode(self, texts) -> tuple:
        """Token ids of each text with the model's tokenizer and vocab: (ids int64 [B, T] padded
        with 0, lengths int64 [B]). A single string counts as a batch of one. RecurError
        "unsupported" when the model has no tokenizer."""
        batch = [texts] if isinstance(texts, str) else list(texts)
        rows = [self._encode_one(position, text) for position, text in enumerate(batch)]
        lengths = np.array([row.size for row in rows], dtype=np.int64)
        ids = np.zeros((len(rows), int(lengths.max(initial=0))), dtype=np.int64)
        for ids_row, row in zip(ids, rows):
            ids_row[:row.size] = row
        return ids, lengths

    def _encode_one(self, position: int, text) -> np.ndarray:
        if not isinstance(text, str):
            raise RecurError("invalid_argument", f"texts[{position}] is a {type(text).__name__}, not a str")
        encoded = text.encode("utf-8")
        if b"\0" in encoded:
            raise RecurError("invalid_argument", f"texts[{position}] contains a NUL character")
        # A token is at least one character, so the UTF-8 length is enough for both tokenizers;
        # the C call reports the full count if a tokenizer ever needs more.
        ids = np.empty(len(encoded), dtype=np.int64)
        count = c_size_t()
        model = self._handle()
        for _ in range(2):
            _library.check(self._lib, self._lib.recur_model_encode(model.pointer, encoded, ids.ctypes.data, ids.size,
                                                                   byref(count)), "recur_model_encode")
            if count.value <= ids.size:
                return ids[:count.value]
            ids = np.empty(count.value, dtype=np.int64)
        raise RecurError("internal", f"texts[{position}]: token count changed between two calls")


class Session:
    """One stream's recurrent state (model-format.md, Streaming), from ``Model.session()``.
    Steps are serialized; close it (or use ``with``) to free it; idempotent."""

    def __init__(self, lib, session: _Owned):
        self._lib = lib
        self._session = session
        self._lock = threading.Lock()

    def step(self, x) -> dict:
        """Feeds the next chunk ([B, T, F] features or [B, T] token ids); returns the outputs for
        it as ``Model.run`` does, with the state carried over from the previous chunks."""
        inputs = collect_inputs(x)
        structs = _c_inputs(inputs)
        result = c_void_p()
        with self._lock:
            session = self._open()
            _library.check(self._lib, self._lib.recur_session_step(session, structs, len(inputs), byref(result)),
                           "recur_session_step")
        return _take_result(self._lib, result)

    def reset(self) -> None:
        """Back to the initial (zero) state."""
        with self._lock:
            _library.check(self._lib, self._lib.recur_session_reset(self._open()), "recur_session_reset")

    def close(self) -> None:
        with self._lock:
            self._session.release()

    def _open(self) -> int:
        pointer = self._session.pointer
        if pointer is None:
            raise RecurError("invalid_argument", "session is closed")
        return pointer

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
