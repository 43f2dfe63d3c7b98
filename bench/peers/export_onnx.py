#!/usr/bin/env python3
"""Exports a PyTorch twin of an inference benchmark model (torch_models.py: resnet18,
mobilenet_v2, encoder) to ONNX with fixed shapes, for ort_peer.py and Tessera's ONNX importer.

  .venv-bench/bin/python bench/peers/export_onnx.py --model resnet18 --batch 8 --out x.onnx \\
      [--weights ref.safetensors]     # a Tessera reference file: its state_dict is loaded first

Without --weights the model keeps its seeded (torch.manual_seed(0)) random initialization.
TorchScript exporter (dynamo=False; the dynamo exporter needs onnxscript), opset 17, eval mode,
constant folding; the file is verified with onnx.checker. Input "input", output "output".
"""
import argparse
import warnings

import torch

from torch_models import build, inference_shape, load_tessera_state

OPSET = 17


def export(model_name, params, out, weights=None):
    """Writes the ONNX file `out` for the workload params (batch, size or seq/d_model/heads/ff/
    layers) and returns its path."""
    torch.manual_seed(0)
    model = build(model_name, params).eval()
    if weights:
        from safetensors.torch import load_file
        load_tessera_state(model, load_file(weights))
    x = torch.zeros(inference_shape(model_name, params))
    # Gradients stay enabled: under no_grad nn.TransformerEncoderLayer takes its fused fast path
    # (aten::_transformer_encoder_layer_fwd), which has no ONNX export.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based ONNX export"
        torch.onnx.export(model, (x,), out, dynamo=False, opset_version=OPSET, do_constant_folding=True,
                          input_names=["input"], output_names=["output"])
    import onnx
    onnx.checker.check_model(out)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, choices=["resnet18", "mobilenet_v2", "encoder"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ff", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--weights", help="safetensors file with a Tessera state_dict (reference file)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    params = {"batch": a.batch, "size": a.size, "seq": a.seq, "d_model": a.d_model, "heads": a.heads, "ff": a.ff,
              "layers": a.layers}
    print(export(a.model, params, a.out, a.weights))


if __name__ == "__main__":
    main()
