// Backend registry and device parsing.
#include <string>
#include <vector>

#include "tessera/backend.h"
#include "tessera/device.h"
#include "tessera/error.h"

namespace tessera {

namespace {
struct Registry {
  std::vector<std::unique_ptr<Backend>> owned;
  std::vector<Backend*> list;
  Device default_device{0, 0};
  bool default_set = false;
};
Registry& registry() {
  static Registry r;
  return r;
}
}  // namespace

uint8_t register_backend(std::unique_ptr<Backend> backend) {
  Registry& r = registry();
  for (Backend* b : r.list)
    if (b->name() == backend->name()) raise<ValueError>("register_backend", "backend '" + backend->name() + "' is already registered");
  if (r.list.size() >= 255) raise<ValueError>("register_backend", "too many backends");
  backend->type_id_ = static_cast<uint8_t>(r.list.size());
  r.list.push_back(backend.get());
  r.owned.push_back(std::move(backend));
  return r.list.back()->type_id_;
}

Backend& backend_for(Device d) {
  Registry& r = registry();
  if (d.type >= r.list.size())
    raise<ValueError>("device", "no backend registered for device type " + std::to_string(d.type));
  return *r.list[d.type];
}

Backend* find_backend(std::string_view name) {
  for (Backend* b : registry().list)
    if (b->name() == name) return b;
  return nullptr;
}

std::span<Backend* const> backends() { return registry().list; }

Device::Device(std::string_view spec) {
  std::string_view name = spec;
  int idx = 0;
  if (auto colon = spec.find(':'); colon != std::string_view::npos) {
    name = spec.substr(0, colon);
    std::string num(spec.substr(colon + 1));
    try {
      size_t used = 0;
      idx = std::stoi(num, &used);
      if (used != num.size() || idx < 0) throw std::invalid_argument("");
    } catch (const std::exception&) {
      raise<ValueError>("device", "bad device index in '" + std::string(spec) + "'");
    }
  }
  Backend* b = find_backend(name);
  if (!b) raise<ValueError>("device", "unknown device '" + std::string(spec) + "' (no backend of that name is registered)");
  if (idx >= b->device_count())
    raise<ValueError>("device", "device '" + std::string(spec) + "' does not exist (" + std::to_string(b->device_count()) + " available)");
  type = b->type_id();
  index = static_cast<int16_t>(idx);
}

std::string Device::str() const {
  const std::string& n = backend_for(*this).name();
  return index == 0 && backend_for(*this).device_count() <= 1 ? n : n + ":" + std::to_string(index);
}

std::ostream& operator<<(std::ostream& os, Device d) { return os << d.str(); }

// Until set explicitly, the default device is the first host-addressable backend (the CPU backend).
Device default_device() {
  Registry& r = registry();
  if (r.default_set) return r.default_device;
  for (Backend* b : r.list)
    if (b->host_accessible()) return Device(b->type_id(), 0);
  raise<NotImplementedError>("device", "no host backend is registered");
}
void set_default_device(Device d) {
  backend_for(d);  // validates
  registry().default_device = d;
  registry().default_set = true;
}

}  // namespace tessera
