// Tensor: an immutable value with a dtype, a shape and a device, viewing reference-counted
// storage. Copies are cheap (a reference); reshape of a contiguous tensor shares storage.
#pragma once

#include <complex>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "runtime/device.h"
#include "runtime/dtype.h"
#include "runtime/errors.h"
#include "runtime/ref.h"
#include "runtime/shape.h"
#include "runtime/storage.h"

namespace kiln {

/// The state behind a Tensor. Concrete tensors have storage; symbolic tensors (made by a trace
/// level) have none and carry `level_meta` instead.
class TensorImpl final : public RefCounted {
 public:
  DType dtype = DType::Float32;
  Shape shape;
  int64_t numel = 0;
  Ref<Storage> storage;
  size_t offset = 0;  // bytes into storage
  Device device = kCPU;
  /// Data owned by the level that made this tensor (a trace's node value, a tape's id).
  Ref<RefCounted> level_meta;
  /// 0 for concrete (eager) tensors; otherwise the id of the level that made it.
  uint64_t level_id = 0;

  static void* operator new(size_t n);
  static void operator delete(void* p, size_t n);
};

/// One element of `Tensor::index`: an integer, a Slice, NewAxis or Ellipsis.
struct None_t {
  constexpr bool operator==(const None_t&) const = default;
};
inline constexpr None_t None{};
struct NewAxis_t {};
inline constexpr NewAxis_t NewAxis{};
struct Ellipsis_t {};
inline constexpr Ellipsis_t Ellipsis{};

/// A Python-style slice `start:stop:step`; None means "from the edge".
struct Slice {
  std::variant<None_t, int64_t> start = None, stop = None;
  int64_t step = 1;
  Slice() = default;
  Slice(std::variant<None_t, int64_t> start_, std::variant<None_t, int64_t> stop_ = None, int64_t step_ = 1)
      : start(start_), stop(stop_), step(step_) {}
  template <class A, class B>
  requires(std::is_integral_v<A>&& std::is_integral_v<B>) Slice(A a, B b, int64_t s = 1)
      : start(int64_t(a)), stop(int64_t(b)), step(s) {}
  template <class A>
  requires std::is_integral_v<A> Slice(A a, None_t b, int64_t s = 1) : start(int64_t(a)), stop(b), step(s) {}
  template <class B>
  requires std::is_integral_v<B> Slice(None_t a, B b, int64_t s = 1) : start(a), stop(int64_t(b)), step(s) {}
};

/// An index item: `t.index({1, Slice(None, 2), NewAxis, Ellipsis})`.
struct IndexItem {
  std::variant<int64_t, Slice, NewAxis_t, Ellipsis_t> v;
  template <class I>
  requires std::is_integral_v<I> IndexItem(I i) : v(int64_t(i)) {}  // NOLINT
  IndexItem(Slice s) : v(s) {}                                      // NOLINT
  IndexItem(NewAxis_t n) : v(n) {}                                  // NOLINT
  IndexItem(Ellipsis_t e) : v(e) {}                                 // NOLINT
};

class Tensor;
/// Every element of a string tensor, in row-major order (runtime/string_tensor.h).
std::vector<std::string> string_values(const Tensor& t);
/// Element `i` of a string tensor (runtime/string_tensor.h).
std::string_view string_at(const Tensor& t, int64_t i);

/// A tensor value. Default-constructed tensors are undefined (`defined()` is false) and print
/// `None`; a missing gradient is such a tensor.
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Ref<TensorImpl> impl) : impl_(std::move(impl)) {}

  /// A new tensor with uninitialized memory on `device`. Throws InvalidArgument for a shape
  /// with negative dims or an element count whose byte size overflows, and for DType::String
  /// (string tensors are made by make_string_tensor in runtime/string_tensor.h).
  static Tensor empty(const Shape& shape, DType dtype, Device device = kCPU);

  bool defined() const { return impl_.get() != nullptr; }
  DType dtype() const { return impl()->dtype; }
  const Shape& shape() const { return impl()->shape; }
  int64_t ndim() const { return impl()->shape.rank(); }
  int64_t num_elements() const { return impl()->numel; }
  Device device() const { return impl()->device; }
  size_t nbytes() const { return static_cast<size_t>(impl()->numel) * dtype_size(impl()->dtype); }
  /// A copy of this tensor on `device` (this tensor itself when it is already there), like
  /// LibTorch's `Tensor::to`. Throws InvalidArgument for a GPU this machine lacks, for string
  /// tensors bound for a GPU, and for symbolic tensors (copies between devices are eager only).
  Tensor to(Device device) const;
  /// True for tensors made by a trace (no value until the graph runs).
  bool is_symbolic() const { return impl()->level_id != 0 && !impl()->storage; }

  /// Pointer to the first element. Throws FailedPrecondition for symbolic tensors and
  /// InvalidArgument for tensors that live on a GPU (see device_data).
  const void* raw_data() const;
  /// Pointer to the first element on whatever device holds it (a device address for a GPU
  /// tensor: for kernels and copies, never to dereference on the host).
  const void* device_data() const;
  /// Typed pointer; throws InvalidArgument if T does not match dtype().
  template <class T>
  const T* data() const {
    check_access(dtype_v<T>, "data");
    return static_cast<const T*>(raw_data());
  }
  /// Mutable pointer for kernels writing a freshly allocated output. Not for user code:
  /// tensors are immutable once they escape the op that made them.
  void* mutable_raw_data() const { return const_cast<void*>(raw_data()); }

  /// Copies the elements out in row-major order. T must match dtype() exactly (std::string for
  /// string tensors).
  template <class T>
  std::vector<T> to_vector() const {
    if constexpr (std::is_same_v<T, std::string>) {
      return string_values(*this);
    } else {
      const T* p = data<T>();
      return std::vector<T>(p, p + num_elements());
    }
  }
  /// The single element of a tensor with one element. T must match dtype() (std::string for
  /// string tensors).
  template <class T>
  T item() const {
    if constexpr (std::is_same_v<T, std::string>) {
      if (dtype() != DType::String)
        fail<InvalidArgument>("item", "requested element type string but the tensor has dtype ", dtype_name(dtype()));
    } else {
      check_access(dtype_v<T>, "item");
    }
    if (num_elements() != 1)
      fail<InvalidArgument>("item", "item() needs exactly one element, got shape ", shape().to_string());
    if constexpr (std::is_same_v<T, std::string>)
      return std::string(string_at(*this, 0));
    else
      return *static_cast<const T*>(raw_data());
  }

  /// Indexing with integers, slices, NewAxis and Ellipsis (TensorFlow/NumPy basic indexing).
  /// Integers drop their axis; negative values count from the end; out-of-range integers throw
  /// InvalidArgument.
  Tensor index(std::initializer_list<IndexItem> items) const;
  Tensor index(std::span<const IndexItem> items) const;

  /// The printed form, e.g. `kiln.Tensor([2. 3. 4.], shape=(3,), dtype=float32)`.
  std::string to_string() const;
  /// Just the values in NumPy's `str()` layout, e.g. `[[1. 2.]\n [3. 4.]]`.
  std::string numpy_string() const;

  /// The state behind the tensor; throws FailedPrecondition for an undefined tensor.
  TensorImpl* impl() const {
    if (!impl_) [[unlikely]]
      throw_undefined();
    return impl_.get();
  }
  const Ref<TensorImpl>& impl_ref() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  friend class BorrowedTensors;
  void check_access(DType want, const char* what) const;
  [[noreturn]] static void throw_undefined();
  Ref<TensorImpl> impl_;
};

/// A contiguous list of tensors that share handles the caller keeps alive, without touching
/// their reference counts: the graph interpreter passes kernel inputs this way. Copies made
/// from its elements are ordinary owning tensors. Not for user code.
class BorrowedTensors {
 public:
  BorrowedTensors() = default;
  BorrowedTensors(const BorrowedTensors&) = delete;
  BorrowedTensors& operator=(const BorrowedTensors&) = delete;
  ~BorrowedTensors() {
    for (Tensor& t : items_) t.impl_.release();
  }
  void push_back(const Tensor& t) { items_.push_back(Tensor(Ref<TensorImpl>::adopt(t.impl_.get()))); }
  std::span<const Tensor> span() const { return {items_.data(), items_.size()}; }

 private:
  SmallVector<Tensor, 4> items_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

/// Copies the elements of `src` into the storage of `dst` (same dtype and element count),
/// between any two devices. For runtime code that owns `dst` (variables, copies): tensors that
/// escaped are immutable.
void copy_into(const Tensor& dst, const Tensor& src);

/// Wraps caller memory without copying. `deleter` (may be empty) runs when the last tensor
/// viewing the memory is destroyed. The caller must keep the memory unchanged while it is
/// wrapped: tensors are immutable.
Tensor from_blob(void* data, const Shape& shape, DType dtype, std::function<void(void*)> deleter = {},
                 Device device = kCPU);

/// Byte size of `shape` x `dtype`, checking for overflow; throws InvalidArgument naming `op`.
size_t checked_nbytes(std::string_view op, const Shape& shape, DType dtype);

}  // namespace kiln
