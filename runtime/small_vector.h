// A vector with N elements of inline storage: shapes and op output lists stay off the heap.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <new>
#include <span>
#include <utility>

namespace kiln {

template <class T, size_t N>
class SmallVector {
 public:
  using value_type = T;
  using iterator = T*;
  using const_iterator = const T*;

  SmallVector() = default;
  SmallVector(std::initializer_list<T> init) { assign(init.begin(), init.end()); }
  template <class It>
  SmallVector(It first, It last) {
    assign(first, last);
  }
  explicit SmallVector(size_t n, const T& v = T()) {
    reserve(n);
    for (size_t i = 0; i < n; ++i) push_back(v);
  }
  SmallVector(std::span<const T> s) { assign(s.begin(), s.end()); }  // NOLINT
  SmallVector(const SmallVector& o) { assign(o.begin(), o.end()); }
  SmallVector(SmallVector&& o) noexcept { take(std::move(o)); }
  SmallVector& operator=(const SmallVector& o) {
    if (this != &o) {
      clear();
      assign(o.begin(), o.end());
    }
    return *this;
  }
  SmallVector& operator=(SmallVector&& o) noexcept {
    if (this != &o) {
      destroy();
      take(std::move(o));
    }
    return *this;
  }
  ~SmallVector() { destroy(); }

  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return ptr_[i]; }
  const T& operator[](size_t i) const { return ptr_[i]; }
  T& back() { return ptr_[size_ - 1]; }
  const T& back() const { return ptr_[size_ - 1]; }
  T& front() { return ptr_[0]; }
  const T& front() const { return ptr_[0]; }
  T* begin() { return ptr_; }
  T* end() { return ptr_ + size_; }
  const T* begin() const { return ptr_; }
  const T* end() const { return ptr_ + size_; }
  operator std::span<const T>() const { return {ptr_, size_}; }  // NOLINT
  operator std::span<T>() { return {ptr_, size_}; }              // NOLINT

  void reserve(size_t n) {
    if (n <= cap_) return;
    T* p = static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(alignof(T))));
    for (size_t i = 0; i < size_; ++i) {
      new (p + i) T(std::move(ptr_[i]));
      ptr_[i].~T();
    }
    release_heap();
    ptr_ = p;
    cap_ = n;
  }
  void push_back(const T& v) { emplace_back(v); }
  void push_back(T&& v) { emplace_back(std::move(v)); }
  template <class... A>
  T& emplace_back(A&&... a) {
    if (size_ == cap_) {
      // construct first: `a` may alias an element that reserve() moves
      T tmp(std::forward<A>(a)...);
      reserve(cap_ * 2);
      return *new (ptr_ + size_++) T(std::move(tmp));
    }
    return *new (ptr_ + size_++) T(std::forward<A>(a)...);
  }
  void pop_back() { ptr_[--size_].~T(); }
  void clear() {
    for (size_t i = 0; i < size_; ++i) ptr_[i].~T();
    size_ = 0;
  }
  void resize(size_t n, const T& v = T()) {
    if (n < size_) {
      for (size_t i = n; i < size_; ++i) ptr_[i].~T();
      size_ = n;
      return;
    }
    reserve(n);
    while (size_ < n) new (ptr_ + size_++) T(v);
  }
  T* insert(T* pos, const T& v) {
    size_t idx = static_cast<size_t>(pos - ptr_);
    T copy(v);
    emplace_back(std::move(copy));
    std::rotate(ptr_ + idx, ptr_ + size_ - 1, ptr_ + size_);
    return ptr_ + idx;
  }
  T* erase(T* pos) {
    std::move(pos + 1, end(), pos);
    pop_back();
    return pos;
  }
  friend bool operator==(const SmallVector& a, const SmallVector& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  template <class It>
  void assign(It first, It last) {
    reserve(static_cast<size_t>(std::distance(first, last)));
    for (; first != last; ++first) new (ptr_ + size_++) T(*first);
  }
  void take(SmallVector&& o) {
    if (o.ptr_ != o.inline_ptr()) {
      ptr_ = o.ptr_;
      cap_ = o.cap_;
      size_ = o.size_;
      o.ptr_ = o.inline_ptr();
      o.cap_ = N;
      o.size_ = 0;
    } else {
      ptr_ = inline_ptr();
      cap_ = N;
      size_ = 0;
      for (size_t i = 0; i < o.size_; ++i) new (ptr_ + size_++) T(std::move(o.ptr_[i]));
      o.clear();
    }
  }
  void destroy() {
    clear();
    release_heap();
    ptr_ = inline_ptr();
    cap_ = N;
  }
  void release_heap() {
    if (ptr_ != inline_ptr()) ::operator delete(ptr_, std::align_val_t(alignof(T)));
  }
  T* inline_ptr() { return reinterpret_cast<T*>(storage_); }
  const T* inline_ptr() const { return reinterpret_cast<const T*>(storage_); }

  alignas(T) unsigned char storage_[N * sizeof(T)];
  T* ptr_ = inline_ptr();
  size_t size_ = 0;
  size_t cap_ = N;
};

}  // namespace kiln
