#!/usr/bin/env python3
"""PyTorch peer of `tessera bench` (protocol and kinds: docs/benchmarks.md): PyTorch eager
(--system pytorch) or torch.compile (--system torch.compile), one file.

  .venv-bench/bin/python bench/peers/torch_peer.py --system pytorch --threads 2
  printf '%s\\n' '{"cmd":"setup","id":"m","kind":"matmul","params":{"n":512},"reference":null,"warmup":2}' \\
                '{"cmd":"run","id":"m","reps":5}' | .venv-bench/bin/python bench/peers/torch_peer.py --system pytorch

Eager runs every kind. torch.compile runs train_step (the model's forward and the clip + optimizer
update each compiled, see make_step) and inference (the model compiled with inductor freezing);
other kinds answer unsupported. Calls that need no gradients run under torch.inference_mode();
eager CNN inference runs in channels_last; freed memory is reused (see reuse_freed_memory).
"""
import os

from peer_server import Unsupported, parse_args, serve

try:
    import torch
    import torch.nn.functional as F

    from torch_models import build, inference_shape, load_tessera_state
    MISSING = None
except ImportError as e:  # hello() reports it: the runner lists the system as missing
    MISSING = e

COMPILE_SYSTEM = "torch.compile"
SYSTEM = {"name": "pytorch"}


def compiling():
    return SYSTEM["name"] == COMPILE_SYSTEM


def fresh_compile():
    """Under torch.compile, forgets earlier workloads' compiled code: first_s is this workload's
    own compilation and dynamo's per-function recompile limit is never reached."""
    if compiling():
        torch._dynamo.reset()


def reuse_freed_memory():
    """PyTorch's CPU allocator is plain malloc; glibc serves blocks over 32 MB with mmap and
    unmaps them on free, so every call that allocates a 64 MB result page-faults it in afresh
    (about 25 ms for add_16M, 5x the add). PyTorch's performance tuning guide advises an allocator
    that reuses memory (jemalloc/tcmalloc); these glibc settings do the same: no mmap, no trim."""
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_max = -1, -4
    return libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1


def hello(args):
    if MISSING:
        raise MISSING
    SYSTEM["name"] = args.system
    malloc = "glibc malloc without mmap/trim (freed memory reused)" if reuse_freed_memory() else "glibc malloc"
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if compiling():
        import torch._inductor.config as inductor
        inductor.freezing = True  # inference graphs: weights as constants, conv+BN folded
    config = (f"torch.set_num_threads({args.threads}), set_num_interop_threads(1), "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
              f"mkldnn={torch.backends.mkldnn.is_available()}, {malloc}, inference_mode for no-grad calls")
    if compiling():
        config += ", torch.compile(mode='default', inductor CPU backend): train_step compiles the forward " \
                  "and the clip + optimizer step, inference the model with inductor freezing"
    return torch.__version__, config


class Workload:
    """One timed call = fn(); `grad=False` runs it under torch.inference_mode(). `checker`, when
    given, computes the agreement check from the first call's result."""

    def __init__(self, fn, grad=False, checker=None, **attrs):
        self.fn, self.grad, self.checker = fn, grad, checker
        self.__dict__.update(attrs)

    def first_call(self):
        self.call()
        if self.checker:
            self.check = self.checker()

    def call(self):
        if self.grad:
            self.fn()
        else:
            with torch.inference_mode():
                self.fn()


def uniform(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) * 2 - 1


def eager_only(kind):
    if compiling():
        raise Unsupported(f"torch.compile peer does not run '{kind}' (eager PyTorch does)")


# ---- kernels ------------------------------------------------------------------------------------

def setup_matmul(p, reference, threads):
    eager_only("matmul")
    a, b = uniform(p["n"], p["n"], seed=0), uniform(p["n"], p["n"], seed=1)
    return Workload(lambda: a @ b)


def setup_add(p, reference, threads):
    eager_only("add")
    a, b = uniform(p["numel"], seed=0), uniform(p["numel"], seed=1)
    return Workload(lambda: a + b)


def setup_exp(p, reference, threads):
    eager_only("exp")
    a = uniform(p["numel"])
    return Workload(lambda: torch.exp(a))


def setup_softmax(p, reference, threads):
    eager_only("softmax")
    a = uniform(p["rows"], p["cols"])
    return Workload(lambda: torch.softmax(a, -1))


def setup_conv2d(p, reference, threads):
    eager_only("conv2d")
    x = uniform(p["batch"], p["in_channels"], p["height"], p["width"], seed=0)
    w = uniform(p["out_channels"], p["in_channels"], p["kernel"], p["kernel"], seed=1)
    return Workload(lambda: F.conv2d(x, w, padding=p.get("padding", 0)))


def setup_layer_norm(p, reference, threads):
    eager_only("layer_norm")
    x = uniform(p["rows"], p["cols"], seed=0)
    w, b = uniform(p["cols"], seed=1), uniform(p["cols"], seed=2)
    return Workload(lambda: F.layer_norm(x, (p["cols"],), w, b, 1e-5))


def setup_eager_add(p, reference, threads):
    eager_only("eager_add")
    a, b, inner = uniform(1, seed=0), uniform(1, seed=1), int(p["inner"])

    def loop():
        for _ in range(inner):
            a + b
    return Workload(loop, per_call=inner, note="a + b on 1-element tensors under torch.inference_mode()")


# ---- training -----------------------------------------------------------------------------------

def fashion(split):
    from torch_train import fashion as read
    return read(split)


def train_batches(p):
    """The 8 training batches of docs/benchmarks.md: Fashion-MNIST's first 8 batches in file order
    (mlp/cnn) or uniformly random bytes [batch, context + 1] (gpt)."""
    bs = p["batch"]
    if p["model"] == "gpt":
        g = torch.Generator().manual_seed(0)
        wins = [torch.randint(0, 256, (bs, p["context"] + 1), generator=g) for _ in range(8)]
        return [(w[:, :-1].contiguous(), w[:, 1:].contiguous()) for w in wins]
    x, y = fashion("train")
    return [(x[i * bs:(i + 1) * bs].clone(), y[i * bs:(i + 1) * bs].clone()) for i in range(8)]


def make_optimizer(p, model):
    opt = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[p["optimizer"]]
    return opt(model.parameters(), lr=p["lr"])


def make_step(model, opt, clip):
    """The training step: zero_grad(set_to_none), forward, cross entropy, backward, clipping when
    clip > 0, optimizer step. Under torch.compile the forward (with its backward, via AOTAutograd)
    and the clip + optimizer update are compiled; the backward call itself stays in Python.
    Compiling the whole step instead (with compiled autograd) was measured slower here: MLP 8.1
    vs 7.0 ms, GPT within noise, and 3-5x the compile time."""
    fwd = torch.compile(model) if compiling() else model
    params = list(model.parameters())

    def update():
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
    update = torch.compile(update) if compiling() else update

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        out = fwd(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        loss.backward()
        update()
        return loss.item()
    return step


def check_model(p):
    if p["model"] not in ("mlp", "cnn", "gpt"):
        raise Unsupported(f"no train_step twin for model '{p['model']}'")


def setup_train_step(p, reference, threads):
    check_model(p)
    fresh_compile()
    torch.manual_seed(p.get("seed", 0))
    model = build(p["model"], p).train()
    step = make_step(model, make_optimizer(p, model), p.get("clip", 0))
    batches, i = train_batches(p), [0]

    def one():
        x, y = batches[i[0] % len(batches)]
        i[0] += 1
        step(x, y)
    return Workload(one, grad=True)


class Epoch:
    """One shuffled Fashion-MNIST epoch from freshly initialized weights (seeded as torch_train.py:
    model first, then the shuffle generator from the global RNG); metric() = test accuracy. The
    first call trains one batch (warm-up) and re-initializes; re-initialization happens outside
    the timed call unless the model was trained by an earlier call of the same run."""

    def __init__(self, p):
        if p["model"] not in ("mlp", "cnn"):
            raise Unsupported(f"epoch runs mlp and cnn, not '{p['model']}'")
        if compiling():
            raise Unsupported("torch.compile peer does not run 'epoch' (eager PyTorch does)")
        self.p = p
        self.xtr, self.ytr = fashion("train")
        self.xte, self.yte = fashion("test")
        self.fresh = False
        self.reinit()

    def reinit(self):
        torch.manual_seed(self.p.get("seed", 0))
        self.model = build(self.p["model"], self.p).train()
        self.step = make_step(self.model, make_optimizer(self.p, self.model), 0)
        self.g = torch.Generator().manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
        self.fresh = True

    def first_call(self):
        bs = self.p["batch"]
        self.step(self.xtr[:bs], self.ytr[:bs])
        self.reinit()

    def call(self):
        if not self.fresh:
            self.reinit()
        self.fresh = False
        bs, n = self.p["batch"], len(self.xtr)
        perm = torch.randperm(n, generator=self.g)
        for i in range(0, n, bs):
            j = perm[i:i + bs]
            self.step(self.xtr[j], self.ytr[j])

    def metric(self):
        self.model.eval()
        with torch.inference_mode():
            correct = sum((self.model(self.xte[i:i + 1000]).argmax(1) == self.yte[i:i + 1000]).sum().item()
                          for i in range(0, len(self.xte), 1000))
        self.model.train()
        return {"test_accuracy": correct / len(self.xte)}


def setup_epoch(p, reference, threads):
    return Epoch(p)


# ---- inference and generation -------------------------------------------------------------------

def load_reference(path):
    from safetensors.torch import load_file
    return load_file(path)


def agreement(got, want):
    diff = (got.float() - want.float()).abs().max().item()
    return {"max_abs_diff": diff, "max_rel_diff": diff / max(want.abs().max().item(), 1e-30)}


def inference_model(p, reference):
    """(model in eval mode, input, expected output or None): the reference file's weights and
    input when given, else seeded random weights and a random input."""
    if p["model"] not in ("resnet18", "mobilenet_v2", "encoder"):
        raise Unsupported(f"no inference twin for model '{p['model']}'")
    torch.manual_seed(0)
    model = build(p["model"], p).eval()
    if not reference:
        return model, uniform(*inference_shape(p["model"], p)), None
    ref = load_reference(reference)
    load_tessera_state(model, ref)
    return model, ref["__input__"].float(), ref["__output__"]


def setup_inference(p, reference, threads):
    model, x, want = inference_model(p, reference)
    fresh_compile()
    note = None
    if compiling():
        fwd = torch.compile(model)
    else:
        fwd = model
        if p["model"] != "encoder":  # PyTorch's CPU advice for CNNs; measured faster here
            fwd, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
            note = "channels_last model and input"
    out = {}

    def one():
        out["y"] = fwd(x)
    return Workload(one, checker=want is not None and (lambda: agreement(out["y"], want)), note=note)


def setup_generate(p, reference, threads):
    eager_only("generate")
    if p["model"] != "gpt":
        raise Unsupported(f"generate runs gpt, not '{p['model']}'")
    torch.manual_seed(0)
    model = build("gpt", p).eval()
    want = None
    if reference:
        ref = load_reference(reference)
        load_tessera_state(model, ref)
        prompt, want = ref["__prompt__"].long(), ref["__tokens__"].long()
    else:
        prompt = torch.randint(0, 256, (p["batch"], p["prompt"]), generator=torch.Generator().manual_seed(0))
    n_new, out = int(p["new_tokens"]), {}

    def one():
        out["seq"] = model.generate(prompt, n_new)
    return Workload(one, checker=want is not None and (lambda: token_check(out["seq"], want, prompt.shape[1])))


def token_check(seq, want, prompt_len):
    """Compares the generated tokens with the reference's (which may include the prompt)."""
    got = seq[:, prompt_len:]
    if want.shape[1] == seq.shape[1]:
        want = want[:, prompt_len:]
    return {"tokens_equal": int((got == want).sum().item()), "tokens_total": int(want.numel())}


KINDS = {
    "matmul": setup_matmul, "add": setup_add, "exp": setup_exp, "softmax": setup_softmax,
    "conv2d": setup_conv2d, "layer_norm": setup_layer_norm, "eager_add": setup_eager_add,
    "train_step": setup_train_step, "epoch": setup_epoch, "inference": setup_inference,
    "generate": setup_generate,
}

if __name__ == "__main__":
    serve(parse_args(), hello, KINDS)
