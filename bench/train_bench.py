#!/usr/bin/env python3
"""Training speed: one optimiser step of `recur train` beside a PyTorch CPU training step.

For each shape (features [B, T, F] -> lstm|gru H -> linear C per step, cross-entropy, Adam, clip 5):
  torch: the fastest of `--steps` timed steps (forward + backward + clip + Adam), after warm-up;
  recur: the fastest step `recur train --task tag` reports on a features file of `--steps` batches
         (forward, backward, clip and Adam, as for torch), best of 3 runs.
The minimum is reported because the machine is shared: it is the least disturbed measurement.
Usage: python3 bench/train_bench.py [--threads 2] [--steps 40]   (needs the release build: swift build -c release)
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile, time
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
import recur  # noqa: E402  (the package's source tree; save_tensors needs no librecur.so)

SHAPES = [("lstm", 32, 64, 32, 128, 16), ("gru", 32, 64, 32, 256, 16), ("lstm", 16, 100, 64, 256, 64)]


def torch_step_ms(cell, B, T, F, H, C, threads, steps):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](F, H, batch_first=True)
    head = torch.nn.Linear(H, C)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=0.002)
    x, y = torch.randn(B, T, F), torch.randint(0, C, (B, T))
    times = []
    for i in range(steps + 5):
        t0 = time.perf_counter()
        opt.zero_grad()
        out, _ = rnn(x)
        loss = torch.nn.functional.cross_entropy(head(out).reshape(B * T, C), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        if i >= 5:
            times.append(time.perf_counter() - t0)
    return min(times) * 1000


def recur_step_ms(cell, B, T, F, H, C, steps):
    with tempfile.TemporaryDirectory() as d:
        rng = np.random.default_rng(0)
        N = B * steps
        recur.save_tensors(f"{d}/data.safetensors", {"x": rng.standard_normal((N, T, F), dtype=np.float32),
                                                      "y": rng.integers(0, C, (N, T)).astype(np.int64)})
        arch = {"format": 1, "input": {"kind": "features", "size": F}, "layers": [
            {"name": "rnn", "type": cell, "input_size": F, "hidden_size": H},
            {"name": "head", "type": "linear", "in_features": H, "out_features": C}]}
        with open(f"{d}/arch.json", "w") as f:
            json.dump(arch, f)
        run = subprocess.run([f"{ROOT}/.build/release/recur-cli", "train", "--arch", f"{d}/arch.json", "--task", "tag",
                              "--data", f"{d}/data.safetensors", "--out", f"{d}/model.safetensors", "--epochs", "1",
                              "--batch-size", str(B)], capture_output=True, text=True, check=True)
        return float(re.search(r"fastest ([\d.]+) ms", run.stderr).group(1))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40)
    a = ap.parse_args()
    print(f"{'shape':<34} {'torch ms/step':>14} {'recur ms/step':>14}")
    for cell, B, T, F, H, C in SHAPES:
        t = torch_step_ms(cell, B, T, F, H, C, a.threads, a.steps)
        r = min(recur_step_ms(cell, B, T, F, H, C, a.steps) for _ in range(3))
        print(f"{cell} B={B} T={T} F={F} H={H} C={C}".ljust(34) + f" {t:14.2f} {r:14.2f}", flush=True)
