"""Reference trajectories for tests/optim/test_optim.cpp and test_schedule.cpp.

Run by hand in the bench venv (scripts/setup-bench):  .venv-bench/bin/python tests/optim/make_reference.py
Prints C++ initializer lists to paste into the tests. Loss per step: grad = (p - target) * 2.
"""
import math
import torch

torch.set_printoptions(precision=10)
P0 = [0.5, -1.25, 2.0, 0.0, 3.5, -0.75]
TARGET = [1.0, 0.5, -1.0, 2.0, 0.25, -3.0]
STEPS = 5


def run(make):
    p = torch.tensor(P0, dtype=torch.float32).reshape(2, 3).requires_grad_(True)
    t = torch.tensor(TARGET, dtype=torch.float32).reshape(2, 3)
    opt = make([p])
    for _ in range(STEPS):
        opt.zero_grad()
        p.grad = (p.detach() - t) * 2.0
        opt.step()
    return p.detach().flatten().tolist()


cases = {
    "SGD_plain": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "SGD_momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
    "SGD_dampening": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1),
    "SGD_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "SGD_wd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.5, weight_decay=0.1),
    "Adam_default": lambda ps: torch.optim.Adam(ps, lr=0.05),
    "Adam_wd": lambda ps: torch.optim.Adam(ps, lr=0.05, weight_decay=0.1),
    "Adam_amsgrad": lambda ps: torch.optim.Adam(ps, lr=0.5, betas=(0.9, 0.6), amsgrad=True),
    "Adam_betas": lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-3),
    "AdamW_default": lambda ps: torch.optim.AdamW(ps, lr=0.05),
    "AdamW_wd_amsgrad": lambda ps: torch.optim.AdamW(ps, lr=0.5, betas=(0.9, 0.6), weight_decay=0.1, amsgrad=True),
    "RMSprop_default": lambda ps: torch.optim.RMSprop(ps),
    "RMSprop_momentum": lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.9),
    "RMSprop_centered": lambda ps: torch.optim.RMSprop(ps, lr=0.01, centered=True),
    "RMSprop_all": lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1),
}
for name, make in cases.items():
    print(f'{{"{name}", {{{", ".join(f"{v:.9g}f" for v in run(make))}}}}},')


def lrs(make_sched, n=12, base=0.1):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base)
    s = make_sched(opt)
    out = [opt.param_groups[0]["lr"]]
    for _ in range(n):
        opt.step()
        s.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def hf_cosine(warmup, total, min_ratio):
    def f(step):
        if step < warmup:
            return step / warmup
        prog = min(1.0, (step - warmup) / (total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * prog))
    return f


sched = {
    "StepLR(step_size=3, gamma=0.5)": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    "LinearLR(start_factor=0.25, total_iters=4)": lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=4),
    "CosineAnnealingLR(T_max=10, eta_min=0.01)": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
    "LambdaLR(hf_cosine(3, 10, min 0.01))": lambda o: torch.optim.lr_scheduler.LambdaLR(o, hf_cosine(3, 10, 0.1)),
}
for name, make in sched.items():
    print(f"// {name}\n{{{', '.join(f'{v:.17g}' for v in lrs(make))}}},")

# clip_grad_norm_
g1 = torch.tensor([3.0, -4.0, 1.0])
g2 = torch.tensor([[0.5, 2.0], [-1.5, 0.25]])
ps = [torch.zeros(3, requires_grad=True), torch.zeros(2, 2, requires_grad=True)]
ps[0].grad, ps[1].grad = g1.clone(), g2.clone()
n = torch.nn.utils.clip_grad_norm_(ps, max_norm=2.0)
print("clip norm", f"{n.item():.9g}", [f"{v:.9g}" for v in ps[0].grad.tolist()], [f"{v:.9g}" for v in ps[1].grad.flatten().tolist()])

# amsgrad must differ from plain Adam for these settings (else the test checks nothing)
print("amsgrad differs:", run(lambda ps: torch.optim.Adam(ps, lr=0.5, betas=(0.9, 0.6))) != run(cases["Adam_amsgrad"]))
