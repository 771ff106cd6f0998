"""Recur: recurrent sequence models (RNN, LSTM, GRU) computed as PyTorch computes them.

In-process through librecur.so (``Model``; ``load_plugin`` adds layer types), remotely through
the ``recurd`` daemon (``Client``, needs pyzmq), and model files from PyTorch weights (``save``).
See python-api.md, docs/python.md and docs/plugins.md.
"""

from ._errors import RecurError
from ._model import Model, Session
from ._plugins import load_plugin
from ._safetensors import load_tensors, save, save_tensors

__all__ = ["RecurError", "Model", "Session", "load_plugin", "Client", "RemoteSession", "load_tensors", "save", "save_tensors",
           "kernels", "release_kept_buffers"]


def kernels() -> str:
    """The kernel variant librecur.so computes with here: "avx512", "avx2" or "portable"."""
    from ._library import library
    return library().recur_kernels().decode("ascii")


def release_kept_buffers() -> int:
    """Gives the large buffers librecur.so keeps between runs of the same shapes (at most 128 MiB)
    back to the system, and returns the bytes they held; the next run allocates afresh. For a
    process done with its large runs, or that closed the models they were for."""
    from ._library import library
    return int(library().recur_release_kept_buffers())


def __getattr__(name):
    # Loaded on first use, so `import recur` works for the client and `save` without librecur.so.
    if name == "__version__":
        from ._library import library
        return library().recur_version().decode("ascii")
    if name in ("Client", "RemoteSession"):
        from . import _client
        return getattr(_client, name)
    raise AttributeError(f"module 'recur' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), "__version__", "Client", "RemoteSession"])
