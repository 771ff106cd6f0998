#!/usr/bin/env python3
"""One engine on one configuration, in a process of its own so that its peak memory is its own.
bench.py starts it; it prints one JSON line with the result.

    engines.py torch|onnxruntime|recur --config JSON --dir DIR --peers peers.py [--repeat N]

torch        times peers.torch_runner, then writes the model it timed as a Recur model file
             (DIR/model.safetensors), its input (DIR/input.safetensors) and its outputs
             (DIR/expected.safetensors).
onnxruntime  times peers.ort_runner.
recur        loads DIR/model.safetensors through the Python binding (measuring the load's peak
             resident increase), runs DIR/input.safetensors, compares with DIR/expected.safetensors
             when it exists (exit 3 beyond --tolerance), then times Model.run.
Timing is harness.warm_up (calls for half a second), then peers.median_ms (3 warm-up calls, then
the median of --repeat calls), the same for all three.
"""
import argparse
import importlib.util
import inspect
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bindings", "python"))

import harness  # noqa: E402


def load_peers(path):
    spec = importlib.util.spec_from_file_location("peers", path)
    if spec is None:
        raise SystemExit(f"cannot load the peers module from {path}")
    peers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peers)
    return peers


def time_torch(peers, config, directory, repeat):
    import torch
    import recur
    baseline = harness.resident_mib()
    torch.manual_seed(0)
    run = peers.torch_runner(config)
    # The module and input peers.torch_runner built and times, so that Recur runs exactly them.
    captured = inspect.getclosurevars(run).nonlocals
    if not {"m", "X"} <= captured.keys():
        raise SystemExit("peers.torch_runner's closure no longer holds the module `m` and input `X`; "
                         "update engines.py to the new peers.py")
    module, x = captured["m"], captured["X"]
    harness.warm_up(run)
    ms = peers.median_ms(run, repeat)
    peak = harness.peak_mib()

    state = module.state_dict()
    expected_shapes = harness.weight_shapes(config)
    found_shapes = {name: tuple(value.shape) for name, value in state.items()}
    if found_shapes != expected_shapes:
        raise SystemExit(f"torch state_dict {found_shapes} differs from harness.weight_shapes {expected_shapes}")
    with torch.inference_mode():
        output, final = module(x)
    h_n, c_n = final if config["cell"] == "lstm" else (final, None)
    expected = {"output": output, f"{harness.LAYER}.h_n": h_n}
    if c_n is not None:
        expected[f"{harness.LAYER}.c_n"] = c_n
    recur.save(os.path.join(directory, "model.safetensors"), harness.architecture(config), harness.model_tensors(state))
    recur.save_tensors(os.path.join(directory, "input.safetensors"), {"input": x})
    recur.save_tensors(os.path.join(directory, "expected.safetensors"), expected)
    return {"ms": ms, "peak_mib": peak, "baseline_mib": baseline, "version": torch.__version__,
            "threads": torch.get_num_threads()}


def time_onnxruntime(peers, config, directory, repeat):
    import onnx  # noqa: F401  (imported before the baseline, as peers.ort_runner needs it)
    import onnxruntime
    baseline = harness.resident_mib()
    run = peers.ort_runner(config)
    harness.warm_up(run)
    ms = peers.median_ms(run, repeat)
    return {"ms": ms, "peak_mib": harness.peak_mib(), "baseline_mib": baseline, "version": onnxruntime.__version__,
            "threads": os.cpu_count()}


def measure_load(recur, path):
    """(peak resident increase while loading, resident increase after, the model)."""
    harness.reset_peak()
    before = harness.resident_mib()
    model = recur.Model(path)
    return harness.peak_since_reset_mib() - before, harness.resident_mib() - before, model


def time_recur(peers, config, directory, repeat, tolerance):
    import recur
    # Loads librecur.so before the baseline; names the kernel variant, which decides the speed.
    version = f"{recur.__version__} ({recur.kernels()} kernels)"
    baseline = harness.resident_mib()
    x = recur.load_tensors(os.path.join(directory, "input.safetensors"))["input"]
    path = os.path.join(directory, "model.safetensors")

    # A first, tiny model takes the process's one-time costs of loading, measured apart, so that
    # the load below is charged only for the model.
    tiny = {"id": "tiny", "cell": config["cell"], "I": 1, "H": 1, "T": 1, "B": 1}
    tiny_path = os.path.join(directory, "tiny.safetensors")
    recur.save(tiny_path, harness.architecture(tiny), harness.model_tensors(harness.random_weights(tiny)))
    first_load = measure_load(recur, tiny_path)[0]

    load_peak, loaded, model = measure_load(recur, path)

    first = model.run(x)
    def run():
        return model.run(x)

    harness.warm_up(run)
    ms = peers.median_ms(run, repeat)
    peak = harness.peak_mib()

    errors = {}
    expected_path = os.path.join(directory, "expected.safetensors")
    if os.path.exists(expected_path):
        for name, reference in recur.load_tensors(expected_path).items():
            if name not in first:
                raise SystemExit(f"Recur's result has no {name!r} (it has {sorted(first)})")
            errors[name] = harness.relative_error(first[name], reference)
        worst = max(errors.values())
        if not worst <= tolerance:
            raise SystemExit(f"{config['id']}: Recur differs from PyTorch: max relative error {worst:.3e} "
                             f"> {tolerance:g} ({errors})")
    return {"ms": ms, "peak_mib": peak, "baseline_mib": baseline, "version": version, "first_load_mib": first_load,
            "load_peak_mib": load_peak, "loaded_mib": loaded, "file_mib": harness.file_mib(path),
            "max_rel_err": max(errors.values()) if errors else None, "errors": errors}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("engine", choices=["torch", "onnxruntime", "recur"])
    parser.add_argument("--config", required=True, help="one configuration as JSON")
    parser.add_argument("--dir", required=True, help="this configuration's working folder")
    parser.add_argument("--peers", required=True, help="path of peers.py")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    peers = load_peers(args.peers)
    config = json.loads(args.config)
    if args.engine == "torch":
        result = time_torch(peers, config, args.dir, args.repeat)
    elif args.engine == "onnxruntime":
        result = time_onnxruntime(peers, config, args.dir, args.repeat)
    else:
        result = time_recur(peers, config, args.dir, args.repeat, args.tolerance)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
