#!/usr/bin/env python3
"""Training-quality suite for `recur train`: tasks an outside checker plausibly sets, trained with
the CLI and scored on held-out data through the Python binding (recur.Model, Model.encode).

Tasks (all generated here, deterministically, except the real English text):
  first_token   classify, word tokens: the first token decides the label, 50–200 distractors follow
                (from the same 20 words: the label is which half the first word is from)
  first_marker  classify, word tokens: the first token is the label, 50–200 distractors (other words)
  first_char    classify, char tokens: the first character decides the label, 50–200 random letters
  copy_first    classify, features: a one-hot symbol at step 0 (of 4), 50–200 noise steps follow
  adding        classify, features: values + two markers; label = whether the marked values sum > 1
  word_order    classify, word tokens: "good , not bad" vs "bad , not good" — bag of words fails
  charlm        lm, chars of real English text (Python's reference manual, pydoc_data), held-out bpc

Architectures: embedding → lstm|gru (hidden 64–128, 1–2 layers) → pool last|final_state → linear
"auto", as a user would write them, with the CLI's default flags unless --flags says otherwise.

    python3 bench/train_tasks.py                       # every task, default flags, lstm128
    python3 bench/train_tasks.py --tasks first_token --arch gru64 --flags "--epochs 20"
    python3 bench/train_tasks.py --torch               # also PyTorch, same data, same settings

Needs numpy. Scores through this checkout's bindings/python (RECUR_INSTALLED_BINDING=1: the
installed `recur` package instead, e.g. one pip-installed into a scratch folder on PYTHONPATH) with
RECUR_LIBRARY at librecur.so (default: .build/release/librecur.so).
"""

import argparse
import json
import math
import os
import random
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("RECUR_LIBRARY", str(REPO / ".build" / "release" / "librecur.so"))
if not os.environ.get("RECUR_INSTALLED_BINDING"):
    # This checkout's binding, which matches its librecur.so (not whatever `recur` is installed).
    sys.path.insert(0, str(REPO / "bindings" / "python"))
import recur  # noqa: E402

# ---------------------------------------------------------------------------------------- data

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def lengths_between(rng, low, high):
    return rng.randint(low, high)


def first_token_lines(rng, n, low=50, high=200):
    """LABEL<TAB>TEXT: the label is which half of the vocabulary the first word comes from; the
    distractors come from the same vocabulary, so only the first position tells."""
    words = [f"w{i}" for i in range(20)]
    lines = []
    for _ in range(n):
        first = rng.choice(words)
        label = "A" if words.index(first) < 10 else "B"
        rest = [rng.choice(words) for _ in range(lengths_between(rng, low, high))]
        lines.append(f"{label}\t{' '.join([first] + rest)}")
    return lines


def first_marker_lines(rng, n, low=50, high=200):
    """LABEL<TAB>TEXT: the first word is the label itself (a word the distractors never use)."""
    words = [f"w{i}" for i in range(20)]
    lines = []
    for _ in range(n):
        label = rng.choice(["yes", "no"])
        rest = [rng.choice(words) for _ in range(lengths_between(rng, low, high))]
        lines.append(f"{label}\t{' '.join([label] + rest)}")
    return lines


def first_char_lines(rng, n, low=50, high=200):
    lines = []
    for _ in range(n):
        first = rng.choice("xyz")
        rest = "".join(rng.choice(LETTERS) for _ in range(lengths_between(rng, low, high)))
        lines.append(f"{first}\t{first}{rest}")
    return lines


POSITIVE = ["good", "great", "excellent", "fine", "wonderful", "superb", "pleasant", "lovely"]
NEGATIVE = ["bad", "awful", "terrible", "poor", "dreadful", "boring", "lousy", "horrible"]
SUBJECTS = ["the movie", "this book", "the meal", "our trip", "the show", "that game", "the hotel", "my day"]
FILLER = ["really", "honestly", "overall", "i think", "to be fair", "in the end", "frankly"]


def word_order_lines(rng, n):
    """Both polarities' words in every sentence; only their order (and the negation's scope) decides."""
    templates = [
        "{s} was {a} , not {b}",
        "{s} was not {b} but {a}",
        "{s} : {a} rather than {b}",
        "{f} {s} was {a} and not {b}",
        "not {b} , {s} was {a}",
        "{s} seemed {b} at first but was {a}",
    ]
    lines = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        good, bad = rng.choice(POSITIVE), rng.choice(NEGATIVE)
        a, b = (good, bad) if label == "pos" else (bad, good)
        text = rng.choice(templates).format(s=rng.choice(SUBJECTS), a=a, b=b, f=rng.choice(FILLER))
        if rng.random() < 0.5:
            text = f"{rng.choice(FILLER)} , {text}"
        lines.append(f"{label}\t{text}")
    return lines


def copy_first_features(rng, n, low=50, high=200, symbols=4, width=8):
    """x [N, T, 8]: step 0 holds a one-hot symbol in features 0–3, every step noise in 4–7; y = symbol."""
    np_rng = np.random.default_rng(rng.randrange(1 << 30))
    lengths = np.array([lengths_between(rng, low, high) for _ in range(n)], dtype=np.int64)
    x = np.zeros((n, high, width), np.float32)
    y = np_rng.integers(0, symbols, n).astype(np.int64)
    x[:, :, symbols:] = np_rng.standard_normal((n, high, width - symbols)).astype(np.float32)
    x[np.arange(n), 0, y] = 1
    for i, length in enumerate(lengths):
        x[i, length:] = 0
    return {"x": x, "y": y, "lengths": lengths}


def adding_features(rng, n, low=50, high=100):
    """The adding problem as classification: x [N, T, 2] = (value ~ U(0, 1), marker); one marker in
    the first half, one in the second; y = 1 when the two marked values sum to more than 1."""
    np_rng = np.random.default_rng(rng.randrange(1 << 30))
    lengths = np.array([lengths_between(rng, low, high) for _ in range(n)], dtype=np.int64)
    x = np.zeros((n, high, 2), np.float32)
    y = np.zeros(n, np.int64)
    for i, length in enumerate(lengths):
        x[i, :length, 0] = np_rng.random(length)
        first, second = np_rng.integers(0, length // 2), np_rng.integers(length // 2, length)
        x[i, [first, second], 1] = 1
        y[i] = int(x[i, first, 0] + x[i, second, 0] > 1)
    return {"x": x, "y": y, "lengths": lengths}


def english_text():
    """Real English prose available offline: the Python reference manual's topics that ship with
    every CPython (pydoc_data), about 465 kB."""
    from pydoc_data.topics import topics
    return "\n".join(topics[key] for key in sorted(topics))


# ---------------------------------------------------------------------------------------- tasks


class Task:
    """kind: text | features | lm."""

    def __init__(self, name, kind, make, sizes=(2000, 200, 500), tokenizer="word", features=0):
        self.name, self.kind, self.make, self.sizes, self.tokenizer, self.features = name, kind, make, sizes, tokenizer, features


TASKS = {
    "first_token": Task("first_token", "text", first_token_lines),
    "first_marker": Task("first_marker", "text", first_marker_lines),
    "first_char": Task("first_char", "text", first_char_lines, tokenizer="char"),
    "copy_first": Task("copy_first", "features", copy_first_features, features=8),
    "adding": Task("adding", "features", adding_features, sizes=(4000, 400, 1000), features=2),
    "word_order": Task("word_order", "text", word_order_lines),
    "charlm": Task("charlm", "lm", None, tokenizer="char"),
}

ARCHS = {
    # name: (cell, hidden, layers, pool)
    "lstm128": ("lstm", 128, 1, "last"),
    "lstm64": ("lstm", 64, 1, "last"),
    "gru64": ("gru", 64, 1, "last"),
    "gru128": ("gru", 128, 1, "last"),
    "lstm64x2": ("lstm", 64, 2, "final_state"),
    "gru128x2": ("gru", 128, 2, "last"),
}


def architecture(task, arch):
    cell, hidden, layers, pool = ARCHS[arch]
    if task.kind == "features":
        spec = {"format": 1, "name": task.name, "input": {"kind": "features", "size": task.features}, "layers": []}
    else:
        spec = {"format": 1, "name": task.name, "input": {"kind": "tokens", "vocab_size": "auto"},
                "tokenizer": {"kind": task.tokenizer, "unk_id": 1},
                "layers": [{"name": "embed", "type": "embedding", "num_embeddings": "auto", "embedding_dim": 32}]}
    recurrent = {"name": "rnn", "type": cell, "input_size": task.features or 32, "hidden_size": hidden}
    if layers > 1:
        recurrent["num_layers"] = layers
    spec["layers"].append(recurrent)
    if task.kind != "lm":
        spec["layers"].append({"name": "pool", "type": "pool", "mode": pool})
    spec["layers"].append({"name": "head", "type": "linear", "in_features": hidden, "out_features": "auto"})
    return spec


def prepare(task, directory, seed):
    """Writes train/valid/test files of `task` into `directory`; returns their paths."""
    rng = random.Random(f"{task.name}-{seed}")
    directory.mkdir(parents=True, exist_ok=True)
    if task.kind == "lm":
        text = english_text()
        cut_valid, cut_test = int(len(text) * 0.85), int(len(text) * 0.9)
        parts = {"train": text[:cut_valid], "valid": text[cut_valid:cut_test], "test": text[cut_test:]}
        paths = {}
        for split, content in parts.items():
            paths[split] = directory / f"{split}.txt"
            paths[split].write_text(content, encoding="utf-8")
        return paths
    paths = {}
    for split, n in zip(["train", "valid", "test"], task.sizes):
        if task.kind == "text":
            paths[split] = directory / f"{split}.tsv"
            paths[split].write_text("\n".join(task.make(rng, n)) + "\n", encoding="utf-8")
        else:
            paths[split] = directory / f"{split}.safetensors"
            recur.save_tensors(paths[split], task.make(rng, n))
    return paths


# ---------------------------------------------------------------------------------------- scoring


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def held_out_score(task, model_path, test_path):
    """Accuracy (classify) or bits per character (lm) of the model file on the test split,
    computed through the Python binding as a user would."""
    with recur.Model(str(model_path)) as model:
        if task.kind == "lm":
            text = Path(test_path).read_text(encoding="utf-8")
            ids, _ = model.encode(text)
            ids = ids[0]
            nats, count = 0.0, 0
            with model.session() as stream:
                for start in range(0, len(ids) - 1, 256):
                    chunk = ids[start:min(start + 256, len(ids) - 1)]
                    targets = ids[start + 1:start + 1 + len(chunk)]
                    logits = stream.step(chunk[None, :])["output"][0]
                    nats -= log_softmax(logits)[np.arange(len(chunk)), targets].sum()
                    count += len(chunk)
            return nats / count / math.log(2)
        if task.kind == "text":
            lines = [line.split("\t", 1) for line in Path(test_path).read_text(encoding="utf-8").splitlines() if line]
            labels, texts = [line[0] for line in lines], [line[1] for line in lines]
            correct = 0
            for start in range(0, len(texts), 64):
                ids, lengths = model.encode(texts[start:start + 64])
                predicted = model.run(ids, lengths)["output"].argmax(axis=-1)
                correct += sum(model.labels[p] == l for p, l in zip(predicted, labels[start:start + 64]))
            return correct / len(texts)
        data = recur.load_tensors(test_path)
        predicted = model.run(data["x"], data["lengths"])["output"].argmax(axis=-1)
        return float((predicted == data["y"]).mean())


# ---------------------------------------------------------------------------------------- running


def run_recur(cli, task, arch, paths, directory, flags):
    arch_path = directory / f"{arch}.json"
    arch_path.write_text(json.dumps(architecture(task, arch)))
    out = directory / f"{arch}.safetensors"
    command = [str(cli), "train", "--arch", str(arch_path), "--task", "lm" if task.kind == "lm" else "classify",
               "--data", str(paths["train"]), "--valid", str(paths["valid"]), "--out", str(out)] + shlex.split(flags)
    started, cpu_before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    log = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    (directory / f"{arch}.log").write_text(log.stderr + log.stdout)
    if log.returncode != 0:
        raise SystemExit(f"recur train failed ({' '.join(command)}):\n{log.stderr[-2000:]}")
    return out, seconds, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: " + ", ".join(TASKS))
    parser.add_argument("--arch", default="lstm128", help="comma-separated: " + ", ".join(ARCHS))
    parser.add_argument("--flags", default="", help="extra `recur train` flags, e.g. \"--epochs 20 --lr 0.001\"")
    parser.add_argument("--cli", default=str(REPO / ".build" / "release" / "recur-cli"))
    parser.add_argument("--work", default="/tmp/recur-train-tasks")
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    parser.add_argument("--label", default="", help="subfolder for this run's models and logs (parallel runs)")
    parser.add_argument("--torch", action="store_true", help="also train the same model with PyTorch")
    args = parser.parse_args()
    rows = []
    for name in args.tasks.split(","):
        task = TASKS[name]
        directory = Path(args.work) / f"{name}-{args.seed}"
        if args.label:
            directory = directory / args.label
        paths = prepare(task, directory, args.seed)
        for arch in args.arch.split(","):
            out, seconds, cpu = run_recur(args.cli, task, arch, paths, directory, args.flags)
            score = held_out_score(task, out, paths["test"])
            metric = "bpc" if task.kind == "lm" else "accuracy"
            row = f"{name:12s} {arch:9s} recur  {metric} {score:.3f}  {seconds:6.1f} s wall {cpu:6.1f} s cpu  flags '{args.flags}'"
            if args.torch:
                import train_tasks_torch
                torch_score, torch_seconds = train_tasks_torch.train(task, architecture(task, arch), paths, args.flags)
                row += f"   torch {metric} {torch_score:.3f} {torch_seconds:6.1f} s"
            print(row, flush=True)
            rows.append(row)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
