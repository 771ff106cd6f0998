"""recur.save / save_tensors / load_tensors: the safetensors container, checked byte by byte."""

import json

import numpy as np
import pytest

import recur
from support import model_path

ARRAYS = {
    "f32": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    "f64": np.linspace(-1, 1, 5),
    "f16": np.array([0.5, -2.0, 65504.0], np.float16),
    "i64": np.array([[-(2**62), 3]], np.int64),
    "i32": np.array([7, -8], np.int32),
    "i16": np.array([-300], np.int16),
    "i8": np.array([-5, 6], np.int8),
    "u64": np.array([2**63 + 5], np.uint64),
    "u32": np.array([4_000_000_000], np.uint32),
    "u16": np.array([65535], np.uint16),
    "u8": np.array([1, 255], np.uint8),
    "bool": np.array([True, False, True]),
    "scalar": np.array(3.25, np.float32),
    "empty": np.zeros((0, 4), np.float32),
    "big_endian": np.array([1.5, -3.0], ">f4"),
    "strided": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],
}


def read_header(path):
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    return length, json.loads(raw[8:8 + length]), raw[8 + length:]


def test_round_trip_keeps_values_and_dtypes(tmp_path):
    path = tmp_path / "t.safetensors"
    recur.save_tensors(path, ARRAYS, {"note": "x"})
    loaded = recur.load_tensors(path)
    assert set(loaded) == set(ARRAYS)
    for name, array in ARRAYS.items():
        assert loaded[name].dtype == array.dtype.newbyteorder("="), name
        assert loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)
        assert loaded[name].flags.writeable and loaded[name].flags.c_contiguous


def test_layout_is_the_safetensors_layout(tmp_path):
    path = tmp_path / "t.safetensors"
    recur.save_tensors(path, ARRAYS, {"note": "x"})
    length, header, data = read_header(path)
    assert length % 8 == 0
    assert header.pop("__metadata__") == {"note": "x"}
    spans = sorted((entry["data_offsets"], name) for name, entry in header.items())
    assert spans[0][0][0] == 0 and spans[-1][0][1] == len(data)
    for ((_, end), _), ((begin, _), _) in zip(spans, spans[1:]):
        assert begin == end  # packed without gaps or overlaps
    names = {"f32": "F32", "f64": "F64", "f16": "F16", "i64": "I64", "i32": "I32", "i16": "I16", "i8": "I8",
             "u64": "U64", "u32": "U32", "u16": "U16", "u8": "U8", "bool": "BOOL", "scalar": "F32",
             "empty": "F32", "big_endian": "F32", "strided": "F32"}
    for name, array in ARRAYS.items():
        entry = header[name]
        assert entry["dtype"] == names[name] and entry["shape"] == list(array.shape)
        begin, end = entry["data_offsets"]
        assert begin % array.dtype.itemsize == 0, f"{name} is not aligned"
        assert data[begin:end] == np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()


def test_reads_files_written_by_the_safetensors_library():
    tensors = recur.load_tensors(model_path("bilstm_classifier"))
    assert tensors["embed.weight"].shape == (20, 6)
    assert tensors["encoder.weight_ih_l1_reverse"].shape == (20, 10)
    assert tensors["head.bias"].shape == (3,)
    assert all(t.dtype == np.float32 for t in tensors.values())


def write_raw(path, header, data: bytes):
    """A safetensors file with ``header`` (JSON, or text as it is) and ``data``."""
    encoded = (header if isinstance(header, str) else json.dumps(header)).encode()
    path.write_bytes(len(encoded).to_bytes(8, "little") + encoded + data)


def test_bf16_is_read_as_float32(tmp_path):
    values = np.array([1.5, -2.0, 0.15625, 2.0**100], np.float32)
    upper = (values.view(np.uint32) >> 16).astype("<u2")
    path = tmp_path / "bf16.safetensors"
    write_raw(path, {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}, upper.tobytes())
    loaded = recur.load_tensors(path)["w"]
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, values.reshape(2, 2))


@pytest.mark.parametrize("header, data, words", [
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"1234", ["'w'", "data_offsets"]),
    ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"12345678", ["'w'", "needs 12"]),
    ({"w": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 4]}}, b"1234", ["'w'", "dtype"]),
    ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"1234", ["'w'", "shape"]),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"12345678", ["overlap"]),
    ([1, 2], b"", ["not a JSON object"]),
    ("[" * 100_000, b"", ["JSON"]),
    ({"w": {"dtype": "F32", "shape": [0, 2**62, 2**62], "data_offsets": [0, 0]}}, b"", ["'w'", "shape"]),
])
def test_malformed_headers(tmp_path, header, data, words):
    path = tmp_path / "bad.safetensors"
    write_raw(path, header, data)
    with pytest.raises(recur.RecurError) as error:
        recur.load_tensors(path)
    assert error.value.code == "format"
    for word in words:
        assert word in error.value.message


def elman_reference(x, w_ih, w_hh, b_ih, b_hh, head_w, head_b):
    """tanh RNN then a linear head, step by step in numpy (model-format.md formulas)."""
    batch, steps, _ = x.shape
    h = np.zeros((batch, w_hh.shape[0]))
    outputs = []
    for t in range(steps):
        h = np.tanh(x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
        outputs.append(h @ head_w.T + head_b)
    return np.stack(outputs, axis=1), h


class TorchLike:
    """Not an ndarray, but has .numpy(), as a torch tensor does."""

    def __init__(self, array):
        self.array = array

    def numpy(self):
        return self.array


def test_save_writes_a_model_recur_runs(tmp_path):
    rng = np.random.default_rng(5)
    arch = {"format": 1, "name": "tiny", "input": {"kind": "features", "size": 3}, "labels": ["a", "b"],
            "layers": [{"name": "cell", "type": "rnn", "input_size": 3, "hidden_size": 4},
                       {"name": "head", "type": "linear", "in_features": 4, "out_features": 2}]}
    weights = {"cell.weight_ih_l0": rng.normal(size=(4, 3)), "cell.weight_hh_l0": rng.normal(size=(4, 4)),
               "cell.bias_ih_l0": rng.normal(size=4), "cell.bias_hh_l0": rng.normal(size=4),
               "head.weight": rng.normal(size=(2, 4)), "head.bias": rng.normal(size=2)}
    tensors = {name: TorchLike(value.astype(np.float32)) for name, value in weights.items()}
    path = tmp_path / "tiny.safetensors"
    recur.save(path, arch, tensors)

    _, header, _ = read_header(path)
    assert json.loads(header["__metadata__"]["recur"]) == arch
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    expected_output, expected_h = elman_reference(x.astype(np.float64), *[
        weights[n] for n in ("cell.weight_ih_l0", "cell.weight_hh_l0", "cell.bias_ih_l0", "cell.bias_hh_l0",
                             "head.weight", "head.bias")])
    with recur.Model(path) as model:
        assert model.labels == ["a", "b"]
        assert model.describe()["layers"][0]["name"] == "cell"
        outputs = model.run(x)
    np.testing.assert_allclose(outputs["output"], expected_output, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs["cell.h_n"][0], expected_h, rtol=1e-4, atol=1e-5)


def test_save_replaces_atomically_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"old")
    recur.save_tensors(path, {"a": np.ones(2, np.float32)})
    assert list(tmp_path.iterdir()) == [path]
    np.testing.assert_array_equal(recur.load_tensors(path)["a"], [1, 1])
    with pytest.raises(recur.RecurError) as error:
        recur.save_tensors(tmp_path / "missing" / "m.safetensors", {"a": np.ones(2)})
    assert error.value.code == "io"
    with pytest.raises(recur.RecurError) as error:
        recur.save_tensors(path, {"a": np.array(["text"])})
    assert error.value.code == "invalid_argument" and "'a'" in error.value.message
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("arch", [["layers"], {"bad": float("nan")}, {"x": object()}])
def test_save_needs_a_json_architecture(tmp_path, arch):
    with pytest.raises(recur.RecurError) as error:
        recur.save(tmp_path / "m.safetensors", arch, {"a": np.ones(1, np.float32)})
    assert error.value.code == "invalid_argument"
    assert "arch" in error.value.message
