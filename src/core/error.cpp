#include "tessera/error.h"

namespace tessera::detail {

std::string format_message(const char* op, const std::string& what) {
  std::string s = "[";
  s += op;
  s += "] ";
  s += what;
  return s;
}

}  // namespace tessera::detail
