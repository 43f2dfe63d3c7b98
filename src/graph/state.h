// Internal access to the StatefulObject registry and settings (state.cpp).
#pragma once

#include <string>
#include <vector>

#include "tessera/compile.h"

namespace tessera::graph {

/// The live StatefulObjects, in construction order.
std::vector<StatefulObject*> live_state_objects();
/// The directory set by set_graph_dump_dir ("" = none).
std::string graph_dump_dir();
/// The setting of set_graph_profiling.
bool graph_profiling();

}  // namespace tessera::graph
