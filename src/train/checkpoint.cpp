#include "tessera/train/checkpoint.h"

#include "tessera/error.h"
#include "tessera/io/safetensors.h"
#include "tessera/ops.h"
#include "tessera/random.h"

namespace tessera::train {

namespace {
constexpr const char* kFormat = "tessera.checkpoint/1";

TensorMap with_prefix(const TensorMap& m, const std::string& prefix) {
  TensorMap r;
  for (auto& [k, v] : m) r[prefix + k] = v;
  return r;
}

TensorMap strip_prefix(const TensorMap& m, const std::string& prefix) {
  TensorMap r;
  for (auto& [k, v] : m)
    if (k.compare(0, prefix.size(), prefix) == 0) r[k.substr(prefix.size())] = v;
  return r;
}

int64_t meta_int(const std::string& path, const std::map<std::string, std::string>& meta, const char* key) {
  auto it = meta.find(key);
  if (it == meta.end()) raise<FormatError>("load_checkpoint", path + ": metadata lacks '" + key + "'");
  try {
    size_t used = 0;
    int64_t v = std::stoll(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    raise<FormatError>("load_checkpoint", path + ": metadata '" + key + "' = '" + it->second + "' is not an integer");
  }
}
}  // namespace

void save_checkpoint(const std::string& path, nn::Module& model, const optim::Optimizer* optimizer,
                     const CheckpointState& state) {
  TensorMap all = with_prefix(model.state_dict(), "model.");
  if (optimizer) {
    TensorMap o = with_prefix(optimizer->state_dict(), "optim.");
    all.insert(o.begin(), o.end());
  }
  const Generator& g = default_generator();
  all["rng.default"] = tensor<int64_t>({static_cast<int64_t>(g.seed()), static_cast<int64_t>(g.offset())}, {2});
  std::map<std::string, std::string> meta = state.info;
  meta["format"] = kFormat;
  meta["step"] = std::to_string(state.step);
  meta["epoch"] = std::to_string(state.position.epoch);
  meta["batch"] = std::to_string(state.position.batch);
  io::save_safetensors(path, all, meta);
}

CheckpointState load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* optimizer) {
  io::SafetensorsFile f = io::load_safetensors(path);
  auto fmt = f.metadata.find("format");
  if (fmt == f.metadata.end() || fmt->second != kFormat)
    raise<FormatError>("load_checkpoint",
                       path + ": not a Tessera checkpoint (metadata 'format' is not '" + std::string(kFormat) + "')");
  CheckpointState st;
  st.step = meta_int(path, f.metadata, "step");
  st.position.epoch = meta_int(path, f.metadata, "epoch");
  st.position.batch = meta_int(path, f.metadata, "batch");
  for (auto& [k, v] : f.metadata)
    if (k != "format" && k != "step" && k != "epoch" && k != "batch") st.info[k] = v;
  auto rng = f.tensors.find("rng.default");
  if (rng == f.tensors.end() || rng->second.dtype() != DType::Int64 || rng->second.numel() != 2)
    raise<FormatError>("load_checkpoint", path + ": missing or malformed 'rng.default' (int64 [2])");
  TensorMap model_state = strip_prefix(f.tensors, "model.");
  TensorMap optim_state = strip_prefix(f.tensors, "optim.");
  if (optimizer && optim_state.empty())
    raise<FormatError>("load_checkpoint", path + ": holds no optimizer state ('optim.*' entries)");
  // Copy out of the mapping: the checkpoint's tensors must not keep the file mapped for the run.
  for (auto& [k, v] : model_state) v = v.clone();
  for (auto& [k, v] : optim_state) v = v.clone();
  model.load_state_dict(model_state);
  if (optimizer) optimizer->load_state_dict(optim_state);
  std::vector<int64_t> r = rng->second.contiguous().to_vector<int64_t>();
  default_generator().set_state(static_cast<uint64_t>(r[0]), static_cast<uint64_t>(r[1]));
  return st;
}

}  // namespace tessera::train
