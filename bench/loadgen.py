#!/usr/bin/env python3
"""Load generator for recurd: N concurrent REQ clients send a fixed number of `infer` requests
(binary frames) and it reports requests/s, p50/p99 latency and the mean batch size (from `stats`).

By default it starts recurd itself twice on a free port, without batching (--max-batch 1) and
with it, over a generated LSTM model (features 64 → LSTM 256 → last pool → linear 10) or over
--model-file; with --endpoint it measures a running daemon once instead.

    python3 bench/loadgen.py --recurd .build/release/recurd --clients 1 4 16 --requests 200
"""
import argparse
import json
import multiprocessing
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bindings", "python"))
import recur  # noqa: E402  (the package's source tree; recur.save needs no librecur.so)


def write_model(path, features=64, hidden=256, classes=10, seed=0):
    """A Recur model file (model-format.md) with random weights."""
    rng = np.random.default_rng(seed)
    scale = 1 / np.sqrt(hidden)
    shapes = {"rnn.weight_ih_l0": (4 * hidden, features), "rnn.weight_hh_l0": (4 * hidden, hidden),
              "rnn.bias_ih_l0": (4 * hidden,), "rnn.bias_hh_l0": (4 * hidden,),
              "head.weight": (classes, hidden), "head.bias": (classes,)}
    architecture = {"format": 1, "name": "loadgen_lstm", "input": {"kind": "features", "size": features},
                    "layers": [{"name": "rnn", "type": "lstm", "input_size": features, "hidden_size": hidden},
                               {"name": "pool", "type": "pool", "mode": "last"},
                               {"name": "head", "type": "linear", "in_features": hidden, "out_features": classes}]}
    recur.save(path, architecture,
               {name: rng.uniform(-scale, scale, shape).astype(np.float32) for name, shape in shapes.items()})
    return features


def request(socket_, model, x):
    header = {"op": "infer", "model": model, "binary": True, "outputs": ["output"],
              "inputs": {"input": {"dtype": "float32", "shape": list(x.shape), "frame": 1}}}
    socket_.send_multipart([json.dumps(header).encode(), x.tobytes()])
    reply = json.loads(socket_.recv_multipart()[0])
    if not reply["ok"]:
        raise RuntimeError(reply["error"])


def stats(endpoint):
    s = zmq.Context.instance().socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 10000)
    s.connect(endpoint)
    s.send_json({"op": "stats"})
    reply = s.recv_json()
    s.close()
    return reply["batches"]


def client(endpoint, model, features, steps, requests, timeout, seed, start_gate, results):
    """One client process: `requests` requests back to back; puts its latencies (s) or its error."""
    context = zmq.Context()
    s = context.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    s.connect(endpoint)
    x = np.random.default_rng(seed).standard_normal((1, steps, features)).astype(np.float32)
    latencies = []
    try:
        request(s, model, x)  # warm the connection before the clock starts
        start_gate.wait()
        for _ in range(requests):
            t0 = time.perf_counter()
            request(s, model, x)
            latencies.append(time.perf_counter() - t0)
        results.put(latencies)
    except Exception as error:
        results.put(repr(error))
    finally:
        s.close()
        context.term()


def measure(endpoint, model, features, steps, clients, requests, timeout):
    """Every client sends `requests` requests back to back; returns the numbers of the run. Clients
    are processes, so the load is not capped by one Python interpreter's lock."""
    before = stats(endpoint)
    start_gate = multiprocessing.Barrier(clients + 1)
    results = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=client, args=(endpoint, model, features, steps, requests, timeout,
                                                              seed, start_gate, results))
                 for seed in range(clients)]
    for p in processes:
        p.start()
    try:
        start_gate.wait(timeout)
    except threading.BrokenBarrierError:  # a client failed before the start; its error follows
        pass
    t0 = time.perf_counter()
    outcomes = [results.get(timeout=timeout * requests) for _ in processes]
    elapsed = time.perf_counter() - t0
    for p in processes:
        p.join()
    after = stats(endpoint)
    errors = [o for o in outcomes if isinstance(o, str)]
    if errors:
        raise RuntimeError(errors[0])
    latencies = [t for o in outcomes for t in o]
    batches = after["count"] - before["count"]
    batched = after["requests"] - before["requests"]
    lat = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "rps": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "mean_batch": batched / batches if batches else 0.0}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(recurd, models_dir, options):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    process = subprocess.Popen([recurd, "--bind", endpoint, "--models", models_dir, "--log-level", "warning", *options])
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            stats(endpoint)
            return process, endpoint
        except zmq.Again:
            continue
    process.kill()
    raise TimeoutError("recurd did not start")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recurd", default=".build/release/recurd", help="recurd binary to start")
    parser.add_argument("--endpoint", help="measure this running daemon instead of starting one")
    parser.add_argument("--model", default="loadgen_lstm", help="model name (with --endpoint or --model-file)")
    parser.add_argument("--model-file", help="serve this model file instead of the generated LSTM")
    parser.add_argument("--features", type=int, default=64, help="input size of --model-file's model")
    parser.add_argument("--steps", type=int, default=32, help="T of each request's input [1, T, F]")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=100, help="requests per client (bounded run)")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-delay-ms", type=float, default=2.0)
    parser.add_argument("--batch-wait", choices=["when-busy", "always"], default="when-busy")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a request may take")
    args = parser.parse_args()

    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"# input [1, {args.steps}, F], {args.requests} requests per client")
    print(f"{'mode':<10} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'mean batch':>10}")

    def report(mode, row):
        print(f"{mode:<10} {row['clients']:>7} {row['rps']:>9.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['mean_batch']:>10.2f}", flush=True)

    if args.endpoint:
        for clients in args.clients:
            report("running", measure(args.endpoint, args.model, args.features, args.steps, clients, args.requests, args.timeout))
        return
    with tempfile.TemporaryDirectory() as models_dir:
        if args.model_file:
            shutil.copy(args.model_file, os.path.join(models_dir, args.model + ".safetensors"))
            features = args.features
        else:
            features = write_model(os.path.join(models_dir, args.model + ".safetensors"))
        for mode, batch in [("unbatched", 1), ("batched", args.max_batch)]:
            process, endpoint = start(args.recurd, models_dir, ["--max-batch", str(batch), "--max-delay-ms",
                                                                str(args.max_delay_ms), "--batch-wait", args.batch_wait,
                                                                "--workers", str(args.workers)])
            try:
                for clients in args.clients:
                    report(mode, measure(endpoint, args.model, features, args.steps, clients, args.requests, args.timeout))
            finally:
                process.terminate()
                process.wait(60)


if __name__ == "__main__":
    main()
