"""Model.encode with the model's tokenizer and vocab (model-format.md)."""

import numpy as np
import pytest

import recur

CHARS = ["<pad>", "<unk>", "a", "b", "c", "d", "e", "h", "o", "l", " ", "!"]
WORDS = ["<pad>", "<unk>", "good", "not", "bad", ",", "movie", "it's", "i", "liked", "the", "!"]


def lm_file(tmp_path, vocab, tokenizer):
    """A 12-token language model (random weights) with the given vocab and tokenizer."""
    rng = np.random.default_rng(0)
    arch = {"format": 1, "input": {"kind": "tokens", "vocab_size": 12}, "vocab": vocab, "tokenizer": tokenizer,
            "layers": [{"name": "embed", "type": "embedding", "num_embeddings": 12, "embedding_dim": 4},
                       {"name": "lm", "type": "gru", "input_size": 4, "hidden_size": 5},
                       {"name": "logits", "type": "linear", "in_features": 5, "out_features": 12}]}
    shapes = {"embed.weight": (12, 4), "lm.weight_ih_l0": (15, 4), "lm.weight_hh_l0": (15, 5),
              "lm.bias_ih_l0": (15,), "lm.bias_hh_l0": (15,), "logits.weight": (12, 5), "logits.bias": (12,)}
    path = tmp_path / "lm.safetensors"
    recur.save(path, arch, {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()})
    return path


def test_char_tokenizer_pads_with_zero(tmp_path):
    with recur.Model(lm_file(tmp_path, CHARS, {"kind": "char", "unk_id": 1})) as model:
        ids, lengths = model.encode(["hello!", "", "ab z"])
        assert ids.dtype == np.int64 and lengths.dtype == np.int64
        expected = [[CHARS.index(c) if c in CHARS else 1 for c in text] for text in ["hello!", "", "ab z"]]
        np.testing.assert_array_equal(lengths, [6, 0, 4])
        np.testing.assert_array_equal(ids, [row + [0] * (6 - len(row)) for row in expected])
        # The ids feed the model directly.
        assert model.run(ids[:1], lengths=lengths[:1])["output"].shape == (1, 6, 12)


def test_word_tokenizer_lowercases_and_splits_punctuation(tmp_path):
    with recur.Model(lm_file(tmp_path, WORDS, {"kind": "word", "lowercase": True, "unk_id": 1})) as model:
        ids, lengths = model.encode("Good, not BAD! I liked it's Plot")
    expected = [WORDS.index(w) if w in WORDS else 1 for w in
                ["good", ",", "not", "bad", "!", "i", "liked", "it's", "plot"]]
    np.testing.assert_array_equal(ids, [expected])
    np.testing.assert_array_equal(lengths, [9])


def test_empty_batch_and_bad_texts(tmp_path):
    with recur.Model(lm_file(tmp_path, CHARS, {"kind": "char"})) as model:
        ids, lengths = model.encode([])
        assert ids.shape == (0, 0) and lengths.shape == (0,)
        for texts in (["ok", 3], ["a\0b"]):
            with pytest.raises(recur.RecurError) as error:
                model.encode(texts)
            assert error.value.code == "invalid_argument"
            assert "texts[" in error.value.message
