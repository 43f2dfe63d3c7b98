// `tessera train` / `tessera demo`.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "tessera/data/dataset.h"
#include "tessera/nn/module.h"

namespace tessera::cli {

struct TrainDefaults {
  std::string command;     // "train" or "demo" (for messages)
  std::string model;       // default --model
  std::string checkpoint;  // default --checkpoint
};

struct TrainResult {
  std::shared_ptr<nn::Module> model;  // null after --time-steps
  std::shared_ptr<const data::Dataset> test_set;
  std::string checkpoint;  // where the final checkpoint was written ("" = none)
  double train_loss = 0.0, test_loss = 0.0, test_accuracy = 0.0;
};

/// Parses the flags (argv without the command name), trains, evaluates, saves; prints to out.
TrainResult run_training(int argc, char** argv, const TrainDefaults& defaults, std::ostream& out);
int train_command(int argc, char** argv);
int demo(int argc, char** argv, const std::string& checkpoint);
const char* train_usage();

}  // namespace tessera::cli
