// The dataset sources and transformations; each iterator pulls from its input's iterator.
#include "nn/data.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <limits>
#include <mutex>
#include <random>
#include <thread>

#include "ops/ops.h"

namespace kiln::data {
namespace {

using Source = Dataset::Source;

struct SlicesSource final : Source {
  std::vector<Tensor> tensors;
  int64_t n = 0;
  struct It final : Iterator {
    const SlicesSource* s;
    int64_t i = 0;
    std::optional<Element> next() override {
      if (i >= s->n) return std::nullopt;
      Element e;
      for (auto& t : s->tensors) e.push_back(t.index({i}));
      ++i;
      return e;
    }
  };
  std::unique_ptr<Iterator> make_iterator() const override {
    auto it = std::make_unique<It>();
    it->s = this;
    return it;
  }
  int64_t cardinality() const override { return n; }
};

struct TensorsSource final : Source {
  Element element;
  struct It final : Iterator {
    const TensorsSource* s;
    bool done = false;
    std::optional<Element> next() override {
      if (done) return std::nullopt;
      done = true;
      return s->element;
    }
  };
  std::unique_ptr<Iterator> make_iterator() const override {
    auto it = std::make_unique<It>();
    it->s = this;
    return it;
  }
  int64_t cardinality() const override { return 1; }
};

// A transformation keeps its input alive, so iterators may outlive the Dataset objects.
struct Unary : Source {
  std::shared_ptr<const Source> input;
};

struct BatchSource final : Unary {
  int64_t size = 1;
  bool drop = false;
  struct It final : Iterator {
    std::unique_ptr<Iterator> in;
    int64_t size;
    bool drop;
    std::optional<Element> next() override {
      std::vector<Element> items;
      while (int64_t(items.size()) < size) {
        auto e = in->next();
        if (!e) break;
        if (!items.empty() && e->size() != items[0].size())
          fail<InvalidArgument>("Dataset.batch", "elements have different numbers of components: ", items[0].size(),
                                " and ", e->size());
        items.push_back(std::move(*e));
      }
      if (items.empty() || (drop && int64_t(items.size()) < size)) return std::nullopt;
      Element out;
      for (size_t c = 0; c < items[0].size(); ++c) {
        std::vector<Tensor> parts;
        for (auto& it : items) {
          if (it[c].shape() != items[0][c].shape() || it[c].dtype() != items[0][c].dtype())
            fail<InvalidArgument>("Dataset.batch", "cannot batch component ", c, ": elements have shapes ",
                                  items[0][c].shape().to_string(), " and ", it[c].shape().to_string(), " (dtypes ",
                                  dtype_name(items[0][c].dtype()), " and ", dtype_name(it[c].dtype()), ")");
          parts.push_back(it[c]);
        }
        out.push_back(stack(parts, 0));
      }
      return out;
    }
  };
  std::unique_ptr<Iterator> make_iterator() const override {
    auto it = std::make_unique<It>();
    it->in = input->make_iterator();
    it->size = size;
    it->drop = drop;
    return it;
  }
  int64_t cardinality() const override {
    int64_t n = input->cardinality();
    if (n < 0) return n;
    // not (n + size - 1) / size: that overflows for a batch_size near INT64_MAX
    return drop ? n / size : n / size + (n % size != 0);
  }
};

struct ShuffleSource final : Unary {
  int64_t buffer = 1;
  std::optional<uint64_t> seed;
  bool reshuffle = true;
  mutable std::atomic<uint64_t> epoch{0};
  struct It final : Iterator {
    std::unique_ptr<Iterator> in;
    std::vector<Element> buf;
    std::mt19937_64 rng;
    int64_t cap;
    bool exhausted = false;
    std::optional<Element> next() override {
      while (!exhausted && int64_t(buf.size()) < cap) {
        auto e = in->next();
        if (!e) {
          exhausted = true;
          break;
        }
        buf.push_back(std::move(*e));
      }
      if (buf.empty()) return std::nullopt;
      size_t k = std::uniform_int_distribution<size_t>(0, buf.size() - 1)(rng);
      Element out = std::move(buf[k]);
      buf[k] = std::move(buf.back());
      buf.pop_back();
      return out;
    }
  };
  std::unique_ptr<Iterator> make_iterator() const override {
    auto it = std::make_unique<It>();
    it->in = input->make_iterator();
    it->cap = buffer;
    uint64_t e = reshuffle ? epoch.fetch_add(1) : 0;
    uint64_t s = seed ? *seed : std::random_device{}();
    std::seed_seq seq{uint32_t(s), uint32_t(s >> 32), uint32_t(e), uint32_t(e >> 32)};
    it->rng.seed(seq);
    return it;
  }
  int64_t cardinality() const override { return input->cardinality(); }
};

struct RepeatSource final : Unary {
  int64_t count = -1;
  struct It final : Iterator {
    std::shared_ptr<const Source> src;
    std::unique_ptr<Iterator> in;
    int64_t left;  // passes left after this one (-1: forever)
    bool empty_pass = true;
    std::optional<Element> next() override {
      while (in) {
        if (auto e = in->next()) {
          empty_pass = false;
          return e;
        }
        // an empty input would loop forever: stop instead
        if (empty_pass || left == 0) {
          in.reset();
          break;
        }
        if (left > 0) --left;
        in = src->make_iterator();
        empty_pass = true;
      }
      return std::nullopt;
    }
  };
  std::unique_ptr<Iterator> make_iterator() const override {
    auto it = std::make_unique<It>();
    it->src = input;
    if (count != 0) it->in = input->make_iterator();
    it->left = count < 0 ? -1 : count - 1;
    return it;
  }
  int64_t cardinality() const override {
    int64_t n = input->cardinality();
    if (count < 0) return n == 0 ? 0 : -2;
    if (n < 0) return n;
    // more elements than int64 counts (repeat(INT64_MAX) of a non-empty dataset) never end
    if (n > 0 && count > std::numeric_limits<int64_t>::max() / n) return -2;
    return n * count;
  }
};

struct TakeSource final : Unary {
  int64_t count = -1;
  int64_t skip = 0;
  struct It final : Iterator {
    std::unique_ptr<Iterator> in;
    int64_t left, skip;
    std::optional<Element> next() override {
      for (; skip > 0; --skip)
        if (!in->next()) return std::nullopt;
      if (left == 0) return std::nullopt;
      if (left > 0) --left;
      return in->next();
    }
  };
  std::unique_ptr<Iterator> make_iterator() const override {
    auto it = std::make_unique<It>();
    it->in = input->make_iterator();
    it->left = count;
    it->skip = skip;
    return it;
  }
  int64_t cardinality() const override {
    int64_t n = input->cardinality();
    if (n == -1) return -1;
    if (n == -2) return count < 0 ? -2 : count;
    n = std::max<int64_t>(0, n - skip);
    return count < 0 ? n : std::min(n, count);
  }
};

struct MapSource final : Unary {
  std::function<Element(const Element&)> fn;
  struct It final : Iterator {
    std::unique_ptr<Iterator> in;
    const MapSource* s;
    std::optional<Element> next() override {
      auto e = in->next();
      if (!e) return std::nullopt;
      return s->fn(*e);
    }
  };
  std::unique_ptr<Iterator> make_iterator() const override {
    auto it = std::make_unique<It>();
    it->in = input->make_iterator();
    it->s = this;
    return it;
  }
  int64_t cardinality() const override { return input->cardinality(); }
};

struct PrefetchSource final : Unary {
  int64_t buffer = 1;
  // The producer thread fills a bounded queue; the consumer takes from it. Destroying the
  // iterator stops the producer and joins it.
  struct It final : Iterator {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::optional<Element>> queue;  // nullopt marks the end
    std::exception_ptr error;
    bool stop = false;
    size_t cap = 1;
    std::thread worker;
    ~It() override {
      {
        std::lock_guard lock(mu);
        stop = true;
      }
      cv.notify_all();
      if (worker.joinable()) worker.join();
    }
    void run(std::unique_ptr<Iterator> in) {
      for (;;) {
        std::optional<Element> e;
        std::exception_ptr err;
        try {
          e = in->next();
        } catch (...) {
          err = std::current_exception();
        }
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop || queue.size() < cap; });
        if (stop) return;
        if (err) {
          error = err;
          queue.emplace_back(std::nullopt);
          cv.notify_all();
          return;
        }
        bool end = !e.has_value();
        queue.push_back(std::move(e));
        cv.notify_all();
        if (end) return;
      }
    }
    std::optional<Element> next() override {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return !queue.empty(); });
      std::optional<Element> e = std::move(queue.front());
      if (!e) {
        if (error) std::rethrow_exception(error);
        return std::nullopt;  // the end marker stays for later calls
      }
      queue.pop_front();
      cv.notify_all();
      return e;
    }
  };
  std::unique_ptr<Iterator> make_iterator() const override {
    auto it = std::make_unique<It>();
    it->cap = size_t(buffer);
    It* raw = it.get();
    auto in = input->make_iterator();
    raw->worker = std::thread([raw, in = std::move(in)]() mutable { raw->run(std::move(in)); });
    return it;
  }
  int64_t cardinality() const override { return input->cardinality(); }
};

template <class S>
std::shared_ptr<S> unary(const std::shared_ptr<const Source>& input) {
  auto s = std::make_shared<S>();
  s->input = input;
  return s;
}

}  // namespace

std::unique_ptr<Iterator> Dataset::begin_iteration() const {
  struct Keep final : Iterator {
    std::shared_ptr<const Source> source;
    std::unique_ptr<Iterator> it;
    std::optional<Element> next() override { return it->next(); }
  };
  auto k = std::make_unique<Keep>();
  k->source = source_;
  k->it = source_->make_iterator();
  return k;
}

Dataset Dataset::from_tensor_slices(const std::vector<Tensor>& tensors) {
  if (tensors.empty()) fail<InvalidArgument>("Dataset.from_tensor_slices", "needs at least one tensor");
  auto s = std::make_shared<SlicesSource>();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (!t.defined() || t.is_symbolic())
      fail<InvalidArgument>("Dataset.from_tensor_slices", "tensor ", i, " must be a defined, concrete tensor");
    if (t.ndim() == 0)
      fail<InvalidArgument>("Dataset.from_tensor_slices", "tensor ", i, " is a scalar (nothing to slice)");
    if (i > 0 && t.shape().dim(0) != tensors[0].shape().dim(0))
      fail<InvalidArgument>("Dataset.from_tensor_slices", "tensors must have the same first dim: shapes ",
                            tensors[0].shape().to_string(), " and ", t.shape().to_string());
  }
  s->tensors = tensors;
  s->n = tensors[0].shape().dim(0);
  return Dataset(s);
}

Dataset Dataset::from_tensors(const std::vector<Tensor>& tensors) {
  auto s = std::make_shared<TensorsSource>();
  s->element = tensors;
  return Dataset(s);
}

Dataset Dataset::batch(int64_t batch_size, bool drop_remainder) const {
  if (batch_size <= 0) fail<InvalidArgument>("Dataset.batch", "batch_size must be positive, got ", batch_size);
  auto s = unary<BatchSource>(source_);
  s->size = batch_size;
  s->drop = drop_remainder;
  return Dataset(s);
}

Dataset Dataset::shuffle(int64_t buffer_size, std::optional<uint64_t> seed, bool reshuffle_each_iteration) const {
  if (buffer_size <= 0) fail<InvalidArgument>("Dataset.shuffle", "buffer_size must be positive, got ", buffer_size);
  auto s = unary<ShuffleSource>(source_);
  s->buffer = buffer_size;
  s->seed = seed;
  s->reshuffle = reshuffle_each_iteration;
  return Dataset(s);
}

Dataset Dataset::repeat(int64_t count) const {
  if (count < -1) fail<InvalidArgument>("Dataset.repeat", "count must be -1 (forever) or >= 0, got ", count);
  auto s = unary<RepeatSource>(source_);
  s->count = count;
  return Dataset(s);
}

Dataset Dataset::take(int64_t count) const {
  if (count < -1) fail<InvalidArgument>("Dataset.take", "count must be -1 (all) or >= 0, got ", count);
  auto s = unary<TakeSource>(source_);
  s->count = count;
  return Dataset(s);
}

Dataset Dataset::skip(int64_t count) const {
  if (count < 0) fail<InvalidArgument>("Dataset.skip", "count must be >= 0, got ", count);
  auto s = unary<TakeSource>(source_);
  s->skip = count;
  return Dataset(s);
}

Dataset Dataset::map(std::function<Element(const Element&)> fn) const {
  if (!fn) fail<InvalidArgument>("Dataset.map", "the function is empty");
  auto s = unary<MapSource>(source_);
  s->fn = std::move(fn);
  return Dataset(s);
}

Dataset Dataset::prefetch(int64_t buffer_size) const {
  if (buffer_size <= 0) fail<InvalidArgument>("Dataset.prefetch", "buffer_size must be positive, got ", buffer_size);
  auto s = unary<PrefetchSource>(source_);
  s->buffer = buffer_size;
  return Dataset(s);
}

}  // namespace kiln::data
