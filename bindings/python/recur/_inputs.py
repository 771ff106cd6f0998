"""What callers pass, checked and converted once; shared by the in-process and remote paths."""

import math
import operator
import secrets
from collections.abc import Mapping

import numpy as np

from ._errors import RecurError

_INT32 = np.dtype(np.int32)
_INT64 = np.dtype(np.int64)
_FLOAT32 = np.dtype(np.float32)
_TAKEN_AS_IS = (_FLOAT32, _INT32, _INT64)


def as_tensor_array(name: str, value) -> np.ndarray:
    """``value`` as a C-contiguous, aligned float32, int32 or int64 array.

    Floating point becomes float32, int32 and int64 stay as they are, other integers become int64.
    An array that already fits is returned as it is (no copy); anything else is converted once.
    """
    if type(value) is np.ndarray and value.dtype in _TAKEN_AS_IS and value.flags.c_contiguous and value.flags.aligned:
        return value  # without np.require, whose own checks cost a few µs on every call
    try:
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (TypeError, ValueError) as error:
        raise RecurError("invalid_input", f"{name}: not an array of numbers ({error})") from None
    kind = array.dtype.kind
    if kind == "f":
        target = _FLOAT32
    elif kind in "iu":
        target = array.dtype if array.dtype in (_INT32, _INT64) else _INT64
        if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
            raise RecurError("invalid_input", f"{name}: value {array.max()} does not fit in int64")
    else:
        raise RecurError("invalid_input",
                         f"{name}: dtype {array.dtype} is not a number type (float32, int32 or int64 expected)")
    return np.require(array, dtype=target, requirements=["C_CONTIGUOUS", "ALIGNED"])


def collect_inputs(x, lengths=None, states=None) -> list[tuple[str, np.ndarray]]:
    """The named input tensors of model-format.md: "input", optional "lengths", then the states
    ({"L.h0": [layers·D, B, H], "L.c0": ...})."""
    inputs = [("input", as_tensor_array("input", x))]
    if lengths is not None:
        inputs.append(("lengths", as_tensor_array("lengths", lengths)))
    if states is not None:
        if not isinstance(states, Mapping):
            raise RecurError("invalid_argument",
                             f"states must be a dict such as {{'L.h0': array}}, found {type(states).__name__}")
        for state_name, value in states.items():
            if not isinstance(state_name, str) or state_name in ("input", "lengths"):
                raise RecurError("invalid_argument",
                                 f"states: key {state_name!r} is not a state name such as 'L.h0' or 'L.c0'")
            inputs.append((state_name, as_tensor_array(state_name, value)))
    return inputs


_INT32_RANGE = range(-2**31, 2**31)
_UINT64_RANGE = range(0, 2**64)


def generation_arguments(prompt, max_tokens, temperature, top_k, top_p, seed, stop) -> dict:
    """The arguments of ``generate`` as plain Python values, in the ranges the C API and the wire
    protocol can carry: prompt and stop as lists of int32 token ids, a 64-bit seed (when ``seed``
    is None, a fresh random one below 2**63, which every JSON integer parser takes)."""
    return {
        "prompt": _token_ids("prompt", prompt),
        "max_tokens": _integer("max_tokens", max_tokens, range(0, 2**63)),
        "temperature": _number("temperature", temperature),
        "top_k": _integer("top_k", top_k, _INT32_RANGE),
        "top_p": _number("top_p", top_p),
        "seed": secrets.randbits(63) if seed is None else _integer("seed", seed, _UINT64_RANGE),
        "stop": _token_ids("stop", stop),
    }


def _integer(name, value, allowed: range) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise RecurError("invalid_argument", f"{name} must be an integer, found {type(value).__name__}") from None
    if number not in allowed:
        raise RecurError("invalid_argument", f"{name} must be in [{allowed.start}, {allowed.stop - 1}], found {number}")
    return number


def _number(name, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not math.isfinite(number):
        raise RecurError("invalid_argument", f"{name} must be a finite number, found {value!r}")
    return number


def _token_ids(name, values) -> list[int]:
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:
        raise RecurError("invalid_argument", f"{name} must be a list of token ids ({error})") from None
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise RecurError("invalid_argument", f"{name} must be a flat list of integer token ids")
    ids = [int(v) for v in array]
    for position, token in enumerate(ids):
        if token not in _INT32_RANGE:
            raise RecurError("invalid_input", f"{name}[{position}] is token id {token}, outside int32")
    return ids
