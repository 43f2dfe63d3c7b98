"""PyTorch twins of the benchmark models (docs/benchmarks.md "Models"), imported by the torch and
ONNX Runtime peers and by torch_train.py; nothing to run.

- Mlp, Cnn, Gpt: Tessera's reference models (include/tessera/nn/models.h), same parameter names.
- resnet18, mobilenet_v2: torchvision's architectures written by hand with torchvision's exact
  module/parameter names and initialization (a torchvision state_dict loads as is).
- encoder: nn.TransformerEncoder of pre-norm GELU layers plus a final LayerNorm.
- load_tessera_state(model, state): loads a Tessera state_dict (Gpt and encoder names mapped).
- build(model, params), inference_shape(model, params): the twin and input of a workload.
"""
import re

import torch
import torch.nn as nn
import torch.nn.functional as F


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 512), nn.Linear(512, 256), nn.Linear(256, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(64 * 7 * 7, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class Block(nn.Module):
    def __init__(self, d, h, ff):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, h, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self, vocab=256, context=128, d=256, layers=4, heads=4, ff=1024):
        super().__init__()
        self.context = context
        self.tok_emb, self.pos_emb = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads, ff) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, tok):
        t = tok.shape[1]
        x = self.tok_emb(tok) + self.pos_emb(torch.arange(t))
        mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1)
        for b in self.blocks:
            x = b(x, mask)
        return self.head(self.ln_f(x))

    def generate(self, prompt, n_new):
        """Greedy decoding exactly like Tessera's Gpt::generate: a full forward over the last
        `context` tokens per new token (no KV cache); returns [B, T0 + n_new]."""
        seq = prompt.long()
        for _ in range(n_new):
            window = seq[:, -self.context:]
            nxt = self(window)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
        return seq


# ---- torchvision's ResNet-18 --------------------------------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, inplanes = (64, 128, 256, 512), 64
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(inplanes, planes, stride),
                                                        BasicBlock(planes, planes)))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---- torchvision's MobileNet-V2 -----------------------------------------------------------------

def conv_bn_relu6(inp, oup, kernel=3, stride=1, groups=1):
    """torchvision's Conv2dNormActivation with BatchNorm2d and ReLU6: children 0, 1, 2."""
    return nn.Sequential(nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(oup), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [conv_bn_relu6(inp, hidden, kernel=1)] if expand_ratio != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    # t (expansion), c (channels), n (repeats), s (first stride); width multiplier 1.0, so
    # torchvision's _make_divisible leaves every channel count as is.
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))

    def __init__(self, num_classes=1000):
        super().__init__()
        features, inp = [conv_bn_relu6(3, 32, stride=2)], 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                features.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        features.append(conv_bn_relu6(inp, 1280, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def encoder(d_model=256, heads=4, ff=1024, layers=4):
    layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)


def build(model, params):
    """The twin named by a workload's params.model, with the workload's sizes."""
    if model == "mlp":
        return Mlp()
    if model == "cnn":
        return Cnn()
    if model == "gpt":
        return Gpt(256, params.get("context", 128), params.get("d_model", 256), params.get("layers", 4),
                   params.get("heads", 4), params.get("ff", 1024))
    if model == "resnet18":
        return ResNet18()
    if model == "mobilenet_v2":
        return MobileNetV2()
    if model == "encoder":
        return encoder(params.get("d_model", 256), params.get("heads", 4), params.get("ff", 1024),
                       params.get("layers", 4))
    raise KeyError(model)


def inference_shape(model, params):
    """The input shape of an `inference` workload: [batch, seq, d_model] for the encoder, else
    [batch, 3, size, size]."""
    if model == "encoder":
        return (params["batch"], params.get("seq", 128), params.get("d_model", 256))
    return (params["batch"], 3, params.get("size", 224), params.get("size", 224))


# Tessera's TransformerBlock names -> nn.TransformerEncoderLayer's (the encoder only).
_ENCODER_NAMES = (("ln1.", "norm1."), ("attn.", "self_attn."), ("ln2.", "norm2."), ("fc1.", "linear1."),
                  ("fc2.", "linear2."))


def _torch_name(name, is_encoder):
    if not is_encoder:  # Tessera's Gpt registers its blocks as block0, block1, ...
        return re.sub(r"^block(\d+)\.", r"blocks.\1.", name)
    m = re.match(r"(layers\.\d+\.)(.*)", name)
    if not m:
        return name
    for tessera, torch_name in _ENCODER_NAMES:
        if m.group(2).startswith(tessera):
            return m.group(1) + torch_name + m.group(2)[len(tessera):]
    return name


def load_tessera_state(model, state):
    """Loads a Tessera state_dict into `model` (Gpt's block{i} -> blocks.{i}, the encoder's
    TransformerBlock names -> nn.TransformerEncoderLayer's, others as they are). Raises when a torch parameter/buffer is missing or a
    shape differs; num_batches_tracked is ignored; names starting with "__" (reference data) too."""
    is_encoder = isinstance(model, nn.TransformerEncoder)
    mapped = {_torch_name(k, is_encoder): v for k, v in state.items() if not k.startswith("__")}
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(own) - set(mapped))
    if missing:
        raise KeyError(f"Tessera state lacks {len(missing)} tensors, e.g. {missing[:5]}")
    for k, v in own.items():
        if tuple(mapped[k].shape) != tuple(v.shape):
            raise ValueError(f"{k}: Tessera shape {tuple(mapped[k].shape)}, torch {tuple(v.shape)}")
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(mapped[k].to(v.dtype))
