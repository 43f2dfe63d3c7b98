// The tessera command-line tool.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "tessera/tessera.h"

namespace ts = tessera;

namespace {

int usage() {
  std::cout << "usage: tessera <command> [options]\n"
               "commands:\n"
               "  info      version, backends, BLAS, threads\n"
               "  demo      run a small eager computation and print it\n";
  return 2;
}

int demo() {
  ts::Generator gen(0);
  ts::Tensor x = ts::randn({2, 3}, gen);
  std::cout << "x =\n" << x << "\n";
  std::cout << "exp(x) + 1 =\n" << ts::exp(x) + 1 << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string cmd = argv[1];
  try {
    if (cmd == "info") {
      std::cout << ts::runtime_info();
      return 0;
    }
    if (cmd == "demo") return demo();
  } catch (const ts::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return usage();
}
