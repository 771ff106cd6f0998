#!/usr/bin/env python3
"""PyTorch reference gradients for the trainer (Tests/RecurTests/TrainingTorchTests.swift).

Each case is one safetensors file in training/: the model's weights under their model-format names,
the architecture in __metadata__["recur"], the batch ("input", "lengths", "targets" with -1 where a
step has no target, optional "<layer>.h0"/"<layer>.c0"), and PyTorch's results: "expected.loss" (mean
cross-entropy over targets of the logits before a final softmax/log_softmax) and "grad.<weight>".

Usage: python3 make_training_fixtures.py [OUT_DIR]   (default: training/ beside this script)
Needs: torch, safetensors, numpy; reuses make_golden.py's reference forward.
"""
import json, os, sys
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "..", "shared", "golden"))
sys.path.insert(0, os.environ.get("RECUR_GOLDEN_DIR", "/work/shared/golden"))
from make_golden import build, forward, RECURRENT  # noqa: E402


def case(out, name, arch, B, T, task, seed, with_lengths=True, with_states=False):
    torch.manual_seed(seed)
    mods = build(arch)
    for m in mods.values():
        for p in m.parameters():
            torch.nn.init.uniform_(p, -0.5, 0.5)
    inp = arch["input"]
    x = torch.randint(0, inp["vocab_size"], (B, T)) if inp["kind"] == "tokens" else torch.randn(B, T, inp["size"])
    lengths = torch.randint(1, T + 1, (B,)) if with_lengths else torch.full((B,), T)
    lengths[0] = T
    states = {}
    if with_states:
        for L in arch["layers"]:
            if L["type"] in RECURRENT:
                D = 2 if L.get("bidirectional", False) else 1
                shape = (L.get("num_layers", 1) * D, B, L["hidden_size"])
                states[f"{L['name']}.h0"] = torch.randn(*shape) * 0.5
                if L["type"] == "lstm":
                    states[f"{L['name']}.c0"] = torch.randn(*shape) * 0.5
    last = arch["layers"][-1]["type"]
    body = dict(arch, layers=arch["layers"][:-1]) if last in ("softmax", "log_softmax") else arch
    logits = forward(body, mods, x, lengths if with_lengths else None, states)["output"]
    C = logits.shape[-1]
    if task == "classify":
        targets = torch.randint(0, C, (B,))
        loss = torch.nn.functional.cross_entropy(logits, targets)
    else:
        targets = torch.randint(0, C, (B, T))
        targets[torch.arange(T)[None, :] >= lengths[:, None]] = -1
        loss = torch.nn.functional.cross_entropy(logits.reshape(B * T, C), targets.reshape(-1), ignore_index=-1)
    loss.backward()
    tensors = {}
    for lname, m in mods.items():
        for p, v in m.named_parameters():
            tensors[f"{lname}.{p}"] = v.detach().contiguous().float()
            tensors[f"grad.{lname}.{p}"] = v.grad.detach().contiguous().float()
    tensors["input"] = x.contiguous()
    tensors["lengths"] = lengths.to(torch.int64).contiguous()
    tensors["targets"] = targets.to(torch.int64).contiguous()
    tensors["expected.loss"] = loss.detach().reshape(1).float()
    tensors.update({k: v.contiguous() for k, v in states.items()})
    save_file(tensors, os.path.join(out, f"{name}.safetensors"), metadata={"recur": json.dumps(arch), "task": task})
    return name


def rec(name, t, i, h, **kw):
    return dict(name=name, type=t, input_size=i, hidden_size=h, **kw)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "training")
    os.makedirs(out, exist_ok=True)
    V = {"kind": "tokens", "vocab_size": 11}
    F = {"kind": "features", "size": 4}
    made = [
        case(out, "bilstm_classifier", {"format": 1, "input": V, "layers": [
            {"name": "embed", "type": "embedding", "num_embeddings": 11, "embedding_dim": 5},
            rec("encoder", "lstm", 5, 6, num_layers=2, bidirectional=True),
            {"name": "pool", "type": "pool", "mode": "final_state"},
            {"name": "head", "type": "linear", "in_features": 12, "out_features": 3},
            {"name": "prob", "type": "softmax"}]}, B=4, T=7, task="classify", seed=1),
        case(out, "bigru_tagger", {"format": 1, "input": V, "layers": [
            {"name": "embed", "type": "embedding", "num_embeddings": 11, "embedding_dim": 4},
            rec("tagger", "gru", 4, 5, bidirectional=True),
            {"name": "head", "type": "linear", "in_features": 10, "out_features": 4},
            {"name": "logp", "type": "log_softmax"}]}, B=3, T=6, task="tag", seed=2),
        case(out, "gru_lm_states", {"format": 1, "input": V, "layers": [
            {"name": "embed", "type": "embedding", "num_embeddings": 11, "embedding_dim": 6},
            rec("lm", "gru", 6, 7, num_layers=2),
            {"name": "logits", "type": "linear", "in_features": 7, "out_features": 11}]},
            B=2, T=8, task="tag", seed=3, with_lengths=False, with_states=True),
        case(out, "rnn_mean_pool", {"format": 1, "input": F, "layers": [
            rec("cell", "rnn", 4, 6, nonlinearity="tanh"),
            {"name": "pool", "type": "pool", "mode": "mean"},
            {"name": "act", "type": "tanh"},
            {"name": "head", "type": "linear", "in_features": 6, "out_features": 3}]}, B=4, T=5, task="classify", seed=4),
        case(out, "lstm_states_max_pool", {"format": 1, "input": F, "layers": [
            rec("a", "lstm", 4, 5),
            {"name": "pool", "type": "pool", "mode": "max"},
            {"name": "head", "type": "linear", "in_features": 5, "out_features": 3}]}, B=3, T=6, task="classify", seed=5, with_states=True),
    ]
    print(f"wrote {len(made)} cases to {out} with torch {torch.__version__}")
