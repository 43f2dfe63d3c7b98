#!/usr/bin/env python3
"""ONNX Runtime peer of `tessera bench` (protocol and kinds: docs/benchmarks.md), system
"onnxruntime", kind `inference` only (resnet18, mobilenet_v2, encoder).

  .venv-bench/bin/python bench/peers/ort_peer.py --system onnxruntime --threads 2

At setup the PyTorch twin, with the reference file's weights, is exported by export_onnx.py (in a
child process, so this process never loads torch) into .bench-cache/onnx/ in the repository root,
keyed by model, shape parameters and a hash of the reference file, unless that file is already
there. The session: CPUExecutionProvider, ORT_ENABLE_ALL, intra_op_num_threads = --threads,
inter_op_num_threads = 1, sequential execution.
"""
import hashlib
import json
import os
import subprocess
import sys
import time

from peer_server import Unsupported, parse_args, serve

try:
    import numpy as np
    MISSING = None
except ImportError as e:  # hello() reports it: the runner lists the system as missing
    MISSING = e

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, "..", "..", ".bench-cache", "onnx")
MODELS = ("resnet18", "mobilenet_v2", "encoder")
SHAPE_KEYS = ("batch", "size", "seq", "d_model", "heads", "ff", "layers")


def hello(args):
    if MISSING:
        raise MISSING
    import onnxruntime as ort
    config = (f"CPUExecutionProvider, intra_op_num_threads={args.threads}, inter_op_num_threads=1, "
              "ORT_SEQUENTIAL, ORT_ENABLE_ALL; models exported from the PyTorch twins by export_onnx.py "
              "(TorchScript exporter, opset 17)")
    return ort.__version__, config


def file_hash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def cached_model(p, reference):
    """(path of the ONNX file, note): exports it first when it is not in the cache."""
    shape = {k: p[k] for k in SHAPE_KEYS if k in p}
    key = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:8]
    weights = file_hash(reference) if reference else "random"
    path = os.path.abspath(os.path.join(CACHE, f"{p['model']}_b{p['batch']}_{key}_{weights}.onnx"))
    if os.path.exists(path):
        return path, f"cached {os.path.basename(path)}"
    os.makedirs(CACHE, exist_ok=True)
    ignore = os.path.join(CACHE, "..", ".gitignore")
    if not os.path.exists(ignore):
        with open(ignore, "w") as f:
            f.write("*\n")
    cmd = [sys.executable, os.path.join(HERE, "export_onnx.py"), "--model", p["model"], "--out", path + ".tmp"]
    for k, v in shape.items():
        cmd += ["--" + k.replace("_", "-"), str(v)]
    if reference:
        cmd += ["--weights", reference]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    os.replace(path + ".tmp", path)
    return path, f"exported {os.path.basename(path)} in {time.perf_counter() - t0:.1f} s"


def reference_data(p, reference):
    """(input, expected output or None) as float32 numpy arrays."""
    if not reference:
        shape = ((p["batch"], p.get("seq", 128), p.get("d_model", 256)) if p["model"] == "encoder"
                 else (p["batch"], 3, p.get("size", 224), p.get("size", 224)))
        return np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32), None
    from safetensors.numpy import load_file
    ref = load_file(reference)
    return ref["__input__"].astype(np.float32), ref["__output__"]


def session(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class Inference:
    def __init__(self, p, reference, threads):
        if p["model"] not in MODELS:
            raise Unsupported(f"onnxruntime runs {', '.join(MODELS)}, not '{p['model']}'")
        path, self.note = cached_model(p, reference)
        t0 = time.perf_counter()
        self.sess = session(path, threads)
        self.note += f"; session created in {time.perf_counter() - t0:.2f} s"
        self.x, self.want = reference_data(p, reference)
        self.y = None

    def call(self):
        self.y = self.sess.run(None, {"input": self.x})[0]

    def first_call(self):
        self.call()
        if self.want is not None:
            diff = float(np.abs(self.y - self.want).max())
            self.check = {"max_abs_diff": diff, "max_rel_diff": diff / max(float(np.abs(self.want).max()), 1e-30)}


KINDS = {"inference": Inference}

if __name__ == "__main__":
    serve(parse_args(), hello, KINDS)
