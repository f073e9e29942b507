// Concurrency (Catch2 tag [threads], also run under ThreadSanitizer by scripts/tsan.sh): eager ops
// from many threads, assign/assign_add/assign_sub on shared variables, fit while another thread
// predicts with the same model, and concurrent checkpoint writes to one path and to several.
#include <catch2/catch.hpp>

#include "tests/support/temp_dir.h"

#include <kiln/kiln.h>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace kiln;

namespace {

constexpr int kThreads = 8;

// Runs `body(t)` on threads t = 0..n-1 and joins them. An exception in a thread (which would
// otherwise end the process) is recorded and reported as a test failure on the calling thread.
void run_threads(int n, const std::function<void(int)>& body) {
  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<std::thread> ts;
  for (int t = 0; t < n; ++t)
    ts.emplace_back([&, t] {
      try {
        body(t);
      } catch (const std::exception& e) {
        std::lock_guard lock(mu);
        errors.push_back("thread " + std::to_string(t) + ": " + e.what());
      }
    });
  for (auto& th : ts) th.join();
  for (const auto& e : errors) FAIL_CHECK(e);
}

bool all_finite(const Tensor& t) {
  for (float v : t.to_vector<float>())
    if (!std::isfinite(v)) return false;
  return true;
}

bool all_equal(const std::vector<float>& v) {
  for (float f : v)
    if (f != v.front()) return false;
  return true;
}

std::vector<float> flat(const Variable& v) { return v.to_vector<float>(); }

// A small model with the same layer names each time (dense, dense_1), built.
nn::Sequential make_model(uint64_t seed) {
  nn::clear_session();
  random::set_seed(seed);
  auto m = nn::Sequential({nn::Dense(8, "relu"), nn::Dense(2)});
  m(ones({1, 4}));
  return m;
}

}  // namespace

TEST_CASE("eager ops from 8 threads give the single-threaded results", "[threads][eager]") {
  Tensor a = random::normal({48, 64}, 1), b = random::normal({64, 32}, 2);
  Tensor ints = cast(range(int64_t{0}, int64_t{4096}, 1, int64), int32);
  Tensor idx = constant({5, 0, 4095, 17, 17});
  auto compute = [&] {
    return std::vector<Tensor>{matmul(a, b),
                               softmax(a),
                               reduce_sum(exp(a * 0.1f), {1}),
                               reduce_sum(ints * ints),
                               gather(ints, idx),
                               concat({a, a * 2.0f}, 0),
                               cast(greater(a, scalar(0.0f)), int32)};
  };
  const std::vector<Tensor> want = compute();
  std::atomic<int> wrong{0};
  run_threads(kThreads, [&](int) {
    for (int i = 0; i < 20; ++i) {
      std::vector<Tensor> got = compute();
      for (size_t k = 0; k < got.size(); ++k) {
        if (!(got[k].shape() == want[k].shape()) || got[k].dtype() != want[k].dtype()) {
          ++wrong;
          continue;
        }
        if (want[k].dtype() == float32) {
          auto g = got[k].to_vector<float>(), w = want[k].to_vector<float>();
          for (size_t e = 0; e < g.size(); ++e)
            if (std::abs(g[e] - w[e]) > 1e-5f * (1.0f + std::abs(w[e]))) ++wrong;
        } else if (got[k].to_vector<int32_t>() != want[k].to_vector<int32_t>()) {
          ++wrong;
        }
      }
    }
  });
  CHECK(wrong == 0);
}

TEST_CASE("assign, assign_add and assign_sub on shared variables from 8 threads lose no update",
          "[threads][variables]") {
  constexpr int kIters = 300;
  Variable counter(scalar<int64_t>(0), "counter");
  Variable down(constant({1000.0f, 2000.0f}), "down");
  Variable vec(zeros({3}), "vec");
  // assigned whole values by every thread: a reader sees one of them, never a mix of two
  Variable whole(zeros({256}), "whole");
  std::atomic<int> torn{0};
  run_threads(kThreads, [&](int t) {
    for (int i = 0; i < kIters; ++i) {
      counter.assign_add(scalar<int64_t>(1));
      down.assign_sub(constant({1.0f, 2.0f}));
      vec.assign_add({1.0f, 2.0f, 3.0f});
      whole.assign(fill({256}, scalar(float(t * kIters + i))));
      if (!all_equal(flat(whole))) ++torn;
    }
  });
  constexpr float n = kThreads * kIters;
  CHECK(counter.item<int64_t>() == kThreads * kIters);
  CHECK(flat(down) == std::vector<float>{1000.0f - n, 2000.0f - 2 * n});
  CHECK(flat(vec) == std::vector<float>{n, 2 * n, 3 * n});
  CHECK(torn == 0);
  CHECK(all_equal(flat(whole)));
}

TEST_CASE("assign_add and assign_sub interleaved on one variable give the exact total", "[threads][variables]") {
  // even threads add 3, odd threads subtract 1, each reading after every update: the total is
  // exact, and every value read lies between the extremes the updates allow
  constexpr int kIters = 200;
  Variable v(scalar<int64_t>(0), "v");
  std::atomic<int> out_of_range{0};
  run_threads(kThreads, [&](int t) {
    for (int i = 0; i < kIters; ++i) {
      if (t % 2 == 0)
        v.assign_add(scalar<int64_t>(3));
      else
        v.assign_sub(scalar<int64_t>(1));
      int64_t now = v.item<int64_t>();
      if (now < -kThreads / 2 * kIters || now > 3 * kThreads / 2 * kIters) ++out_of_range;
    }
  });
  CHECK(v.item<int64_t>() == kThreads / 2 * kIters * 3 - kThreads / 2 * kIters);
  CHECK(out_of_range == 0);
}

TEST_CASE("fit in one thread while another predicts with the same model", "[threads][training]") {
  for (bool eager : {false, true}) {
    DYNAMIC_SECTION((eager ? "eager" : "traced")) {
      nn::clear_session();
      random::set_seed(11);
      auto model = nn::Sequential({nn::Dense(16, "relu"), nn::Dense(1)});
      model(ones({1, 4}));  // built before the threads start (building is not thread-safe)
      model->compile({.optimizer = std::make_shared<nn::optim::Adam>(0.01), .loss = "mse", .run_eagerly = eager});
      Tensor x = random::normal({256, 4}, 3);
      Tensor y = matmul(x, constant({{1.0f}, {-2.0f}, {0.5f}, {3.0f}})) + 1.0f;
      Tensor probe = random::normal({64, 4}, 4);

      std::atomic<bool> done{false};
      std::atomic<int> predictions{0}, bad{0};
      nn::History h;
      run_threads(2, [&](int t) {
        if (t == 0) {
          try {
            h = model->fit(x, y, {.epochs = 12, .batch_size = 32, .verbose = 0, .seed = 1});
          } catch (...) {
            done = true;
            throw;
          }
          done = true;
        } else {
          // at least one prediction, however fast fit is
          do {
            Tensor p = model->predict(probe, {.batch_size = 32});
            if (!(p.shape() == Shape{64, 1}) || !all_finite(p)) ++bad;
            ++predictions;
          } while (!done);
        }
      });
      CHECK(bad == 0);
      CHECK(predictions > 0);
      const auto& loss = h.history.at("loss");
      REQUIRE(loss.size() == 12);
      CHECK(loss.back() < 0.5 * loss.front());
      // after both are done, predict (compiled) gives what a direct (eager) call gives
      Tensor p = model->predict(probe);
      Tensor direct = model(probe);
      CHECK(reduce_max(abs(p - direct) / (abs(direct) + 1.0f)).item<float>() <= 1e-5f);
    }
  }
}

TEST_CASE("concurrent checkpoint writes of one model: one path, and a path per thread", "[threads][checkpoint]") {
  testing::TempDir dir("kiln_threads");
  auto model = make_model(5);
  const std::vector<float> kernel = flat(model->find_variable("dense/kernel"));
  constexpr int kWriters = 4, kWrites = 5;
  // Each writer's checkpoint holds the model and a large variable filled with its own number:
  // a file that mixed two writers' bytes would hold a mixed variable.
  std::vector<Variable> marks;
  for (int t = 0; t < kWriters; ++t) marks.emplace_back(fill({1 << 16}, scalar(float(t))), "mark");
  auto restore_into_fresh = [&](const std::string& path, std::vector<float>& mark) {
    auto fresh = make_model(99);
    Variable m(zeros({1 << 16}), "mark");
    nn::Checkpoint({{"model", fresh}, {"mark", m}}).read(path).assert_consumed();
    mark = flat(m);
    return flat(fresh->find_variable("dense/kernel"));
  };

  SECTION("every thread writes the same path; a reader sees whole files") {
    const std::string path = dir.file("shared.ckpt");
    std::atomic<int> writing{kWriters}, reads{0}, mixed{0};
    run_threads(kWriters + 1, [&](int t) {
      if (t < kWriters) {
        struct Done {
          std::atomic<int>& n;
          ~Done() { --n; }  // also when a write throws, so that the reader stops
        } done{writing};
        nn::Checkpoint ckpt({{"model", model}, {"mark", marks[size_t(t)]}});
        for (int i = 0; i < kWrites; ++i) ckpt.write(path);
        return;
      }
      // the reader: every file it finds is complete and from one writer
      while (writing > 0) {
        if (!std::filesystem::exists(path)) {
          std::this_thread::yield();
          continue;
        }
        std::vector<float> mark = nn::load_variable(path, "mark/.ATTRIBUTES/VARIABLE_VALUE").to_vector<float>();
        if (mark.size() != size_t(1) << 16 || !all_equal(mark)) ++mixed;
        if (nn::list_variables(path).size() != 5) ++mixed;
        ++reads;
      }
    });
    CHECK(mixed == 0);
    std::vector<float> mark;
    CHECK(restore_into_fresh(path, mark) == kernel);
    REQUIRE(mark.size() == size_t(1) << 16);
    CHECK(all_equal(mark));
    CHECK(mark[0] >= 0.0f);
    CHECK(mark[0] < float(kWriters));
  }

  SECTION("each thread writes its own path") {
    run_threads(kWriters, [&](int t) {
      nn::Checkpoint ckpt({{"model", model}, {"mark", marks[size_t(t)]}});
      for (int i = 0; i < kWrites; ++i) ckpt.write(dir.file("ckpt_" + std::to_string(t)));
    });
    for (int t = 0; t < kWriters; ++t) {
      std::vector<float> mark;
      CHECK(restore_into_fresh(dir.file("ckpt_" + std::to_string(t)), mark) == kernel);
      CHECK(mark.size() == size_t(1) << 16);
      CHECK(all_equal(mark));
      CHECK(mark[0] == float(t));
    }
  }

  // atomic writes leave no temporary files behind
  for (const auto& e : std::filesystem::directory_iterator(dir.path))
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
}
