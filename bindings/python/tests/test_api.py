"""The names python-api.md promises: every class, method, parameter name and default as the spec
writes them (more may be added, but only after these and with defaults)."""

import inspect
import os
import subprocess
import sys

import pytest

import recur

REQUIRED = inspect.Parameter.empty

# (object, method, [(parameter, default or REQUIRED), ...]) straight from python-api.md.
SPEC = [
    ("Model", "__init__", [("path", REQUIRED)]),
    ("Model", "describe", []),
    ("Model", "run", [("x", REQUIRED), ("lengths", None), ("states", None)]),
    ("Model", "session", []),
    ("Model", "generate", [("prompt", REQUIRED), ("max_tokens", REQUIRED), ("temperature", 1.0), ("top_k", 0),
                           ("top_p", 1.0), ("seed", None), ("stop", ())]),
    ("Model", "encode", [("texts", REQUIRED)]),
    ("Model", "close", []),
    ("Session", "step", [(None, REQUIRED)]),
    ("Session", "reset", []),
    ("Session", "close", []),
    ("Client", "__init__", [("endpoint", REQUIRED), ("timeout", 10.0)]),
    ("Client", "ping", []),
    ("Client", "models", []),
    ("Client", "describe", [("name", REQUIRED)]),
    ("Client", "infer", [("name", REQUIRED), ("x", REQUIRED), ("lengths", None), ("states", None)]),
    ("Client", "session", [("name", REQUIRED)]),
    ("Client", "generate", [("name", REQUIRED), ("prompt", REQUIRED), ("max_tokens", REQUIRED), ("temperature", 1.0),
                            ("top_k", 0), ("top_p", 1.0), ("seed", None), ("stop", ())]),
    ("Client", "load", [("name", REQUIRED), ("path", REQUIRED)]),
    ("Client", "unload", [("name", REQUIRED)]),
    ("Client", "stats", []),
    ("Client", "close", []),
    ("RemoteSession", "step", [(None, REQUIRED)]),
    ("RemoteSession", "reset", []),
    ("RemoteSession", "close", []),
]


@pytest.mark.parametrize("owner, method, expected", SPEC, ids=[f"{o}.{m}" for o, m, _ in SPEC])
def test_signature_is_the_specs(owner, method, expected):
    parameters = list(inspect.signature(getattr(getattr(recur, owner), method)).parameters.values())[1:]  # self
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) >= len(expected), f"{owner}.{method}{inspect.signature(getattr(getattr(recur, owner), method))}"
    for parameter, (name, default) in zip(positional, expected):
        if name is not None:  # the spec shows some arguments only by position (s.step(x_chunk))
            assert parameter.name == name, f"{owner}.{method}: {parameter.name} where the spec has {name}"
        if default is not REQUIRED:  # a parameter the spec requires may still get a default
            assert parameter.default == default and type(parameter.default) is type(default), \
                f"{owner}.{method}({parameter.name}): default {parameter.default!r}, the spec's is {default!r}"
    extra = parameters[len(expected):]
    assert all(p.default is not REQUIRED for p in extra if p.kind is not p.VAR_KEYWORD), \
        f"{owner}.{method}: parameters beyond the spec's must be optional"


@pytest.mark.parametrize("name", ["Model", "Session", "Client", "RemoteSession"])
def test_everything_is_a_context_manager(name):
    owner = getattr(recur, name)
    assert callable(getattr(owner, "__enter__")) and callable(getattr(owner, "__exit__"))


def test_kernels_names_the_variant_in_use():
    assert recur.kernels() in ("avx512", "avx2", "portable")
    # RECUR_KERNELS picks a variant the CPU runs (every CPU runs the portable one), in a new process
    # since the choice is made once.
    asked = subprocess.run([sys.executable, "-c", "import recur; print(recur.kernels())"],
                           env={**os.environ, "RECUR_KERNELS": "portable"}, capture_output=True, text=True, check=True)
    assert asked.stdout.strip() == "portable"


def test_module_names():
    assert isinstance(recur.__version__, str)
    assert issubclass(recur.RecurError, Exception)
    assert isinstance(recur.Model.labels, property)
    error = recur.RecurError("busy", "queue full")
    assert (error.code, error.message) == ("busy", "queue full")
    for name in ("Model", "Session", "Client", "RemoteSession", "RecurError", "save", "__version__"):
        assert name in dir(recur)
