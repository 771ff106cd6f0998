"""The remote path: a client of the recurd daemon over ZeroMQ (protocol.md), binary frames."""

import json
import math
import threading

import numpy as np

try:
    import zmq
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError("recur.Client needs pyzmq: pip install 'recur[client]'") from error

from ._errors import RecurError
from ._inputs import collect_inputs, generation_arguments

__all__ = ["Client", "RemoteSession"]

_WIRE_DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "int64": np.dtype("<i8")}
_WIRE_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.int32): "int32", np.dtype(np.int64): "int64"}


class Client:
    """A connection to ``recurd`` (protocol.md). Each call sends one request on a REQ socket and
    waits at most ``timeout`` seconds for the reply, else raises RecurError "timeout" (the socket
    is then replaced, so the client stays usable). Calls from several threads are serialized.

    CURVE: pass the daemon's public key as ``server_key`` and this client's key pair as
    ``public_key``/``secret_key`` (Z85 text or bytes, as ``zmq.curve_keypair()`` makes them);
    without a key pair a fresh one is made.
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555", timeout: float = 10.0, *,
                 server_key=None, public_key=None, secret_key=None):
        self.timeout = timeout
        if server_key is None and (public_key is not None or secret_key is not None):
            raise RecurError("invalid_argument", "CURVE keys need the server's public key (server_key) too")
        if (public_key is None) != (secret_key is None):
            raise RecurError("invalid_argument", "give both public_key and secret_key, or neither")
        if server_key is not None and public_key is None:
            public_key, secret_key = zmq.curve_keypair()
        self._endpoint = endpoint
        self._keys = None if server_key is None else tuple(
            _z85_key(name, key) for name, key in
            (("server_key", server_key), ("public_key", public_key), ("secret_key", secret_key)))
        self._context = zmq.Context()
        self._lock = threading.Lock()
        try:
            self._socket = self._connect()
        except BaseException:
            self._context.term()
            raise

    @property
    def timeout(self) -> float:
        """Seconds each call waits for its reply; may be changed between calls."""
        return self._timeout_ms / 1000

    @timeout.setter
    def timeout(self, timeout: float) -> None:
        try:
            seconds = float(timeout)
        except (TypeError, ValueError):
            seconds = math.nan
        if not 0 < seconds < math.inf:
            raise RecurError("invalid_argument", f"timeout must be a positive number of seconds, found {timeout!r}")
        self._timeout_ms = max(1, round(seconds * 1000))

    def _connect(self) -> "zmq.Socket":
        socket = self._context.socket(zmq.REQ)
        socket.setsockopt(zmq.LINGER, 0)
        try:
            if self._keys is not None:
                server, public, secret = self._keys
                socket.curve_serverkey, socket.curve_publickey, socket.curve_secretkey = server, public, secret
            socket.connect(self._endpoint)
        except zmq.ZMQError as error:
            socket.close()
            raise RecurError("invalid_argument", f"cannot use {self._endpoint!r}: {error}") from None
        return socket

    def close(self) -> None:
        """Closes the socket. Idempotent."""
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None
                self._context.term()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, header: dict, frames=()) -> tuple:
        """Sends one request and returns (reply header, reply frames), or raises the reply's error."""
        message = [json.dumps(header, allow_nan=False).encode("utf-8"), *frames]
        with self._lock:
            if self._socket is None:
                raise RecurError("invalid_argument", "client is closed")
            try:
                self._socket.send_multipart(message, copy=False)
                ready = self._socket.poll(self._timeout_ms, zmq.POLLIN)
                reply = self._socket.recv_multipart(copy=False) if ready else None
            except BaseException as error:
                # Interrupted or failed between send and receive: a REQ socket cannot go on from there.
                self._replace_socket()
                if isinstance(error, zmq.ZMQError):
                    raise RecurError("internal", f"{header['op']}: ZeroMQ error: {error}") from None
                raise
            if reply is None:
                # A REQ socket that sent without receiving cannot send again: start afresh.
                self._replace_socket()
                raise RecurError("timeout", f"{header['op']}: no reply from {self._endpoint} within "
                                            f"{self._timeout_ms / 1000:g} s")
        try:
            reply_header = json.loads(reply[0].bytes.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise RecurError("internal", f"{header['op']}: reply header is not JSON ({error})") from None
        if not isinstance(reply_header, dict) or not isinstance(reply_header.get("ok"), bool):
            raise RecurError("internal", f"{header['op']}: reply header has no \"ok\" field")
        if not reply_header["ok"]:
            error = reply_header.get("error") if isinstance(reply_header.get("error"), dict) else {}
            raise RecurError(str(error.get("code", "internal")), str(error.get("message", "request failed")))
        return reply_header, reply[1:]

    def _replace_socket(self) -> None:
        self._socket.close()
        self._socket = self._connect()

    def ping(self) -> dict:
        """The daemon's versions: {"version": ..., "abi": its C ABI version, ...}."""
        reply, _ = self._request({"op": "ping"})
        return _fields(reply)

    def models(self) -> list:
        """The loaded models: [{"name", "input", "outputs", "layers"}, ...]."""
        reply, _ = self._request({"op": "models"})
        return _field(reply, "models", "models", list)

    def describe(self, name: str) -> dict:
        """The model's architecture JSON plus shapes, as ``Model.describe``."""
        reply, _ = self._request({"op": "describe", "model": name})
        return _field(reply, "describe", "model", dict)

    def infer(self, name: str, x, lengths=None, states=None, outputs=None) -> dict:
        """Whole-sequence inference on the daemon's model ``name``, as ``Model.run``; ``outputs``
        optionally names the outputs wanted (default all)."""
        header = {"op": "infer", "model": name}
        if outputs is not None:
            header["outputs"] = list(outputs)
        return self._tensor_request(header, collect_inputs(x, lengths, states))

    def _tensor_request(self, header: dict, inputs: list) -> dict:
        header["binary"] = True
        header["inputs"] = {name: {"dtype": _WIRE_NAMES[array.dtype], "shape": list(array.shape), "frame": frame}
                            for frame, (name, array) in enumerate(inputs, start=1)}
        # Frames straight from the arrays' memory (the engine's dtypes are little-endian native).
        reply, frames = self._request(header, [array.reshape(-1).view(np.uint8) for _, array in inputs])
        return _decode_outputs(header["op"], reply.get("outputs"), frames)

    def session(self, name: str) -> "RemoteSession":
        """A streaming session on the daemon's model ``name``; a context manager."""
        reply, _ = self._request({"op": "session.open", "model": name})
        return RemoteSession(self, _field(reply, "session.open", "session", str))

    def generate(self, name: str, prompt, max_tokens, temperature=1.0, top_k=0, top_p=1.0, seed=None,
                 stop=()) -> list:
        """As ``Model.generate``, on the daemon's model ``name``. The daemon reads ``seed`` as a
        JSON integer, so it must be below 2**63 (in-process, any 64-bit seed)."""
        arguments = generation_arguments(prompt, max_tokens, temperature, top_k, top_p, seed, stop)
        if arguments["seed"] >= 2**63:
            raise RecurError("invalid_argument", f"seed must be in [0, {2**63 - 1}] for the daemon, found {seed}")
        reply, _ = self._request({"op": "generate", "model": name, **arguments})
        tokens = _field(reply, "generate", "tokens", list)
        if not all(type(t) is int for t in tokens):
            raise RecurError("internal", "generate: reply tokens are not all integers")
        return tokens

    def load(self, name: str, path: str) -> None:
        """Loads (or atomically replaces) the model ``name`` from ``path`` on the daemon's machine."""
        self._request({"op": "load", "model": name, "path": str(path)})

    def unload(self, name: str) -> None:
        self._request({"op": "unload", "model": name})

    def stats(self) -> dict:
        """The daemon's counters and latencies."""
        reply, _ = self._request({"op": "stats"})
        return _fields(reply)


class RemoteSession:
    """A session held by the daemon, from ``Client.session``. Closing is idempotent; a session the
    daemon already dropped (idle time-out) counts as closed."""

    def __init__(self, client: Client, session: str):
        self._client = client
        self._session = session

    def step(self, x) -> dict:
        """As ``Session.step``."""
        return self._client._tensor_request({"op": "session.step", "session": self._open()}, collect_inputs(x))

    def reset(self) -> None:
        self._client._request({"op": "session.reset", "session": self._open()})

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                self._client._request({"op": "session.close", "session": session})
            except RecurError as error:
                if error.code != "not_found":
                    raise

    def _open(self) -> str:
        if self._session is None:
            raise RecurError("invalid_argument", "session is closed")
        return self._session

    def __enter__(self) -> "RemoteSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _field(reply: dict, op: str, key: str, kind: type):
    value = reply.get(key)
    if not isinstance(value, kind):
        raise RecurError("internal", f"{op}: reply has no {key!r} of type {kind.__name__}")
    return value


def _fields(reply: dict) -> dict:
    return {key: value for key, value in reply.items() if key not in ("ok", "id")}


def _z85_key(name: str, key) -> bytes:
    encoded = key.encode("ascii") if isinstance(key, str) else bytes(key)
    if len(encoded) != 40:
        raise RecurError("invalid_argument", f"{name} must be a 40-character Z85 CURVE key, found {len(encoded)} characters")
    return encoded


def _decode_outputs(op: str, outputs, frames) -> dict:
    """The reply's tensors as numpy arrays the caller owns, binary ("frame") or inline ("data")."""
    if not isinstance(outputs, dict):
        raise RecurError("internal", f"{op}: reply has no outputs")
    decoded = {}
    # "output" first, as in-process (JSON objects carry no order the daemon must keep).
    for name, tensor in sorted(outputs.items(), key=lambda item: item[0] != "output"):
        def fail(what):
            return RecurError("internal", f"{op}: reply tensor {name!r}: {what}")
        if not isinstance(tensor, dict):
            raise fail("not an object")
        dtype, shape = _WIRE_DTYPES.get(tensor.get("dtype")), tensor.get("shape")
        if dtype is None:
            raise fail(f"unknown dtype {tensor.get('dtype')!r}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise fail(f"shape {shape!r} is not a list of non-negative integers")
        if "frame" in tensor:
            index = tensor["frame"]
            if type(index) is not int or not 1 <= index <= len(frames):
                raise fail(f"frame {index!r} is not one of the {len(frames)} frames")
            buffer = frames[index - 1].buffer
            expected = math.prod(shape) * dtype.itemsize
            if buffer.nbytes != expected:
                raise fail(f"frame {index} has {buffer.nbytes} bytes, shape {shape} needs {expected}")
            array = np.frombuffer(buffer, dtype=dtype).reshape(shape)
        else:
            try:
                array = np.array(tensor.get("data"), dtype=dtype).reshape(shape)
            except (TypeError, ValueError) as error:
                raise fail(f"inline data does not fit shape {shape} ({error})") from None
        decoded[name] = array.astype(dtype.newbyteorder("="), copy=True)
    return decoded
