#!/usr/bin/env python3
"""PyTorch twins of Tessera's reference models (include/tessera/nn/models.h), trained the same way
as `tessera train`: same architectures, PyTorch's default initialization (which Tessera's layers
copy), the same data files (Debian's dataset-fashion-mnist, the fortunes corpus), the same
optimizer settings.

  torch_train.py --model cnn --epochs 2 --threads 2 --seed 0      # accuracy per epoch
  torch_train.py --model gpt --time-steps 20 --threads 2          # per-step time (step_ms line)
  torch_train.py --model mlp --time-steps 20 --compile             # torch.compile'd step
"""
import argparse
import glob
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from fashion_mnist import fashion_arrays
from torch_models import Cnn, Gpt, Mlp

FORTUNES_DIR = "/usr/share/games/fortunes"


def fashion(split):
    x, y = fashion_arrays(split)
    return torch.from_numpy(x).reshape(-1, 1, 28, 28), torch.from_numpy(y.astype(np.int64))


def fortunes_bytes():
    files = sorted(p for p in glob.glob(FORTUNES_DIR + "/*")
                   if os.path.isfile(p) and not os.path.islink(p) and not p.endswith((".dat", ".u8")))
    return np.frombuffer(b"".join(open(p, "rb").read() for p in files), dtype=np.uint8)


def make(args):
    if args.model == "mlp":
        return Mlp(), torch.optim.Adam, fashion
    if args.model == "cnn":
        return Cnn(), torch.optim.Adam, fashion
    return Gpt(), torch.optim.AdamW, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cnn", choices=["mlp", "cnn", "gpt"])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-steps", type=int, default=0)
    ap.add_argument("--compile", action="store_true", help="torch.compile the training step's model")
    ap.add_argument("--same-as", help="safetensors file with a Tessera model's state_dict and its epoch orders "
                    "('order.<epoch>'): start from Tessera's weights and visit the data in Tessera's order")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    bs = args.batch_size or {"mlp": 128, "cnn": 64, "gpt": 16}[args.model]
    model, opt_cls, data = make(args)
    same = None
    if args.same_as:
        from safetensors.torch import load_file
        same = load_file(args.same_as)
        if not os.environ.get("SAME_ORDER_ONLY"):
            model.load_state_dict({k: v for k, v in same.items() if not k.startswith("order.")})
    opt = opt_cls(model.parameters(), lr=args.lr)
    fwd = torch.compile(model) if args.compile else model
    clip = 1.0 if args.model == "gpt" else 0.0

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        out = fwd(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss, out

    # As torch.utils.data.RandomSampler does: the shuffle generator is seeded from the global RNG
    # after the model is initialized, so data order and initial weights are independent streams.
    g = torch.Generator().manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
    if args.model == "gpt":
        corpus = torch.from_numpy(fortunes_bytes().astype(np.int64))
        n_train = int(len(corpus) * 0.9)

        def batches():
            while True:
                idx = torch.randint(0, n_train - 129, (bs,), generator=g)
                win = torch.stack([corpus[i:i + 129] for i in idx.tolist()])
                yield win[:, :-1], win[:, 1:]
    else:
        xtr, ytr = data("train")

        def batches():
            epoch = 0
            while True:
                use_order = same is not None and not os.environ.get("SAME_INIT_ONLY")
                perm = same[f"order.{epoch}"] if use_order else torch.randperm(len(xtr), generator=g)
                epoch += 1
                for i in range(0, len(xtr) - bs + 1 if args.time_steps else len(xtr), bs):
                    j = perm[i:i + bs]
                    yield xtr[j], ytr[j]

    if args.time_steps:
        it = batches()
        times = []
        compile_s = 0.0
        for k in range(3 + args.time_steps):
            x, y = next(it)
            t0 = time.perf_counter()
            step(x, y)
            dt = (time.perf_counter() - t0) * 1e3
            if k == 0:
                compile_s = dt / 1e3
            if k >= 3:
                times.append(dt)
        s = sorted(times)
        print(f"step_ms model={args.model} batch={bs} threads={torch.get_num_threads()} steps={len(times)} "
              f"median={statistics.median(times):.3f} min={s[0]:.3f} max={s[-1]:.3f} first_s={compile_s:.2f} "
              f"all=" + ",".join(f"{t:.3f}" for t in times), flush=True)
        return

    xte, yte = data("test")
    nb = (len(xtr) + bs - 1) // bs
    it = batches()
    for epoch in range(args.epochs):
        model.train()
        t0 = time.perf_counter()
        tot, n = 0.0, 0
        for _ in range(nb):
            x, y = next(it)
            loss, _ = step(x, y)
            tot += loss.item()
            n += 1
        secs = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            correct = sum((model(xte[i:i + 256]).argmax(1) == yte[i:i + 256]).sum().item()
                          for i in range(0, len(xte), 256))
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {tot / n:.4f} | {secs:.1f} s | "
              f"test acc {100.0 * correct / len(xte):.2f}%", flush=True)


if __name__ == "__main__":
    main()
