// Devices (CPU:0, GPU:0), the thread's current device scope, and soft placement.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

namespace kiln {

enum class DeviceType : uint8_t { CPU, GPU };

/// Where a tensor's memory lives. Prints as "CPU:0".
struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  /// Parses "CPU:0", "GPU:1", "cpu", "/device:GPU:0" (case-insensitive type). Throws
  /// InvalidArgument on anything else.
  static Device parse(std::string_view spec);
  std::string to_string() const;
  /// TensorFlow's long form, "/job:localhost/replica:0/task:0/device:CPU:0".
  std::string full_name() const;
  friend bool operator==(const Device&, const Device&) = default;
};

std::ostream& operator<<(std::ostream& os, const Device& d);

inline constexpr Device kCPU{DeviceType::CPU, 0};

/// Number of usable GPUs in this build on this machine (0 without a CUDA build).
int gpu_count();

/// The device new tensors and variables are placed on by the innermost DeviceScope.
Device current_device();

/// True inside a DeviceScope on this thread. Ops then run on current_device(); outside any
/// scope they run where their first GPU input lives, else on the CPU.
bool in_device_scope();

/// Places new tensors and variables on `device` for its lifetime (TensorFlow's `with
/// tf.device(...)`). Soft placement: a GPU that this build or machine lacks falls back to the
/// CPU, and the fallback is logged once per process.
class DeviceScope {
 public:
  explicit DeviceScope(Device device);
  explicit DeviceScope(std::string_view spec) : DeviceScope(Device::parse(spec)) {}
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  /// The device asked for (before soft placement).
  Device requested() const { return requested_; }
  /// The device actually used.
  Device placed() const { return placed_; }

 private:
  Device requested_;
  Device placed_;
  Device previous_;
  bool previous_active_;
};

}  // namespace kiln
