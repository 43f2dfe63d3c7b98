// Training checkpoints: everything needed to resume a run exactly, in one safetensors file that
// other tools can read.
//
// Tensors:  "model.<name>"  the model's state_dict (parameters and buffers)
//           "optim.<key>"   the optimizer's state_dict (moments, step counts)
//           "rng.default"   int64 [2]: ts::default_generator()'s (seed, offset)
// Metadata: "format" = "tessera.checkpoint/1", "step", "epoch", "batch" (the data loader position
//           to continue from), and any user entries of CheckpointState::info.
// Saving is atomic (io::save_safetensors): a crash during a save leaves the previous file intact.
#pragma once

#include <map>
#include <string>

#include "tessera/data/dataloader.h"
#include "tessera/nn/module.h"
#include "tessera/optim/optimizer.h"

namespace tessera::train {

struct CheckpointState {
  int64_t step = 0;               // optimizer steps taken
  data::LoaderPosition position;  // where the data loader continues
  std::map<std::string, std::string> info;
};

/// Writes model, optimizer (may be null), the default generator and `state` to path.
TESSERA_API void save_checkpoint(const std::string& path, nn::Module& model, const optim::Optimizer* optimizer,
                                 const CheckpointState& state);
/// Restores model (strict state_dict load), optimizer (when not null; the file must hold its
/// state), the default generator, and returns the saved state. Throws FormatError for a file that
/// is not a Tessera checkpoint or lacks an entry, plus the errors of load_safetensors and
/// load_state_dict; on error the model is left unchanged.
TESSERA_API CheckpointState load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* optimizer);

}  // namespace tessera::train
