#!/usr/bin/env python3
"""Inference speed and memory of Recur beside ONNX Runtime and PyTorch, in one run.

For each configuration (../shared/bench/configs.json, then bench/shapes.json):
  1. PyTorch: peers.torch_runner's module and input, timed; the same module is then written as a
     Recur model file with its input and outputs (engines.py torch).
  2. Recur: the model file through the Python binding (librecur.so); its outputs are checked
     against PyTorch's (max relative error, fail beyond --tolerance), then timed.
  3. ONNX Runtime: peers.ort_runner, timed.
Every engine runs in a process of its own, so its peak resident memory is its own. Times are
harness.warm_up (half a second of calls: numpy's OpenBLAS threads spin for about 100 ms after
import), then peers.median_ms: 3 warm-up calls, then the median of --repeat forward passes over the
whole batch.
peers.py (../shared/bench/peers.py) builds and times the peers, with both cores.

    python3 bench/bench.py [--configs FILE ... | --random N [--seed S]] [--only ID ...] [--repeat N] [--markdown]

Needs the release build (swift build -c release) or RECUR_LIBRARY, numpy, and for the peers
onnx + onnxruntime and torch; a peer that is not installed is reported as missing, not timed.
Exit status 1 if any engine failed or Recur's outputs differ from PyTorch's.
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "bindings", "python"))

import harness  # noqa: E402

SHARED = os.environ.get("RECUR_SHARED_DIR") or os.path.join(os.path.dirname(REPO), "shared")
DEFAULT_CONFIGS = [os.path.join(SHARED, "bench", "configs.json"), os.path.join(HERE, "shapes.json")]
PEER_MODULES = {"torch": ["torch"], "onnxruntime": ["onnx", "onnxruntime"]}


def installed(engine) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in PEER_MODULES[engine])


def run_engine(engine, config, directory, args) -> dict:
    """engines.py in a child process; its JSON result, or {"error": message}."""
    command = [sys.executable, os.path.join(HERE, "engines.py"), engine, "--config", json.dumps(config),
               "--dir", directory, "--peers", args.peers, "--repeat", str(args.repeat),
               "--tolerance", str(args.tolerance)]
    child = subprocess.run(command, capture_output=True, text=True)
    if child.returncode != 0:
        lines = (child.stderr.strip() or child.stdout.strip() or f"exit status {child.returncode}").splitlines()
        return {"error": lines[-1]}
    return json.loads(child.stdout.strip().splitlines()[-1])


def write_untrained_model(config, directory) -> None:
    """Without torch: the model file and input from numpy, so Recur is still timed (unverified)."""
    import recur
    weights = harness.model_tensors(harness.random_weights(config))
    recur.save(os.path.join(directory, "model.safetensors"), harness.architecture(config), weights)
    recur.save_tensors(os.path.join(directory, "input.safetensors"), {"input": harness.random_input(config)})


def bench_round(config, engines, args, round_index, directory, results) -> None:
    """Round `round_index` of `config`: every engine once, each in a new process, in an order that
    rotates from round to round (PyTorch first in the first round: it writes the model Recur runs).
    An engine's time is kept as the lowest of its rounds' medians (in `results`, by engine)."""
    order = (["torch"] if "torch" in engines else []) + ["recur"] + [e for e in engines if e != "torch"]
    shift = round_index % len(order)
    for engine in order[shift:] + order[:shift]:
        if engine == "recur" and not os.path.exists(os.path.join(directory, "model.safetensors")):
            write_untrained_model(config, directory)
        if "error" in results.get(engine, {}):
            continue
        result = run_engine(engine, config, directory, args)
        if engine not in results or "error" in result:
            results[engine] = result
        else:
            results[engine]["ms"] = min(results[engine]["ms"], result["ms"])


def config_row(config, results) -> dict:
    """The table row of `config` from its engines' results over all rounds."""
    row = {"id": config["id"], "flops": harness.flops(config), "errors": []}
    for engine, result in results.items():
        if "error" in result:
            row["errors"].append(f"{engine}: {result['error']}")
            continue
        row[f"{engine}_ms"] = result["ms"]
        row[f"{engine}_peak_mib"] = result["peak_mib"]
        row[f"{engine}_baseline_mib"] = result["baseline_mib"]
        row.setdefault("versions", {})[engine] = result["version"]
    recur_result = results.get("recur", {})
    for key in ("first_load_mib", "load_peak_mib", "loaded_mib", "file_mib", "max_rel_err"):
        if key in recur_result:
            row[key] = recur_result[key]
    return row


def bench_configs(configs, engines, args):
    """Yields each configuration's row after its last round. Every round runs all configurations
    in turn, so a configuration's rounds lie minutes apart: the host's slow spells here last
    minutes, and rounds run back to back fell into the same spell, so that their lowest median did
    not escape it."""
    with tempfile.TemporaryDirectory(prefix="recur-bench-") as root:
        directories = [os.path.join(root, str(index)) for index in range(len(configs))]
        results = [{} for _ in configs]
        for directory in directories:
            os.mkdir(directory)
        for round_index in range(args.rounds):
            if args.rounds > 1:
                print(f"round {round_index + 1} of {args.rounds}", flush=True)
            for index, config in enumerate(configs):
                bench_round(config, engines, args, round_index, directories[index], results[index])
                if round_index == args.rounds - 1:
                    yield config_row(config, results[index])


def machine() -> dict:
    cpu = {}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            key, _, value = line.partition(":")
            cpu[key.strip()] = value.strip()
    except FileNotFoundError:
        pass
    with open("/proc/meminfo") as f:
        memory_gib = int(f.readline().split()[1]) / 2**20
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    flags = cpu.get("Flags", "").split()
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu.get("Model name", platform.processor()), "cpus": os.cpu_count(),
            "simd": "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "other",
            "memory_gib": round(memory_gib, 1), "kernel": platform.release(), "python": platform.python_version(),
            "commit": commit.strip(), "load": os.getloadavg()}


def describe_machine(info, versions, load_after) -> str:
    return (f"started {info['date']} · {info['cpu']}, {info['cpus']} CPUs ({info['simd']}), {info['memory_gib']} GiB · "
            f"Linux {info['kernel']} · Python {info['python']} · "
            + ", ".join(f"{engine} {version}" for engine, version in sorted(versions.items()))
            + f" · commit {info['commit']} · load average {info['load'][0]:.2f} before, {load_after[0]:.2f} after")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, metavar="FILE",
                        help="configs.json files (default: ../shared/bench/configs.json and bench/shapes.json; "
                             "RECUR_SHARED_DIR overrides ../shared)")
    parser.add_argument("--random", type=int, metavar="N",
                        help="N configurations of random sizes instead of --configs (harness.random_configs), "
                             "to look for shapes the lists miss")
    parser.add_argument("--seed", type=int, default=0, help="the draw of --random (default 0)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these configuration ids")
    parser.add_argument("--repeat", type=int, default=20, help="timed forward passes per engine (default 20)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="processes per engine and configuration, in rotating order; the lowest median counts (default 3)")
    parser.add_argument("--peers", default=os.path.join(SHARED, "bench", "peers.py"), help="path of peers.py")
    parser.add_argument("--tolerance", type=float,
                        help="largest max relative error of Recur against PyTorch (default 1e-4; 1e-2 with --half-weights, "
                             "5e-2 with --bf16)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--half-weights", action="store_true",
                           help='time Recur with its opt-in half-precision recurrent weights (layer key "recurrent_weights": '
                                '"float16"); the error column then shows what that costs')
    precision.add_argument("--bf16", action="store_true",
                           help='time Recur with its opt-in products in bfloat16 (layer key "precision": "bfloat16"); the '
                                'error column then shows what that costs')
    parser.add_argument("--peers-only", nargs="*", choices=sorted(PEER_MODULES), metavar="PEER",
                        help="time only these peers (default: every installed one; none: Recur alone)")
    parser.add_argument("--markdown", action="store_true", help="print the final table as Markdown")
    args = parser.parse_args()
    if args.tolerance is None:
        args.tolerance = 1e-2 if args.half_weights else 5e-2 if args.bf16 else 1e-4
    if args.repeat < 1 or args.rounds < 1 or (args.random is not None and args.random < 1):
        parser.error("--repeat, --rounds and --random must be at least 1")
    if not os.path.exists(args.peers):
        parser.error(f"peers.py not found at {args.peers} (pass --peers or set RECUR_SHARED_DIR)")

    if args.random:
        configs = harness.random_configs(args.random, args.seed)
    else:
        configs = [config for path in args.configs for config in harness.load_configs(path)]
    if args.half_weights:
        configs = [{**config, "recurrent_weights": "float16"} for config in configs]
    if args.bf16:
        configs = [{**config, "precision": "bfloat16"} for config in configs]
    if args.only:
        unknown = set(args.only) - {config["id"] for config in configs}
        if unknown:
            parser.error(f"unknown configuration ids: {', '.join(sorted(unknown))}")
        configs = [config for config in configs if config["id"] in args.only]

    wanted = PEER_MODULES if args.peers_only is None else args.peers_only
    engines = [engine for engine in wanted if installed(engine)]
    for engine in PEER_MODULES:
        if engine not in engines:
            reason = "not installed" if engine in wanted else "left out (--peers-only)"
            print(f"NOTE: {engine} is {reason}: not timed"
                  + ("; Recur's outputs are not verified against PyTorch" if engine == "torch" else ""), flush=True)
    info = machine()
    print(f"{len(configs)} configurations, lowest of {args.rounds} rounds' medians of {args.repeat}, peers from {args.peers}",
          flush=True)

    rows, versions = [], {}
    for row in bench_configs(configs, engines, args):
        rows.append(row)
        versions.update(row.get("versions", {}))
        print(harness.progress_line(row), flush=True)
        for error in row["errors"]:
            print(f"FAILED {row['id']}: {error}", flush=True)

    print()
    print(describe_machine(info, versions, os.getloadavg()))
    print(harness.format_table(rows, markdown=args.markdown))
    first_loads = [row["first_load_mib"] for row in rows if "first_load_mib" in row]
    if first_loads:
        spread = sorted({f"{value:.1f}" for value in (min(first_loads), max(first_loads))}, key=float)
        print(f"\nRecur's first model load in a process adds {'–'.join(spread)} MiB once "
              "(runtime initialisation; measured on a 1-unit model and left out of \"load peak\").")
    failures = [row["id"] for row in rows if row["errors"]]
    if failures:
        print(f"FAILED: {', '.join(failures)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
