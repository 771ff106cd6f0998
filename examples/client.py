#!/usr/bin/env python3
"""Uses the example models served by recurd over ZeroMQ: classify, tag and generate.

Text becomes token ids with each model file's own tokenizer and vocabulary (recur.Model.encode,
in-process); the daemon does the computing. Usage: client.py [ENDPOINT]
"""
import os
import sys

import numpy as np
import recur

EXAMPLES = os.path.dirname(os.path.abspath(__file__))


def local(name):
    return recur.Model(os.path.join(EXAMPLES, f"{name}.safetensors"))


def classify(client):
    texts = ["good, not bad", "bad, not good", "not bad at all", "not good at all"]
    with local("sentiment") as model:
        ids, lengths = model.encode(texts)
        probabilities = client.infer("sentiment", ids, lengths=lengths)["output"]
        print("sentiment (word order decides):")
        for text, p in zip(texts, probabilities):
            print(f"  {text!r:22} -> {model.labels[int(np.argmax(p))]:4} (p = {float(np.max(p)):.2f})")


def tag(client):
    texts = ["we often watch the light", "the book slept near my fish", "they want to ring the bell ."]
    with local("tagger") as model:
        ids, lengths = model.encode(texts)
        scores = client.infer("tagger", ids, lengths=lengths)["output"]
        vocab = model.describe()["vocab"]
        print("tagger:")
        for row, n, s in zip(ids, lengths, scores):
            words = [vocab[i] for i in row[:n]]
            tags = [model.labels[int(np.argmax(v))] for v in s[:n]]
            print("  " + " ".join(f"{w}/{t}" for w, t in zip(words, tags)))


def generate(client):
    prompt = "The "
    with local("chars") as model:
        ids, _ = model.encode([prompt])
        vocab = model.describe()["vocab"]
        tokens = client.generate("chars", [int(i) for i in ids[0]], 60, temperature=0.7, seed=7)
        print("chars (generated after %r):" % prompt)
        print("  " + prompt + "".join(vocab[t] for t in tokens))


def main():
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
    with recur.Client(endpoint, timeout=10.0) as client:
        print("ping:", client.ping())
        served = {m["name"] for m in client.models()}
        print("models:", ", ".join(sorted(served)))
        for name, show in [("sentiment", classify), ("tagger", tag), ("chars", generate)]:
            if name in served:
                show(client)


if __name__ == "__main__":
    main()
