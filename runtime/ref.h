// Intrusive reference counting: one atomic counter inside the object, one pointer per handle.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

namespace kiln {

/// Base of reference-counted objects. Objects start with a count of zero; `Ref` manages it.
class RefCounted {
 public:
  RefCounted() = default;
  RefCounted(const RefCounted&) = delete;
  RefCounted& operator=(const RefCounted&) = delete;
  void ref() const { refs_.fetch_add(1, std::memory_order_relaxed); }
  /// Returns true when this was the last reference.
  bool unref() const { return refs_.fetch_sub(1, std::memory_order_acq_rel) == 1; }
  int64_t use_count() const { return refs_.load(std::memory_order_acquire); }

 protected:
  virtual ~RefCounted() = default;
  template <class T>
  friend class Ref;

 private:
  mutable std::atomic<int64_t> refs_{0};
};

/// An owning handle to a RefCounted object.
template <class T>
class Ref {
 public:
  Ref() = default;
  explicit Ref(T* p) : p_(p) {
    if (p_) p_->ref();
  }
  Ref(const Ref& o) : p_(o.p_) {
    if (p_) p_->ref();
  }
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  template <class U>
  Ref(Ref<U> o) : p_(o.release()) {}  // NOLINT: upcast
  Ref& operator=(Ref o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~Ref() { reset(); }
  void reset() {
    if (p_ && p_->unref()) delete p_;
    p_ = nullptr;
  }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  /// Gives up ownership without decrementing.
  T* release() { return std::exchange(p_, nullptr); }
  /// Adopts a pointer whose count was already incremented for this handle.
  static Ref adopt(T* p) {
    Ref r;
    r.p_ = p;
    return r;
  }
  friend bool operator==(const Ref& a, const Ref& b) { return a.p_ == b.p_; }

 private:
  T* p_ = nullptr;
};

template <class T, class... A>
Ref<T> make_ref(A&&... a) {
  return Ref<T>(new T(std::forward<A>(a)...));
}

}  // namespace kiln
