#!/usr/bin/env python3
"""The JAX peer of `tessera bench` (system "jax"; protocol and kinds in docs/benchmarks.md).

  .venv-bench/bin/python bench/peers/jax_peer.py --system jax --threads 2

Every workload is a jax.jit'ed function (eager_add excepted) on the CPU backend in float32; the
first call includes tracing and compilation. Threads: jaxlib 0.10 has no flag for the size of the
XLA CPU client's intra-op thread pool (it is the number of schedulable CPUs), so the peer restricts
its CPU affinity to `--threads` CPUs before importing jax, and turns Eigen's multi-threading off
for one thread. Models and optimizers are in jax_models.py.
"""
import os

import numpy as np

from fashion_mnist import fashion_arrays
from peer_server import Unsupported, parse_args, serve

ARGS = parse_args()


def _restrict_threads(threads):
    """Pin the process to `threads` CPUs and set XLA_FLAGS; returns the CPUs in use."""
    cpus = sorted(os.sched_getaffinity(0))
    if threads < len(cpus):
        cpus = cpus[:threads]
        os.sched_setaffinity(0, cpus)
    flag = f"--xla_cpu_multi_thread_eigen={'true' if len(cpus) > 1 else 'false'}"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
    os.environ["JAX_PLATFORMS"] = "cpu"
    return cpus


CPUS = _restrict_threads(ARGS.threads)
try:
    import jax
    import jax.numpy as jnp

    import jax_models as jm
    IMPORT_ERROR = None
except ImportError as e:
    IMPORT_ERROR = e


def hello(args):
    if IMPORT_ERROR is not None:
        raise IMPORT_ERROR
    jax.config.update("jax_enable_x64", False)
    config = (f"JAX_PLATFORMS=cpu, CPU affinity {{{','.join(map(str, CPUS))}}} (XLA CPU thread pool of "
              f"{len(CPUS)}), XLA_FLAGS='{os.environ['XLA_FLAGS']}', jax.jit, float32, async dispatch, "
              f"train step = one jit with donated params/optimizer state")
    return jax.__version__, config


class Workload:
    """One jitted function `fn` applied to fixed device inputs; the result is synchronized."""

    def __init__(self, fn, *inputs):
        self.fn, self.inputs = jax.jit(fn), inputs

    def call(self):
        self.fn(*self.inputs).block_until_ready()


def _uniform(seed, *shape):
    return jax.random.uniform(jax.random.key(seed), shape, jnp.float32, -1.0, 1.0)


def setup_matmul(params, reference, threads):
    n = params["n"]
    return Workload(lambda a, b: a @ b, _uniform(1, n, n), _uniform(2, n, n))


def setup_add(params, reference, threads):
    return Workload(lambda a, b: a + b, _uniform(1, params["numel"]), _uniform(2, params["numel"]))


def setup_exp(params, reference, threads):
    return Workload(jnp.exp, _uniform(1, params["numel"]))


def setup_softmax(params, reference, threads):
    return Workload(lambda x: jax.nn.softmax(x, axis=-1), _uniform(1, params["rows"], params["cols"]))


def setup_conv2d(params, reference, threads):
    p = params
    x = _uniform(1, p["batch"], p["in_channels"], p["height"], p["width"])
    w = _uniform(2, p["out_channels"], p["in_channels"], p["kernel"], p["kernel"])
    return Workload(lambda x, w: jm.conv2d(x, w, padding=p["padding"]), x, w)


def setup_layer_norm(params, reference, threads):
    cols = params["cols"]
    return Workload(jm.layer_norm, _uniform(1, params["rows"], cols), _uniform(2, cols), _uniform(3, cols))


class EagerAdd:
    """`inner` un-jitted jnp additions of 1-element arrays; the runner divides by per_call."""

    def __init__(self, inner):
        self.per_call = inner
        self.a, self.b = _uniform(1, 1), _uniform(2, 1)

    def call(self):
        c = None
        for _ in range(self.per_call):
            c = self.a + self.b
        c.block_until_ready()


def setup_eager_add(params, reference, threads):
    return EagerAdd(params["inner"])


# ---- training ----------------------------------------------------------------------------------------

def fashion(split, model):
    """Images (pixels / 255; [N, 784] for the MLP, [N, 1, 28, 28] for the CNN) and int32 labels."""
    x, y = fashion_arrays(split)
    y = y.astype(np.int32)
    return x.reshape(len(x), -1) if model == "mlp" else x.reshape(-1, 1, 28, 28), y


def _model(params):
    """(initial parameters, forward(params, x)) for params["model"] with a fixed seed."""
    name, key = params["model"], jax.random.key(params.get("seed", 0))
    if name == "mlp":
        return jm.init_mlp(key), jm.mlp
    if name == "cnn":
        return jm.init_cnn(key), jm.cnn
    if name == "gpt":
        p = params
        init = jm.init_gpt(key, 256, p["context"], p["d_model"], p["layers"], p["ff"])
        return init, lambda w, tok: jm.gpt(w, tok, p["heads"])
    raise Unsupported(f"jax peer has no model '{name}'")


def _step_fn(params, forward):
    decay = params.get("weight_decay", 0.01) if params["optimizer"] == "adamw" else 0.0
    if params["optimizer"] not in ("adam", "adamw"):
        raise Unsupported(f"jax peer has no optimizer '{params['optimizer']}'")
    return jm.train_step_fn(forward, params["lr"], decay, params.get("clip", 0.0))


def _train_batches(params):
    """The contract's 8 training batches as device arrays (x, y)."""
    bs, n = params["batch"], 8
    if params["model"] == "gpt":
        tok = np.random.default_rng(0).integers(0, 256, (n, bs, params["context"] + 1), dtype=np.int32)
        return [(jnp.asarray(t[:, :-1]), jnp.asarray(t[:, 1:])) for t in tok]
    x, y = fashion("train", params["model"])
    return [(jnp.asarray(x[i * bs:(i + 1) * bs]), jnp.asarray(y[i * bs:(i + 1) * bs])) for i in range(n)]


class TrainStep:
    """One jitted step (donating params and optimizer state) per call, cycling through the batches."""

    def __init__(self, params):
        self.params, forward = _model(params)
        self.opt = jm.adam_init(self.params)
        self.step = jax.jit(_step_fn(params, forward), donate_argnums=(0, 1))
        self.batches, self.calls, self.loss = _train_batches(params), 0, None

    def call(self):
        x, y = self.batches[self.calls % len(self.batches)]
        self.params, self.opt, self.loss = self.step(self.params, self.opt, x, y)
        jax.block_until_ready((self.loss, self.params))
        self.calls += 1

    @property
    def note(self):
        return f"loss {float(self.loss):.4f} after {self.calls} steps"


def setup_train_step(params, reference, threads):
    return TrainStep(params)


class Epoch:
    """One shuffled Fashion-MNIST epoch from the initial state; metric() = test accuracy afterwards.

    The data sit on the device; each step gathers its batch inside the jitted step from the host's
    index slice. The first call only compiles (full and last partial batch, evaluation)."""

    def __init__(self, params):
        if params["model"] not in ("mlp", "cnn"):
            raise Unsupported(f"jax peer has no epoch for model '{params['model']}'")
        init, self.forward = _model(params)
        self.init = (init, jm.adam_init(init))
        step = _step_fn(params, self.forward)
        self.step = jax.jit(lambda p, o, x, y, idx: step(p, o, x[idx], y[idx]), donate_argnums=(0, 1))
        x, y = fashion("train", params["model"])
        self.x, self.y = jnp.asarray(x), jnp.asarray(y)
        self.test = fashion("test", params["model"])
        self.batch, self.seed, self.params = params["batch"], params.get("seed", 0), init
        self.compiled = {}
        self.eval = jax.jit(lambda p, x, y: jnp.sum(jnp.argmax(self.forward(p, x), -1) == y))

    def first_call(self):
        for size in {self.batch, len(self.x) % self.batch or self.batch}:
            idx = np.zeros(size, np.int32)
            self.compiled[size] = self.step.lower(*self.init, self.x, self.y, idx).compile()

    def call(self):
        params, opt = jax.tree.map(jnp.copy, self.init)
        perm = np.random.default_rng(self.seed).permutation(len(self.x)).astype(np.int32)
        for i in range(0, len(perm), self.batch):
            idx = perm[i:i + self.batch]
            params, opt, loss = self.compiled[len(idx)](params, opt, self.x, self.y, idx)
        jax.block_until_ready((loss, params))
        self.params = params

    def metric(self):
        x, y = self.test
        correct = sum(int(self.eval(self.params, x[i:i + 1000], y[i:i + 1000])) for i in range(0, len(x), 1000))
        return {"test_accuracy": correct / len(x)}


def setup_epoch(params, reference, threads):
    return Epoch(params)


KINDS = {"matmul": setup_matmul, "add": setup_add, "exp": setup_exp, "softmax": setup_softmax,
         "conv2d": setup_conv2d, "layer_norm": setup_layer_norm, "eager_add": setup_eager_add,
         "train_step": setup_train_step, "epoch": setup_epoch}

if __name__ == "__main__":
    serve(ARGS, hello, KINDS)
