#!/usr/bin/env python3
"""Interop check between Tessera's safetensors I/O and the reference `safetensors` package.

Run by hand (not part of `make test`), after scripts/setup-bench and a build of libtessera:
    .venv-bench/bin/python scripts/check_safetensors_interop.py [BUILD_DIR]   (default: build)

1. Tessera writes a file (every dtype, incl. bf16, 0-d, empty, a transposed tensor, metadata);
   safetensors.torch.load_file / safe_open read it and the values are compared.
2. safetensors.torch.save_file writes a file; Tessera loads it and prints its values, which are
   compared with the originals.
A small C++ helper (compiled here against BUILD_DIR/libtessera.so) does the Tessera side.
Exit status 0 when everything matches.
"""
import json
import os
import subprocess
import sys
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))

HELPER = r"""
#include <cstdio>
#include <iostream>
#include <string>
#include <nlohmann/json.hpp>
#include "tessera/io/safetensors.h"
#include "tessera/ops.h"
namespace ts = tessera;
int main(int argc, char** argv) {
  std::string cmd = argv[1], path = argv[2];
  if (cmd == "write") {
    ts::TensorMap m;
    ts::Tensor base = ts::div(ts::arange(-6, 6, 1, ts::DType::Float64).reshape({3, 4}), 4.0);
    for (auto d : {ts::DType::Float64, ts::DType::Float32, ts::DType::Float16, ts::DType::BFloat16, ts::DType::Int64,
                   ts::DType::Int32, ts::DType::Int8, ts::DType::UInt8, ts::DType::Bool}) {
      std::string n(ts::dtype_name(d));
      ts::Tensor src = d == ts::DType::UInt8 ? ts::abs(ts::mul(base, 4.0)) : (ts::is_floating(d) ? base : ts::mul(base, 4.0));
      m[n] = ts::cast(src, d);
      m[n + ".T"] = ts::cast(src, d).transpose(0, 1);
      m[n + ".scalar"] = ts::cast(ts::scalar_tensor(3.0), d);
      m[n + ".empty"] = ts::zeros({0, 2}, d);
    }
    ts::io::save_safetensors(path, m, {{"writer", "tessera"}});
    return 0;
  }
  auto f = ts::io::load_safetensors(path);
  nlohmann::json out;
  for (auto& [k, v] : f.metadata) out["__metadata__"][k] = v;
  for (auto& [name, t] : f.tensors) {
    nlohmann::json e;
    e["dtype"] = std::string(ts::dtype_name(t.dtype()));
    e["shape"] = std::vector<int64_t>(t.shape().begin(), t.shape().end());
    e["values"] = ts::cast(t, ts::DType::Float64).to_vector<double>();
    out[name] = e;
  }
  std::cout << out.dump() << "\n";
}
"""

TS_DTYPE = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
            "int64": torch.int64, "int32": torch.int32, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}


def expected_tessera_file():
    base = torch.arange(-6, 6, dtype=torch.float64).reshape(3, 4) / 4.0
    m = {}
    for n, d in TS_DTYPE.items():
        src = (base * 4.0).abs() if d == torch.uint8 else (base if d.is_floating_point else base * 4.0)
        m[n] = src.to(d)
        m[n + ".T"] = src.to(d).t().contiguous()
        m[n + ".scalar"] = torch.tensor(3.0, dtype=torch.float64).to(d)
        m[n + ".empty"] = torch.zeros(0, 2, dtype=d)
    return m


def main():
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "helper.cpp")
        exe = os.path.join(tmp, "helper")
        with open(src, "w") as f:
            f.write(HELPER)
        subprocess.run(["g++", "-std=c++20", "-O1", "-I", os.path.join(ROOT, "include"), src, "-o", exe,
                        "-L", BUILD, "-ltessera", "-Wl,-rpath," + BUILD], check=True)

        # 1. Tessera writes, safetensors reads.
        path = os.path.join(tmp, "tessera.safetensors")
        subprocess.run([exe, "write", path], check=True)
        got = load_file(path)
        with safe_open(path, framework="pt") as f:
            md = f.metadata()
        if md != {"writer": "tessera"}:
            failures.append(f"metadata: {md}")
        want = expected_tessera_file()
        if set(got) != set(want):
            failures.append(f"names differ: {sorted(set(got) ^ set(want))}")
        for k, w in want.items():
            g = got.get(k)
            if g is None or g.dtype != w.dtype or g.shape != w.shape or not torch.equal(g, w):
                failures.append(f"tessera->safetensors {k}: got {g!r}, want {w!r}")
        print(f"tessera -> safetensors: {len(got)} tensors checked")

        # 2. safetensors writes, Tessera reads.
        gen = torch.Generator().manual_seed(0)
        ref = {n: (torch.randn(5, 3, generator=gen, dtype=torch.float64) * 20).to(d) for n, d in TS_DTYPE.items()}
        ref["scalar"] = torch.tensor(2.5)
        ref["empty"] = torch.zeros(0, 3, dtype=torch.int32)
        ref["odd_u8"] = torch.arange(3, dtype=torch.uint8)  # puts later tensors at unaligned offsets
        ref["z_after_odd"] = torch.arange(4, dtype=torch.float32)
        path2 = os.path.join(tmp, "python.safetensors")
        save_file(ref, path2, metadata={"format": "pt", "writer": "safetensors"})
        out = json.loads(subprocess.run([exe, "dump", path2], check=True, capture_output=True, text=True).stdout)
        if out.get("__metadata__") != {"format": "pt", "writer": "safetensors"}:
            failures.append(f"metadata: {out.get('__metadata__')}")
        for k, w in ref.items():
            e = out.get(k)
            if e is None or TS_DTYPE[e["dtype"]] != w.dtype or list(w.shape) != e["shape"] or \
                    e["values"] != w.to(torch.float64).flatten().tolist():
                failures.append(f"safetensors->tessera {k}: got {e}, want {w}")
        print(f"safetensors -> tessera: {len(ref)} tensors checked")
    for f in failures:
        print("FAIL:", f)
    print("interop OK" if not failures else f"interop FAILED ({len(failures)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
