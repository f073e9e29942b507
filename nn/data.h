// data::Dataset: an input pipeline of tensor tuples (TensorFlow's tf.data): slices of tensors,
// batching, seeded shuffling, repetition, truncation, mapping and background prefetching.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "runtime/tensor.h"

namespace kiln::data {

/// One element of a dataset: a tuple of tensors (x, or x and y, ...).
using Element = std::vector<Tensor>;

/// Produces a dataset's elements in order; `next` returns nothing at the end.
class Iterator {
 public:
  virtual ~Iterator() = default;
  virtual std::optional<Element> next() = 0;
};

/// An immutable description of a pipeline; each `begin_iteration` (or range-for) starts a fresh
/// pass. Transformations return new datasets and leave this one unchanged. Copies are cheap.
///
///   auto ds = data::Dataset::from_tensor_slices({x, y}).shuffle(256, 7).batch(32);
///   for (const data::Element& e : ds) { ... e[0], e[1] ... }
class Dataset {
 public:
  struct Source {
    virtual ~Source() = default;
    virtual std::unique_ptr<Iterator> make_iterator() const = 0;
    /// The number of elements when known without iterating (-1: unknown, -2: infinite).
    virtual int64_t cardinality() const = 0;
  };
  explicit Dataset(std::shared_ptr<const Source> source) : source_(std::move(source)) {}

  /// The slices of `tensors` along their first axis: element i is (t[i] for each t). Throws
  /// InvalidArgument if the list is empty, a tensor is a scalar, or first dims differ.
  static Dataset from_tensor_slices(const std::vector<Tensor>& tensors);
  /// Tensors given as one element.
  static Dataset from_tensors(const std::vector<Tensor>& tensors);

  /// Stacks `batch_size` consecutive elements into one (the last batch may be smaller unless
  /// `drop_remainder`). Elements must share shapes and dtypes (InvalidArgument otherwise, when
  /// reached). batch_size must be positive.
  Dataset batch(int64_t batch_size, bool drop_remainder = false) const;
  /// Shuffles with a buffer of `buffer_size` elements, as tf.data does (a buffer at least the
  /// dataset's size gives a uniform shuffle). With a seed the order is reproducible; each new
  /// iteration draws a new order unless reshuffle_each_iteration is false.
  Dataset shuffle(int64_t buffer_size, std::optional<uint64_t> seed = std::nullopt,
                  bool reshuffle_each_iteration = true) const;
  /// Repeats the dataset `count` times (-1: forever). A count whose total exceeds int64 has
  /// cardinality -2 (infinite).
  Dataset repeat(int64_t count = -1) const;
  /// At most the first `count` elements (-1: all).
  Dataset take(int64_t count) const;
  /// Skips the first `count` elements.
  Dataset skip(int64_t count) const;
  /// Applies `fn` to each element (eagerly, as it is produced).
  Dataset map(std::function<Element(const Element&)> fn) const;
  /// Produces up to `buffer_size` elements ahead on a background thread. Exceptions raised
  /// while producing are rethrown by `next` in order.
  Dataset prefetch(int64_t buffer_size = 1) const;

  /// The number of elements (-1 unknown, -2 infinite).
  int64_t cardinality() const { return source_->cardinality(); }
  /// A fresh pass over the elements (the iterator keeps the pipeline alive).
  std::unique_ptr<Iterator> begin_iteration() const;

  /// Range-for support.
  class RangeIterator {
   public:
    RangeIterator() = default;
    explicit RangeIterator(std::unique_ptr<Iterator> it) : it_(std::move(it)) { advance(); }
    const Element& operator*() const { return *cur_; }
    RangeIterator& operator++() {
      advance();
      return *this;
    }
    bool operator!=(const RangeIterator& o) const { return cur_.has_value() != o.cur_.has_value(); }

   private:
    void advance() { cur_ = it_->next(); }
    std::unique_ptr<Iterator> it_;
    std::optional<Element> cur_;
  };
  RangeIterator begin() const { return RangeIterator(begin_iteration()); }
  RangeIterator end() const { return RangeIterator(); }

 private:
  std::shared_ptr<const Source> source_;
};

}  // namespace kiln::data
