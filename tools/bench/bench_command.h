// `tessera bench`: the benchmark suite side by side with PyTorch, JAX, ONNX Runtime and raw BLAS
// (docs/benchmarks.md).
#pragma once

namespace tessera::cli {

int bench_command(int argc, char** argv);
const char* bench_usage();

}  // namespace tessera::cli
