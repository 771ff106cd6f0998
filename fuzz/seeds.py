"""Writes the seed corpus of a fuzz target: python3 fuzz/seeds.py TARGET CORPUS_DIR GOLDEN_DIR EXAMPLES_DIR.

Seeds are valid inputs of each kind, taken from the golden models and the examples, so the fuzzer
starts from files and requests that get deep into the engine and mutates from there."""
import glob
import json
import os
import struct
import sys

SEPARATOR = b"\xff\xfeFR"  # between frames of a request (fuzz/targets/request.swift)


def model_files(golden, examples):
    return sorted(glob.glob(os.path.join(golden, "*", "model.safetensors"))) + sorted(
        glob.glob(os.path.join(examples, "*.safetensors")))


def header(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return f.read(length)


def architecture(path):
    return json.loads(header(path))["__metadata__"]["recur"].encode()


def requests():
    x = struct.pack("<10f", *range(10))
    tensor = {"dtype": "float32", "shape": [1, 2, 5]}
    return [
        ({"op": "ping", "id": 1}, []),
        ({"op": "models"}, []),
        ({"op": "describe", "model": "char_lm"}, []),
        ({"op": "infer", "model": "lstm_basic", "binary": True, "inputs": {"input": {**tensor, "frame": 1}}}, [x]),
        ({"op": "infer", "model": "lstm_basic", "inputs": {"input": {**tensor, "data": [[[0.5] * 5] * 2]}}}, []),
        ({"op": "infer", "model": "lstm_lengths_states", "inputs": {
            "input": {"dtype": "float32", "shape": [2, 2, 5], "frame": 1},
            "lengths": {"dtype": "int64", "shape": [2], "data": [1, 2]},
            "rnn.h0": {"dtype": "float32", "shape": [1, 2, 8], "frame": 2}}}, [x + x, bytes(64)]),
        ({"op": "infer", "model": "char_lm", "outputs": ["output"],
          "inputs": {"input": {"dtype": "int32", "shape": [1, 3], "data": [1, 2, 3]}}}, []),
        ({"op": "infer", "model": "bilstm_classifier", "inputs": {"input": {"dtype": "int64", "shape": [2, 2], "data": [[1, 2], [3, 4]]}}}, []),
        ({"op": "session.step", "session": "char_lm", "inputs": {"input": {"dtype": "int64", "shape": [1, 2], "data": [[5, 6]]}}}, []),
        ({"op": "generate", "model": "char_lm", "prompt": [1, 2], "max_tokens": 5, "temperature": 0.8,
          "top_k": 3, "top_p": 0.9, "seed": 7, "stop": [0]}, []),
        ({"op": "session.open", "model": "char_lm"}, []),
        ({"op": "load", "model": "x", "path": "a.safetensors"}, []),
    ]


def training_seeds():
    """(architecture, task, data) of small trainings of each task and input kind."""
    def tokens(layers, tokenizer="char"):
        return {"format": 1, "input": {"kind": "tokens", "vocab_size": "auto"}, "tokenizer": {"kind": tokenizer},
                "layers": [{"name": "embed", "type": "embedding", "num_embeddings": "auto", "embedding_dim": 4}] + layers}
    head = {"name": "head", "type": "linear", "in_features": 6, "out_features": "auto"}
    lm = tokens([{"name": "rnn", "type": "lstm", "input_size": 4, "hidden_size": 6}, head])
    classify = tokens([{"name": "rnn", "type": "gru", "input_size": 4, "hidden_size": 3, "bidirectional": True},
                       {"name": "pool", "type": "pool", "mode": "final_state"}, head, {"name": "p", "type": "softmax"}], "word")
    tag = tokens([{"name": "rnn", "type": "rnn", "input_size": 4, "hidden_size": 6, "num_layers": 2},
                  {"name": "drop", "type": "dropout", "p": 0.2}, head], "word")
    x = struct.pack("<12f", *[i / 7 for i in range(12)])
    features = {"format": 1, "input": {"kind": "features", "size": 2},
                "layers": [{"name": "rnn", "type": "lstm", "input_size": 2, "hidden_size": 6},
                           {"name": "pool", "type": "pool", "mode": "mean"}, head]}
    header = json.dumps({"x": {"dtype": "F32", "shape": [2, 3, 2], "data_offsets": [0, 48]},
                         "y": {"dtype": "I64", "shape": [2], "data_offsets": [48, 64]},
                         "lengths": {"dtype": "I64", "shape": [2], "data_offsets": [64, 80]}}).encode()
    feature_file = struct.pack("<Q", len(header)) + header + x + struct.pack("<4q", 0, 1, 3, 2)
    return [
        (lm, 0, b"abcabcabd abcab\n"),
        (classify, 1, b"pos\tgood , not bad\nneg\tbad , not good\n"),
        (tag, 2, b"the dog runs\tD N V\na cat sleeps\tD N V\n"),
        (features, 1, feature_file),
    ]


def main():
    target, corpus, golden, examples = sys.argv[1:5]
    seeds = []
    files = model_files(golden, examples)
    if target == "model":
        seeds = [open(path, "rb").read() for path in files]
    elif target == "architecture":
        seeds = [architecture(path) + b"\0" + bytes(range(0, 256, 7)) for path in files]
    elif target == "json":
        seeds = [header(path) for path in files] + [architecture(path) for path in files]
        seeds += [json.dumps(h).encode() for h, _ in requests()]
    elif target == "request":
        seeds = [SEPARATOR.join([json.dumps(h).encode()] + frames) for h, frames in requests()]
    elif target == "train":  # architecture, NUL, task (0 lm, 1 classify, 2 tag), NUL, data file
        seeds = [json.dumps(arch).encode() + b"\0" + bytes([task]) + b"\0" + text for arch, task, text in training_seeds()]
    elif target == "run":  # model, operation, then the choices
        seeds = [bytes([m, op]) + bytes(range(k, 200, 3)) for m in range(11) for op in range(4) for k in (1, 2)]
    elif target == "capi":  # model, a non-NULL handle, the call, then the choices
        seeds = [bytes([m, 9, call]) + bytes(range(k, 200, 3)) for m in range(11) for call in range(5) for k in (1, 2)]
    else:
        sys.exit(f"unknown fuzz target {target}")
    for i, seed in enumerate(seeds):
        with open(os.path.join(corpus, f"seed-{i:03d}"), "wb") as f:
            f.write(seed)


if __name__ == "__main__":
    main()
