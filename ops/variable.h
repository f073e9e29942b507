// Variables: named, mutable, trainable state holding a tensor (TensorFlow's tf.Variable).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "ops/ops.h"
#include "runtime/tensor.h"

namespace kiln {

/// The shared state of a variable. User code holds a Variable; levels (traces, tapes) see this.
class VariableImpl : public std::enable_shared_from_this<VariableImpl> {
 public:
  VariableImpl(Tensor value, std::string name, bool trainable);
  /// The current value (a snapshot: later assignments do not change the returned tensor).
  Tensor value() const;
  /// Replaces the value in place when no tensor shares the buffer, else swaps in a new one
  /// (copy on write). The caller has checked dtype and shape. Waits while another thread holds
  /// `lock_updates()`.
  void write(const Tensor& v);
  /// Makes `v` the value without copying it: for a tensor nobody will write in place (compiled
  /// code's fresh results). Later writes still copy on write if `v` is shared. The caller has
  /// checked dtype, shape and device. Waits like write().
  void replace(Tensor v);
  /// Holds off every other thread's write of this variable (assign, assign_add, a compiled
  /// function's assign) until released: a read-modify-write under it is atomic. Recursive, so
  /// the holder's own writes go through.
  std::unique_lock<std::recursive_mutex> lock_updates() { return std::unique_lock(update_mu_); }
  const std::string& name() const { return name_; }
  bool trainable() const { return trainable_; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  Device device() const { return device_; }
  /// A process-unique id (stable for the variable's lifetime; used in signatures).
  uint64_t id() const { return id_; }

 private:
  std::recursive_mutex update_mu_;  // taken before mu_, never after
  mutable std::mutex mu_;
  Tensor value_;
  std::string name_;
  bool trainable_;
  DType dtype_;
  Shape shape_;
  Device device_;
  uint64_t id_;
};

/// A variable. Copying a Variable copies its value into a new variable (two variables never
/// share memory, as in TensorFlow); use `handle()` to share one variable.
class Variable {
 public:
  /// An undefined variable (`defined()` is false).
  Variable() = default;
  /// A variable initialized from `initial` (copied), placed on the current device scope's device.
  explicit Variable(const Tensor& initial, std::string name = "Variable", bool trainable = true);
  explicit Variable(const NestedList& initial, std::string name = "Variable", bool trainable = true)
      : Variable(constant(initial), std::move(name), trainable) {}
  /// A new variable with a copy of `other`'s current value and a default name.
  Variable(const Variable& other);
  Variable& operator=(const Variable& other);
  Variable(Variable&&) noexcept = default;
  Variable& operator=(Variable&&) noexcept = default;
  /// Wraps an existing variable's state (no copy).
  static Variable from_handle(std::shared_ptr<VariableImpl> impl);

  bool defined() const { return impl_ != nullptr; }
  /// Reads the current value (through the dispatch levels: traces record a read).
  Tensor read_value() const;
  operator Tensor() const { return read_value(); }  // NOLINT: variables are used as tensors

  /// Sets the value. The dtype and shape must match the variable's: a mismatch throws
  /// InvalidArgument naming both and leaves the variable unchanged. Returns *this.
  ///
  /// Threads: assign, assign_add and assign_sub are atomic per call when run eagerly. Updates of
  /// one variable from many threads are serialized, so n threads each adding d leave it at
  /// initial + n * d, and a read sees the value before or after each update, never a mix. In a
  /// traced function the read and the write of an assign_add are separate graph steps: a
  /// compiled function's read-modify-write is not atomic against other threads (as TensorFlow's
  /// without use_locking), though each of its writes is.
  const Variable& assign(const Tensor& value) const;
  /// Assigns from C++ values converted to the variable's dtype.
  const Variable& assign(const NestedList& value) const;
  /// Adds `delta` (the variable's dtype; it may broadcast, but the sum must keep the variable's
  /// shape). Atomic per call when run eagerly (see assign).
  const Variable& assign_add(const Tensor& delta) const;
  const Variable& assign_add(const NestedList& delta) const;
  /// Subtracts `delta`, as assign_add.
  const Variable& assign_sub(const Tensor& delta) const;
  const Variable& assign_sub(const NestedList& delta) const;

  /// The name with TensorFlow's output suffix, e.g. "w:0".
  std::string name() const;
  bool trainable() const { return impl()->trainable(); }
  DType dtype() const { return impl()->dtype(); }
  const Shape& shape() const { return impl()->shape(); }
  Device device() const { return impl()->device(); }
  int64_t ndim() const { return shape().rank(); }
  template <class T>
  std::vector<T> to_vector() const {
    return read_value().to_vector<T>();
  }
  template <class T>
  T item() const {
    return read_value().item<T>();
  }
  /// `<kiln.Variable 'w:0' shape=(2, 2) dtype=float32, numpy=...>`
  std::string to_string() const;

  const std::shared_ptr<VariableImpl>& handle() const { return impl_; }
  VariableImpl* impl() const;

 private:
  std::shared_ptr<VariableImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Variable& v);

}  // namespace kiln
