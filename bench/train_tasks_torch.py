"""PyTorch reference for bench/train_tasks.py: the same architecture trained on the same files with
the same settings as `recur train` (Adam, lr, clip by global norm, batch size, epochs, best epoch by
validation loss), written the way a PyTorch user would (packed sequences, the last valid step).
Not mimicked: recur's automatic epochs (here --epochs, default 10) and its cosine schedule (here
the constant rate of torch.optim.Adam). Returns the held-out score and the wall time."""

import math
import shlex
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

from train_tasks import recur


def settings(flags):
    words = shlex.split(flags)
    values = {"epochs": 10, "lr": 0.002, "batch-size": 32, "clip": 5.0, "bptt": 64, "seed": 0, "init": "auto"}
    for key, value in zip(words[::2], words[1::2]):
        values[key.lstrip("-")] = float(value) if key in ("--lr", "--clip") else value if key == "--init" else int(value)
    return values


def chrono(rnn, horizon):
    """`recur train --init chrono`: keep-gate bias log(U(1, horizon − 1)) (lstm forget, gru z), lstm input −that."""
    H = rnn.hidden_size
    with torch.no_grad():
        for name, bias in rnn.named_parameters():
            if name.startswith("bias_hh"):
                bias[:2 * H] = 0
            elif name.startswith("bias_ih"):
                scale = torch.log(1 + torch.rand(H) * (horizon - 2))
                bias[H:2 * H] = scale
                if isinstance(rnn, nn.LSTM):
                    bias[:H] = -scale


def tokens(text, kind):
    return list(text) if kind == "char" else text.lower().split()


class Net(nn.Module):
    def __init__(self, spec, vocabulary, classes):
        super().__init__()
        layers = {layer["type"]: layer for layer in spec["layers"]}
        recurrent = layers.get("lstm") or layers.get("gru")
        self.embed = nn.Embedding(vocabulary, 32) if "embedding" in layers else None
        cell = nn.LSTM if recurrent["type"] == "lstm" else nn.GRU
        self.rnn = cell(recurrent["input_size"], recurrent["hidden_size"], num_layers=recurrent.get("num_layers", 1),
                        batch_first=True)
        self.pool = layers.get("pool", {}).get("mode")
        self.head = nn.Linear(recurrent["hidden_size"], classes)

    def forward(self, x, lengths, state=None):
        if self.embed is not None:
            x = self.embed(x)
        if self.pool is None:
            y, state = self.rnn(x, state)
            return self.head(y), state
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state
        return self.head(h[-1]), None  # the last valid step of the top layer = its final h


def classify_data(task, paths, vocabulary=None, labels=None):
    if task.kind == "features":
        out = {}
        for split in ("train", "valid", "test"):
            d = recur.load_tensors(paths[split])
            out[split] = (torch.tensor(d["x"]), torch.tensor(d["lengths"]), torch.tensor(d["y"]))
        return out, None, int(out["train"][2].max()) + 1
    splits = {}
    for split in ("train", "valid", "test"):
        lines = [line.split("\t", 1) for line in Path(paths[split]).read_text().splitlines() if line]
        splits[split] = [(label, tokens(text, task.tokenizer)) for label, text in lines]
    counts = Counter(t for _, toks in splits["train"] for t in toks)
    vocabulary = {t: i + 2 for i, (t, _) in enumerate(counts.most_common())}
    labels = sorted({label for label, _ in splits["train"]})
    out = {}
    for split, rows in splits.items():
        lengths = torch.tensor([len(toks) for _, toks in rows])
        ids = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
        for i, (_, toks) in enumerate(rows):
            ids[i, :len(toks)] = torch.tensor([vocabulary.get(t, 1) for t in toks])
        out[split] = (ids, lengths, torch.tensor([labels.index(label) for label, _ in rows]))
    return out, len(vocabulary) + 2, len(labels)


def train(task, spec, paths, flags):
    s = settings(flags)
    torch.manual_seed(s["seed"])
    torch.set_num_threads(2)
    started = time.monotonic()
    if task.kind == "lm":
        return train_lm(task, spec, paths, s, started)
    data, vocabulary, classes = classify_data(task, paths)
    net = Net(spec, vocabulary or 1, classes)
    if s["init"] in ("auto", "chrono"):  # recur train's auto: chrono for classify
        chrono(net.rnn, int(data["train"][1].max()))
    optimizer = torch.optim.Adam(net.parameters(), lr=s["lr"])
    best, best_state = math.inf, None
    x, lengths, y = data["train"]
    for _ in range(s["epochs"]):
        net.train()
        order = torch.randperm(len(y))
        for start in range(0, len(y), s["batch-size"]):
            rows = order[start:start + s["batch-size"]]
            width = int(lengths[rows].max())
            logits, _ = net(x[rows, :width], lengths[rows])
            loss = nn.functional.cross_entropy(logits, y[rows])
            optimizer.zero_grad()
            loss.backward()
            if s["clip"] > 0:
                nn.utils.clip_grad_norm_(net.parameters(), s["clip"])
            optimizer.step()
        valid_loss, _ = evaluate(net, data["valid"])
        if valid_loss < best:
            best, best_state = valid_loss, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    return evaluate(net, data["test"])[1], time.monotonic() - started


@torch.no_grad()
def evaluate(net, split):
    net.eval()
    x, lengths, y = split
    logits, _ = net(x, lengths)
    return nn.functional.cross_entropy(logits, y).item(), (logits.argmax(-1) == y).float().mean().item()


def train_lm(task, spec, paths, s, started):
    texts = {split: Path(paths[split]).read_text() for split in ("train", "valid", "test")}
    counts = Counter(texts["train"])
    vocabulary = {t: i + 2 for i, (t, _) in enumerate(counts.most_common())}
    ids = {split: torch.tensor([vocabulary.get(c, 1) for c in text]) for split, text in texts.items()}
    net = Net(spec, len(vocabulary) + 2, len(vocabulary) + 2)
    if s["init"] == "chrono":
        chrono(net.rnn, s["bptt"])
    optimizer = torch.optim.Adam(net.parameters(), lr=s["lr"])

    def streams(stream, rows):
        length = (len(stream) - 1) // rows
        return stream[:rows * length].view(rows, length), stream[1:rows * length + 1].view(rows, length)

    def bits(stream):
        net.eval()
        with torch.no_grad():
            inputs, targets = streams(stream, 1)
            logits, _ = net(inputs, None)
            return nn.functional.cross_entropy(logits[0], targets[0]).item() / math.log(2)

    best, best_state = math.inf, None
    inputs, targets = streams(ids["train"], s["batch-size"])
    for _ in range(s["epochs"]):
        net.train()
        state = None
        for start in range(0, inputs.shape[1], s["bptt"]):
            logits, state = net(inputs[:, start:start + s["bptt"]], None, state)
            state = tuple(h.detach() for h in state) if isinstance(state, tuple) else state.detach()
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets[:, start:start + s["bptt"]].flatten())
            optimizer.zero_grad()
            loss.backward()
            if s["clip"] > 0:
                nn.utils.clip_grad_norm_(net.parameters(), s["clip"])
            optimizer.step()
        valid = bits(ids["valid"])
        if valid < best:
            best, best_state = valid, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    return bits(ids["test"]), time.monotonic() - started
