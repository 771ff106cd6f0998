"""Finding and declaring librecur.so (Include/recur.h, c-api.md), loaded once on first use."""

import ctypes
import os
import threading
from ctypes import POINTER, c_char_p, c_int, c_int32, c_int64, c_size_t, c_uint64, c_float, c_void_p
from pathlib import Path

from ._errors import RecurError

ABI_VERSION = 1
LIBRARY_NAME = "librecur.so"

# recur_status values, by name (c-api.md); RecurError.code carries these names.
STATUS_NAMES = {1: "invalid_argument", 2: "io", 3: "format", 4: "invalid_input", 5: "unsupported",
                6: "out_of_memory", 7: "internal"}

# recur_dtype values and the numpy dtype names they hold.
DTYPE_F32, DTYPE_I32, DTYPE_I64 = 1, 2, 3
MAX_RANK = 8


class Tensor(ctypes.Structure):
    """typedef struct recur_tensor { const char *name; recur_dtype dtype; int32_t rank;
    int64_t shape[8]; void *data; } recur_tensor;"""
    _fields_ = [("name", c_char_p), ("dtype", c_int), ("rank", c_int32),
                ("shape", c_int64 * MAX_RANK), ("data", c_void_p)]


class Sampling(ctypes.Structure):
    """typedef struct recur_sampling { float temperature; int32_t top_k; float top_p;
    uint64_t seed; } recur_sampling;"""
    _fields_ = [("temperature", c_float), ("top_k", c_int32), ("top_p", c_float), ("seed", c_uint64)]


def candidates() -> list[Path]:
    """Where librecur.so is looked for, in order: $RECUR_LIBRARY alone when set; else the
    package's own folder, the project's .build/release (this file is
    bindings/python/recur/_library.py in a development install) and ./.build/release."""
    explicit = os.environ.get("RECUR_LIBRARY")
    if explicit:
        return [Path(explicit)]
    package = Path(__file__).resolve().parent
    return [package / LIBRARY_NAME,
            package.parents[2] / ".build" / "release" / LIBRARY_NAME,
            Path.cwd() / ".build" / "release" / LIBRARY_NAME]


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Gives every function the package calls its C prototype."""
    # int32_t recur_abi_version(void);
    lib.recur_abi_version.argtypes = []
    lib.recur_abi_version.restype = c_int32
    # const char *recur_version(void);
    lib.recur_version.argtypes = []
    lib.recur_version.restype = c_char_p
    # const char *recur_kernels(void);
    lib.recur_kernels.argtypes = []
    lib.recur_kernels.restype = c_char_p
    # size_t recur_release_kept_buffers(void);
    lib.recur_release_kept_buffers.argtypes = []
    lib.recur_release_kept_buffers.restype = c_size_t
    # const char *recur_last_error(void);
    lib.recur_last_error.argtypes = []
    lib.recur_last_error.restype = c_char_p

    # recur_status recur_model_load(const char *path, recur_model **out);
    lib.recur_model_load.argtypes = [c_char_p, POINTER(c_void_p)]
    lib.recur_model_load.restype = c_int
    # recur_status recur_model_load_memory(const void *data, size_t size, recur_model **out);
    lib.recur_model_load_memory.argtypes = [c_void_p, c_size_t, POINTER(c_void_p)]
    lib.recur_model_load_memory.restype = c_int
    # void recur_model_free(recur_model *model);
    lib.recur_model_free.argtypes = [c_void_p]
    lib.recur_model_free.restype = None
    # recur_status recur_model_describe(const recur_model *model, char **json_out);
    lib.recur_model_describe.argtypes = [c_void_p, POINTER(c_void_p)]
    lib.recur_model_describe.restype = c_int
    # void recur_string_free(char *s);
    lib.recur_string_free.argtypes = [c_void_p]
    lib.recur_string_free.restype = None
    # recur_status recur_model_encode(const recur_model *model, const char *text,
    #                                 int64_t *ids, size_t capacity, size_t *out_len);
    lib.recur_model_encode.argtypes = [c_void_p, c_char_p, c_void_p, c_size_t, POINTER(c_size_t)]
    lib.recur_model_encode.restype = c_int

    # recur_status recur_model_run(const recur_model *model, const recur_tensor *inputs,
    #                              size_t n_inputs, recur_result **out);
    lib.recur_model_run.argtypes = [c_void_p, POINTER(Tensor), c_size_t, POINTER(c_void_p)]
    lib.recur_model_run.restype = c_int
    # size_t recur_result_count(const recur_result *result);
    lib.recur_result_count.argtypes = [c_void_p]
    lib.recur_result_count.restype = c_size_t
    # recur_status recur_result_get(const recur_result *result, size_t index, recur_tensor *out);
    lib.recur_result_get.argtypes = [c_void_p, c_size_t, POINTER(Tensor)]
    lib.recur_result_get.restype = c_int
    # recur_status recur_result_tensors(const recur_result *result, const recur_tensor **tensors,
    #                                   size_t *count);
    lib.recur_result_tensors.argtypes = [c_void_p, POINTER(POINTER(Tensor)), POINTER(c_size_t)]
    lib.recur_result_tensors.restype = c_int
    # void recur_result_free(recur_result *result);
    lib.recur_result_free.argtypes = [c_void_p]
    lib.recur_result_free.restype = None

    # recur_status recur_session_open(const recur_model *model, recur_session **out);
    lib.recur_session_open.argtypes = [c_void_p, POINTER(c_void_p)]
    lib.recur_session_open.restype = c_int
    # recur_status recur_session_step(recur_session *session, const recur_tensor *inputs,
    #                                 size_t n_inputs, recur_result **out);
    lib.recur_session_step.argtypes = [c_void_p, POINTER(Tensor), c_size_t, POINTER(c_void_p)]
    lib.recur_session_step.restype = c_int
    # recur_status recur_session_reset(recur_session *session);
    lib.recur_session_reset.argtypes = [c_void_p]
    lib.recur_session_reset.restype = c_int
    # void recur_session_free(recur_session *session);
    lib.recur_session_free.argtypes = [c_void_p]
    lib.recur_session_free.restype = None

    # recur_status recur_generate(const recur_model *model, const int32_t *prompt, size_t prompt_len,
    #                             const recur_sampling *sampling, const int32_t *stop, size_t n_stop,
    #                             size_t max_tokens, int32_t *out_tokens, size_t *out_len);
    lib.recur_generate.argtypes = [c_void_p, c_void_p, c_size_t, POINTER(Sampling), c_void_p, c_size_t,
                                   c_size_t, c_void_p, POINTER(c_size_t)]
    lib.recur_generate.restype = c_int

    # recur_status recur_plugin_load(const char *path);
    lib.recur_plugin_load.argtypes = [c_char_p]
    lib.recur_plugin_load.restype = c_int
    return lib


_lock = threading.Lock()
_library: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    """librecur.so, loaded and checked on first use. Raises RecurError "io" when it cannot be
    found or loaded, "unsupported" when its ABI version is not the one this package speaks."""
    global _library
    with _lock:
        if _library is None:
            _library = _load()
        return _library


def _load() -> ctypes.CDLL:
    tried = candidates()
    found = next((path for path in tried if path.is_file()), None)
    if found is None:
        raise RecurError("io", f"{LIBRARY_NAME} not found; looked at {', '.join(map(str, tried))} "
                               "(build it with `swift build -c release` or set RECUR_LIBRARY)")
    try:
        lib = ctypes.CDLL(str(found))
    except OSError as error:
        raise RecurError("io", f"{found}: cannot be loaded: {error}") from None
    try:
        _declare(lib)
    except AttributeError as error:
        raise RecurError("unsupported", f"{found}: not a Recur library of ABI {ABI_VERSION}: {error}") from None
    abi = lib.recur_abi_version()
    if abi != ABI_VERSION:
        raise RecurError("unsupported", f"{found}: C API ABI version {abi}; this package speaks {ABI_VERSION}")
    return lib


def check(lib: ctypes.CDLL, status: int, call: str) -> None:
    """Raises the RecurError for a non-zero recur_status, with this thread's recur_last_error()."""
    if status == 0:
        return
    message = (lib.recur_last_error() or b"").decode("utf-8", "replace")
    raise RecurError(STATUS_NAMES.get(status, f"status_{status}"), message or f"{call} failed with status {status}")


def encode_path(path) -> bytes:
    """A str or path-like as the bytes C receives; a NUL inside would silently cut it."""
    encoded = os.fsencode(path)
    if b"\0" in encoded:
        raise RecurError("invalid_argument", f"path {path!r} contains a NUL character")
    return encoded
