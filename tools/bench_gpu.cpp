// `kiln bench --gpu`: the GPU workloads of issue 8, each traced (the CUDA backend) and eager
// on GPU:0, checked against the CPU once and then timed with a synchronize after every call
// and back to back (N calls, one synchronize); then a few profiled calls of the traced function
// say where its GPU time goes, step by step.
#include "tools/bench_gpu.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>

#include "compiler/backend/cuda/cuda_backend.h"
#include "kiln/kiln.h"
#include "runtime/cuda/cuda.h"
#include "tools/bench_suite.h"

namespace kiln::tools {
namespace {

constexpr Device kGpu{DeviceType::GPU, 0};
constexpr float kA = 1.5f, kB = -0.25f, kC = 2.0f;  // relu(x * a + b) * c, as relu_affine_4m
constexpr double kTolerance = 1e-4;                 // relative: max |gpu - cpu| / max |cpu|

struct Options {
  bool quick = false;
  std::string json;
};

/// How a measurement is repeated: `warmup` calls, then `reps` timed batches of enough calls
/// (at most `max_iters`) to last `min_batch_ns`; the median batch gives the time per call.
struct Repeat {
  int warmup, reps;
  double min_batch_ns;
  int64_t max_iters;
};

void sync() { cuda::synchronize(kGpu.index, "kiln bench --gpu"); }

/// Median nanoseconds per call of `f` on the GPU: `synced` waits for the GPU after every call,
/// otherwise once after each batch (calls queued back to back).
double time_gpu(const std::function<void()>& f, bool synced, const Repeat& r) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < r.warmup; ++i) f();
  sync();
  auto batch = [&](int64_t n) {
    auto t0 = clock::now();
    for (int64_t i = 0; i < n; ++i) {
      f();
      if (synced) sync();
    }
    if (!synced) sync();
    return std::chrono::duration<double, std::nano>(clock::now() - t0).count() / double(n);
  };
  double estimate = batch(1);
  int64_t iters = std::clamp<int64_t>(int64_t(std::ceil(r.min_batch_ns / std::max(estimate, 1.0))), 1, r.max_iters);
  std::vector<double> per_call;
  for (int i = 0; i < r.reps; ++i) per_call.push_back(batch(iters));
  std::nth_element(per_call.begin(), per_call.begin() + r.reps / 2, per_call.end());
  return per_call[r.reps / 2];
}

/// max |got - want| / max |want| on the host, in float64 (infinity when shapes or dtypes differ).
double relative_error(const Tensor& got, const Tensor& want) {
  Tensor g = got.to(kCPU), w = want.to(kCPU);
  if (g.dtype() != w.dtype() || g.shape() != w.shape()) return std::numeric_limits<double>::infinity();
  g = cast(g, float64);
  w = cast(w, float64);
  double diff = reduce_max(abs(g - w)).item<double>();
  double scale = reduce_max(abs(w)).item<double>();
  return diff / std::max(scale, 1e-30);
}

class Bench {
 public:
  explicit Bench(Options o) : opt_(std::move(o)), repeat_(opt_.quick ? Repeat{3, 3, 0, 2} : Repeat{5, 7, 2e7, 5000}) {}

  int run();

 private:
  struct Result {
    std::string name, impl, metric;
    double value;
    std::string unit;
  };

  void add(const std::string& name, const std::string& impl, const std::string& metric, double value,
           const std::string& unit) {
    results_.push_back({name, impl, metric, value, unit});
    std::printf("  %-18s %-11s %-15s %12.3f %s\n", name.c_str(), impl.c_str(), metric.c_str(), value, unit.c_str());
    std::fflush(stdout);
  }
  // `got` (a GPU result) against `want` (the CPU's); a mismatch is reported and fails the run
  void check(const std::string& name, const std::string& impl, const Tensor& got, const Tensor& want) {
    if (got.device() != kGpu) {
      std::fprintf(stderr, "kiln bench --gpu: %s %s: the result is on %s, not on GPU:0\n", name.c_str(), impl.c_str(),
                   got.device().to_string().c_str());
      ok_ = false;
    }
    double err = relative_error(got, want);
    if (!(err <= kTolerance)) {
      std::fprintf(stderr,
                   "kiln bench --gpu: MISMATCH in %s (%s): the GPU result differs from the CPU's: "
                   "max |gpu - cpu| / max |cpu| = %.3g, tolerance %.0e\n",
                   name.c_str(), impl.c_str(), err, kTolerance);
      ok_ = false;
    }
  }
  // f(x_cpu) on the CPU against the traced `fn` and `f` run eagerly in a GPU scope, on x
  template <class F, class Traced>
  void check_both(const std::string& name, const F& f, const Traced& fn, const Tensor& x_cpu, const Tensor& x) {
    const Tensor want = f(x_cpu);
    check(name, "kiln_graph", fn(x), want);
    Tensor eager;
    {
      DeviceScope scope(kGpu);
      eager = f(x);
    }
    check(name, "kiln_eager", eager, want);  // outside the scope: the check reads values on the host
  }
  // GPU time per step of `f`'s traced function over `calls` profiled calls (steps queued one by
  // one between CUDA events: backend::cuda::set_profiling), printed after the workload's times
  void profile(const std::function<void()>& f, int calls) {
    backend::cuda::set_profiling(true);
    (void)backend::cuda::profile_report();
    try {
      for (int i = 0; i < calls; ++i) f();
    } catch (...) {
      backend::cuda::set_profiling(false);
      throw;
    }
    backend::cuda::set_profiling(false);
    std::printf("    GPU time per step of the traced call (%d profiled calls, no graph replay):\n%s", calls,
                backend::cuda::profile_report(8).c_str());
    std::fflush(stdout);
  }
  void write_json() const;

  void power();
  void relu_chain();
  void mlp(int64_t batch);

  Options opt_;
  Repeat repeat_;
  std::vector<Result> results_;
  bool ok_ = true;
};

// power(x, 100) on a 10x10 row-stochastic matrix (its powers stay between 0 and 1)
void Bench::power() {
  const std::string name = "power_10x10";
  Tensor x_cpu = random::uniform({10, 10}, 7, 0.0, 1.0, float32);
  x_cpu = x_cpu / reduce_sum(x_cpu, 1, true);
  Tensor x = x_cpu.to(kGpu);
  auto f = [](Tensor t) { return tools::power(t, 100); };
  auto fn = function(f, {.name = "power", .arg_names = {"x"}});
  check_both(name, f, fn, x_cpu, x);

  auto graph = [&] { fn(x); };
  add(name, "kiln_graph", "back_to_back", time_gpu(graph, false, repeat_) / 1e3, "us");
  add(name, "kiln_graph", "synced", time_gpu(graph, true, repeat_) / 1e3, "us");
  profile(graph, 20);
  DeviceScope scope(kGpu);
  auto eager_call = [&] { f(x); };
  add(name, "kiln_eager", "back_to_back", time_gpu(eager_call, false, repeat_) / 1e3, "us");
  add(name, "kiln_eager", "synced", time_gpu(eager_call, true, repeat_) / 1e3, "us");
}

// relu(x * a + b) * c against a device-to-device copy of the same bytes
void Bench::relu_chain() {
  const int64_t n = opt_.quick ? int64_t(1) << 16 : int64_t(1) << 26;
  const std::string name = opt_.quick ? "relu_chain_64K" : "relu_chain_64M";
  const std::string copy_name = opt_.quick ? "copy_d2d_256KB" : "copy_d2d_256MB";
  const double bytes = 2.0 * 4.0 * double(n);  // read x, write the result (or the copy)
  Tensor x_cpu = random::normal({n}, 5);
  Tensor x = x_cpu.to(kGpu);
  auto f = [](Tensor t) { return relu(t * kA + kB) * kC; };
  auto fn = function(f, {.name = "relu_chain", .arg_names = {"x"}});
  check_both(name, f, fn, x_cpu, x);
  x_cpu = Tensor();

  // the card's copy bandwidth, on the same 4n bytes
  const size_t nbytes = size_t(n) * 4;
  void* dst = cuda::device_alloc(nbytes, kGpu.index);
  const void* src = x.device_data();
  double copy_ns = time_gpu([&] { cuda::copy_device_to_device(dst, src, nbytes, kGpu.index); }, true, repeat_);
  cuda::device_free(dst, nbytes, kGpu.index);
  const double copy_gbs = bytes / copy_ns;
  add(copy_name, "kiln", "synced", copy_ns / 1e3, "us");
  add(copy_name, "kiln", "bandwidth", copy_gbs, "GB/s");

  auto graph = [&] { fn(x); };
  double graph_ns = time_gpu(graph, true, repeat_);
  add(name, "kiln_graph", "synced", graph_ns / 1e3, "us");
  add(name, "kiln_graph", "back_to_back", time_gpu(graph, false, repeat_) / 1e3, "us");
  add(name, "kiln_graph", "bandwidth", bytes / graph_ns, "GB/s");
  add(name, "kiln_graph", "copy_fraction", copy_ns / graph_ns, "fraction");
  profile(graph, 3);
  DeviceScope scope(kGpu);
  double eager_ns = time_gpu([&] { f(x); }, true, repeat_);
  add(name, "kiln_eager", "synced", eager_ns / 1e3, "us");
  add(name, "kiln_eager", "bandwidth", bytes / eager_ns, "GB/s");
  add(name, "kiln_eager", "copy_fraction", copy_ns / eager_ns, "fraction");
}

// The MLP training step of bench_suite's mlp_train_step, its variables on the GPU
void Bench::mlp(int64_t batch) {
  const std::string name = "mlp_step_b" + std::to_string(batch);
  Mlp cpu_model("bench_gpu/cpu", batch);
  std::shared_ptr<Mlp> graphed, eager;
  {
    DeviceScope scope(kGpu);
    graphed = std::make_shared<Mlp>(cpu_model, "bench_gpu/graph");
    eager = std::make_shared<Mlp>(cpu_model, "bench_gpu/eager");
  }
  auto fn = function([graphed](Tensor x, Tensor y) { return graphed->step(x, y); },
                     {.name = "mlp_train_step", .arg_names = {"x", "y"}});
  // one step on each: equal losses and equal variables after the update
  Tensor want = cpu_model.step(cpu_model.x, cpu_model.onehot);
  check(name + " loss", "kiln_graph", fn(graphed->x, graphed->onehot), want);
  Tensor eager_loss;
  {
    DeviceScope scope(kGpu);
    eager_loss = eager->step(eager->x, eager->onehot);
  }
  check(name + " loss", "kiln_eager", eager_loss, want);
  for (size_t i = 0; i < cpu_model.params.size(); ++i) {
    Tensor p = cpu_model.params[i].read_value();
    check(name + " " + cpu_model.params[i].name(), "kiln_graph", graphed->params[i].read_value(), p);
    check(name + " " + cpu_model.params[i].name(), "kiln_eager", eager->params[i].read_value(), p);
  }

  auto graph = [&] { fn(graphed->x, graphed->onehot); };
  add(name, "kiln_graph", "synced", time_gpu(graph, true, repeat_) / 1e6, "ms");
  add(name, "kiln_graph", "back_to_back", time_gpu(graph, false, repeat_) / 1e6, "ms");
  profile(graph, 10);
  DeviceScope scope(kGpu);
  auto eager_step = [&] { eager->step(eager->x, eager->onehot); };
  add(name, "kiln_eager", "synced", time_gpu(eager_step, true, repeat_) / 1e6, "ms");
  add(name, "kiln_eager", "back_to_back", time_gpu(eager_step, false, repeat_) / 1e6, "ms");
}

void Bench::write_json() const {
  std::FILE* f = std::fopen(opt_.json.c_str(), "w");
  if (!f) throw std::runtime_error("cannot write " + opt_.json);
  std::fprintf(f, "{\"tool\": \"kiln\", \"device\": \"GPU:0\", \"available\": true, \"quick\": %s, \"tf32\": false, ",
               opt_.quick ? "true" : "false");
  std::fprintf(f, "\"verified\": %s, \"results\": [", ok_ ? "true" : "false");
  for (size_t i = 0; i < results_.size(); ++i) {
    const Result& r = results_[i];
    std::fprintf(f, "%s\n  {\"name\": \"%s\", \"impl\": \"%s\", \"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\"}",
                 i ? "," : "", r.name.c_str(), r.impl.c_str(), r.metric.c_str(), r.value, r.unit.c_str());
  }
  std::fprintf(f, "\n]}\n");
  if (std::fclose(f) != 0) throw std::runtime_error("cannot write " + opt_.json);
}

int Bench::run() {
  std::printf(
      "kiln bench --gpu%s: GPU:0, float32 (no TF32), traced functions (kiln_graph) and eager ops (kiln_eager);\n"
      "median time per call of %d batches, after %d warm-up calls (synced: a synchronize after each call,\n"
      "back_to_back: calls queued, one synchronize per batch)\n\n",
      opt_.quick ? " --quick" : "", repeat_.reps, repeat_.warmup);
  std::printf("  %-18s %-11s %-15s %12s\n", "workload", "impl", "metric", "value");
  power();
  relu_chain();
  mlp(64);
  if (!opt_.quick) mlp(4096);
  if (!opt_.json.empty()) write_json();
  if (!ok_) {
    std::fprintf(stderr, "kiln bench --gpu: some GPU results differ from the CPU's (see above)\n");
    return 1;
  }
  std::printf("\nevery GPU result matched the CPU's (relative tolerance %.0e)\n", kTolerance);
  return 0;
}

}  // namespace

int bench_gpu(const std::vector<std::string>& args) {
  Options opt;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--quick") {
      opt.quick = true;
    } else if (args[i] == "--json" && i + 1 < args.size()) {
      opt.json = args[++i];
    } else {
      std::fprintf(stderr, "usage: kiln bench --gpu [--quick] [--json FILE]\n");
      return 2;
    }
  }
  if (gpu_count() == 0) {
    std::string why = cuda::unavailable_reason();
    std::printf("kiln bench --gpu: no GPU, nothing to time: %s\n", why.c_str());
    if (!opt.json.empty()) {
      std::FILE* f = std::fopen(opt.json.c_str(), "w");
      if (f) {
        std::string quoted;
        for (char c : why) {
          if (c == '"' || c == '\\') quoted += '\\';
          quoted += (c == '\n' || c == '\t') ? ' ' : c;
        }
        std::fprintf(f, "{\"tool\": \"kiln\", \"available\": false, \"reason\": \"%s\", \"results\": []}\n",
                     quoted.c_str());
        std::fclose(f);
      }
    }
    return 0;
  }
  return Bench(opt).run();
}

}  // namespace kiln::tools
