// The tessera command-line tool.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "bench/bench_command.h"
#include "tessera/tessera.h"
#include "train_command.h"

namespace ts = tessera;

namespace {

int usage() {
  std::cout << "usage: tessera <command> [options]\n"
               "commands:\n"
               "  info      version, backends, BLAS, threads\n"
            << ts::cli::train_usage() << ts::cli::bench_usage();
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string cmd = argv[1];
  // Environment read at the edge only: IR dumps of every compiled graph (docs/graph_mode.md).
  if (const char* dump = std::getenv("TESSERA_GRAPH_DUMP")) ts::set_graph_dump_dir(dump);
  try {
    if (cmd == "info") {
      std::cout << ts::runtime_info();
      return 0;
    }
    if (cmd == "train") return ts::cli::train_command(argc - 2, argv + 2);
    if (cmd == "bench") return ts::cli::bench_command(argc - 2, argv + 2);
    if (cmd == "demo") return ts::cli::demo(argc - 2, argv + 2, "tessera-demo.safetensors");
  } catch (const ts::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return usage();
}
