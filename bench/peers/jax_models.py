"""Pure-JAX twins of Tessera's MLP, CNN and byte-level GPT (include/tessera/nn/models.h, PyTorch
twins in torch_train.py) with PyTorch's initialization, cross entropy, Adam/AdamW with PyTorch's
update formulas and clip_grad_norm_, for the JAX peer of `tessera bench` (jax_peer.py).

Parameters are flat dicts keyed by PyTorch's state_dict names ("fc1.weight", "blocks.0.attn.in_proj_weight",
...) with PyTorch's layouts (Linear weight [out, in], Conv OIHW), so torch weights load as is.
Import after XLA_FLAGS is set (jax_peer.py does). No flax/optax: the models are a few lines each.
"""
import math

import jax
import jax.numpy as jnp
from jax import lax


# ---- initialization (PyTorch defaults) ------------------------------------------------------------

def _uniform(key, shape, bound):
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def _linear(key, fan_in, fan_out, bias=True, zero_bias=False):
    """nn.Linear: kaiming_uniform(a=sqrt(5)) weight = U(+-1/sqrt(fan_in)), bias U(+-1/sqrt(fan_in))."""
    kw, kb = jax.random.split(key)
    bound = 1.0 / math.sqrt(fan_in)
    p = {"weight": _uniform(kw, (fan_out, fan_in), bound)}
    if bias:
        p["bias"] = jnp.zeros((fan_out,), jnp.float32) if zero_bias else _uniform(kb, (fan_out,), bound)
    return p


def _conv(key, cin, cout, k):
    kw, kb = jax.random.split(key)
    bound = 1.0 / math.sqrt(cin * k * k)
    return {"weight": _uniform(kw, (cout, cin, k, k), bound), "bias": _uniform(kb, (cout,), bound)}


def _layer_norm(d):
    return {"weight": jnp.ones((d,), jnp.float32), "bias": jnp.zeros((d,), jnp.float32)}


def _named(prefix, params):
    return {f"{prefix}.{k}": v for k, v in params.items()}


def init_mlp(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {**_named("fc1", _linear(k1, 784, 512)), **_named("fc2", _linear(k2, 512, 256)),
            **_named("fc3", _linear(k3, 256, 10))}


def init_cnn(key):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return {**_named("conv1", _conv(k1, 1, 32, 3)), **_named("conv2", _conv(k2, 32, 64, 3)),
            **_named("fc1", _linear(k3, 64 * 7 * 7, 128)), **_named("fc2", _linear(k4, 128, 10))}


def _init_block(key, d, ff):
    ka, ko, k1, k2 = jax.random.split(key, 4)
    xavier = math.sqrt(6.0 / (d + 3 * d))  # xavier_uniform of in_proj_weight [3d, d]
    return {"attn.in_proj_weight": _uniform(ka, (3 * d, d), xavier),
         "attn.in_proj_bias": jnp.zeros((3 * d,), jnp.float32),
         **_named("attn.out_proj", _linear(ko, d, d, zero_bias=True)),
         **_named("ln1", _layer_norm(d)), **_named("ln2", _layer_norm(d)),
         **_named("fc1", _linear(k1, d, ff)), **_named("fc2", _linear(k2, ff, d))}


def init_gpt(key, vocab, context, d, layers, ff):
    kt, kp, kh, *kb = jax.random.split(key, 3 + layers)
    p = {"tok_emb.weight": jax.random.normal(kt, (vocab, d), jnp.float32),
         "pos_emb.weight": jax.random.normal(kp, (context, d), jnp.float32),
         **_named("ln_f", _layer_norm(d)), **_named("head", _linear(kh, d, vocab, bias=False))}
    for i, k in enumerate(kb):
        p.update(_named(f"blocks.{i}", _init_block(k, d, ff)))
    return p


# ---- forward --------------------------------------------------------------------------------------

def linear(p, name, x):
    y = x @ p[f"{name}.weight"].T
    return y + p[f"{name}.bias"] if f"{name}.bias" in p else y


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = jnp.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) * lax.rsqrt(var + eps) * weight + bias


def conv2d(x, weight, bias=None, padding=1):
    y = lax.conv_general_dilated(x, weight, (1, 1), [(padding, padding)] * 2,
                                 dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y if bias is None else y + bias[None, :, None, None]


def _max_pool2(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def mlp(p, x):
    x = x.reshape(x.shape[0], -1)
    return linear(p, "fc3", jax.nn.relu(linear(p, "fc2", jax.nn.relu(linear(p, "fc1", x)))))


def cnn(p, x):
    x = _max_pool2(jax.nn.relu(conv2d(x, p["conv1.weight"], p["conv1.bias"])))
    x = _max_pool2(jax.nn.relu(conv2d(x, p["conv2.weight"], p["conv2.bias"])))
    return linear(p, "fc2", jax.nn.relu(linear(p, "fc1", x.reshape(x.shape[0], -1))))


def _attention(p, name, x, heads):
    b, t, d = x.shape
    qkv = x @ p[f"{name}.in_proj_weight"].T + p[f"{name}.in_proj_bias"]
    q, k, v = (a.reshape(b, t, heads, d // heads) for a in jnp.split(qkv, 3, axis=-1))
    o = jax.nn.dot_product_attention(q, k, v, is_causal=True)  # softmax(q k^T / sqrt(d_head)) v
    return linear(p, f"{name}.out_proj", o.reshape(b, t, d))


def _block(p, name, x, heads):
    h = layer_norm(x, p[f"{name}.ln1.weight"], p[f"{name}.ln1.bias"])
    x = x + _attention(p, f"{name}.attn", h, heads)
    h = layer_norm(x, p[f"{name}.ln2.weight"], p[f"{name}.ln2.bias"])
    return x + linear(p, f"{name}.fc2", jax.nn.gelu(linear(p, f"{name}.fc1", h), approximate=False))


def gpt(p, tok, heads):
    x = p["tok_emb.weight"][tok] + p["pos_emb.weight"][: tok.shape[1]]
    layers = sum(1 for k in p if k.endswith(".ln1.weight"))
    for i in range(layers):
        x = _block(p, f"blocks.{i}", x, heads)
    return linear(p, "head", layer_norm(x, p["ln_f.weight"], p["ln_f.bias"]))


def cross_entropy(logits, targets):
    logits = logits.reshape(-1, logits.shape[-1])
    picked = jnp.take_along_axis(logits, targets.reshape(-1, 1), axis=-1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - picked)


# ---- optimizer (torch.optim.Adam / AdamW, torch.nn.utils.clip_grad_norm_) --------------------------

def adam_init(params):
    return {"step": jnp.zeros((), jnp.float32), "m": jax.tree.map(jnp.zeros_like, params),
            "v": jax.tree.map(jnp.zeros_like, params)}


def clip_grad_norm(grads, max_norm):
    total = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))
    coef = jnp.minimum(max_norm / (total + 1e-6), 1.0)
    return jax.tree.map(lambda g: g * coef, grads)


def adam_update(params, grads, state, lr, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8):
    """torch's single-tensor Adam(W) step; weight_decay > 0 means AdamW's decoupled decay."""
    b1, b2 = betas
    step = state["step"] + 1
    step_size = lr / (1 - b1 ** step)
    bc2_sqrt = jnp.sqrt(1 - b2 ** step)
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state["v"], grads)

    def update(p, m, v):
        if weight_decay:
            p = p * (1 - lr * weight_decay)
        return p - step_size * m / (jnp.sqrt(v) / bc2_sqrt + eps)

    return jax.tree.map(update, params, m, v), {"step": step, "m": m, "v": v}


def train_step_fn(forward, lr, weight_decay=0.0, clip=0.0):
    """The whole step (params, opt_state, x, y) -> (params, opt_state, loss), to be jitted by the caller."""

    def loss_fn(params, x, y):
        return cross_entropy(forward(params, x), y)

    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        if clip > 0:
            grads = clip_grad_norm(grads, clip)
        params, opt_state = adam_update(params, grads, opt_state, lr, weight_decay)
        return params, opt_state, loss

    return step
