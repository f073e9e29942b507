// Device parsing and the thread-local placement scope.
#include "runtime/device.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <ostream>

#include "runtime/cuda/cuda.h"
#include "runtime/errors.h"
#include "runtime/logging.h"

namespace kiln {
namespace {
thread_local Device g_current = kCPU;
thread_local bool g_scope_active = false;
std::atomic<bool> g_warned_soft_placement{false};
}  // namespace

Device Device::parse(std::string_view spec) {
  std::string s(spec);
  std::string_view v = s;
  if (auto pos = v.rfind("device:"); pos != std::string_view::npos) v = v.substr(pos + 7);
  std::string up(v);
  std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return std::toupper(c); });
  Device d;
  std::string_view rest;
  if (up.starts_with("CPU")) {
    d.type = DeviceType::CPU;
    rest = std::string_view(up).substr(3);
  } else if (up.starts_with("GPU") || up.starts_with("CUDA")) {
    d.type = DeviceType::GPU;
    rest = std::string_view(up).substr(up.starts_with("GPU") ? 3 : 4);
  } else {
    fail<InvalidArgument>("device", "unknown device '", spec, "' (expected CPU:N or GPU:N)");
  }
  if (rest.empty()) return d;
  if (rest[0] != ':' || rest.size() < 2 || rest.size() > 6)
    fail<InvalidArgument>("device", "malformed device '", spec, "' (expected CPU:N or GPU:N)");
  int idx = 0;
  for (char c : rest.substr(1)) {
    if (c < '0' || c > '9') fail<InvalidArgument>("device", "malformed device index in '", spec, "'");
    idx = idx * 10 + (c - '0');
  }
  d.index = idx;
  return d;
}

std::string Device::to_string() const {
  return std::string(type == DeviceType::CPU ? "CPU:" : "GPU:") + std::to_string(index);
}

std::string Device::full_name() const { return "/job:localhost/replica:0/task:0/device:" + to_string(); }

std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.to_string(); }

int gpu_count() { return cuda::device_count(); }

Device current_device() { return g_current; }

bool in_device_scope() { return g_scope_active; }

DeviceScope::DeviceScope(Device device)
    : requested_(device), placed_(device), previous_(g_current), previous_active_(g_scope_active) {
  if (device.type == DeviceType::GPU && device.index >= gpu_count()) {
    placed_ = kCPU;
    if (!g_warned_soft_placement.exchange(true))
      logging::warn(
          "[device] {} is not available ({}); placing on CPU:0 instead", device.to_string(),
          gpu_count() == 0 ? cuda::unavailable_reason() : "this machine has " + std::to_string(gpu_count()) + " GPUs");
  } else if (device.type == DeviceType::CPU && device.index != 0) {
    fail<InvalidArgument>("device", "unknown device ", device.to_string(), " (this machine has CPU:0)");
  }
  g_current = placed_;
  g_scope_active = true;
}

DeviceScope::~DeviceScope() {
  g_current = previous_;
  g_scope_active = previous_active_;
}

}  // namespace kiln
