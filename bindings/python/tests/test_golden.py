"""Every golden case (PyTorch's outputs) through both transports."""

import numpy as np
import pytest

import recur
from support import GOLDEN_CASES, assert_close, load_case, model_path


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_outputs_match_pytorch(transport, case):
    data = load_case(case)
    outputs = transport.run(case, data["input"], lengths=data["lengths"], states=data["states"])
    assert list(outputs)[0] == "output"
    assert set(outputs) == set(data["expected"])
    for name, expected in data["expected"].items():
        assert outputs[name].dtype == np.float32
        assert_close(outputs[name], expected, f"{case} {name}")


@pytest.mark.parametrize("case", ["bilstm_classifier", "bigru_tagger", "char_lm"])
def test_token_inputs_as_int32_give_the_same_outputs(transport, case):
    data = load_case(case)
    outputs = transport.run(case, data["input"].astype(np.int32),
                            lengths=None if data["lengths"] is None else data["lengths"].astype(np.int32))
    assert_close(outputs["output"], data["expected"]["output"], case)


def test_inputs_in_other_layouts_are_converted(transport):
    # Fortran order, float64 and a Python list all carry the same numbers as the golden input.
    data = load_case("lstm_basic")
    expected = data["expected"]["output"]
    for x in (np.asfortranarray(data["input"]), data["input"].astype(np.float64), data["input"].tolist()):
        assert_close(transport.run("lstm_basic", x)["output"], expected, type(x).__name__)


def test_model_from_bytes_keeps_nothing_of_the_image():
    data = load_case("bigru_tagger")
    image = bytearray(model_path("bigru_tagger").read_bytes())
    with recur.Model.from_bytes(image) as model:
        image[:] = bytes(len(image))  # the library read the image during the call: overwriting it changes nothing
        outputs = model.run(data["input"], lengths=data["lengths"])
    for name, expected in data["expected"].items():
        assert_close(outputs[name], expected, name)
