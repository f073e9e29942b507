// fit throughput on the handwritten digits (1437 training examples of 64 pixels): the MLP of
// examples/digits (64-64-10, ReLU, logits, sparse softmax cross-entropy, Adam 0.005, batch 32,
// shuffled every epoch, loss and accuracy tracked) trained with `fit` compiled, with `fit`
// run_eagerly, and with a hand-written LibTorch loop doing the same work, from the same initial
// weights, in one run. Prints samples per second and LibTorch / Kiln time ratios (above 1: Kiln
// is faster).
//   usage: bench_fit [--threads N] [--epochs E] [--rounds R] [--data FILE] [--openblas-default]
// (default: 1 and 2 threads, 10 epochs per timed fit, 5 rounds, the median is reported)
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/torch_env.h"
#include "bench/torch_mlp.h"
#include "examples/digits_data.h"
#include "kiln/kiln.h"

namespace {

using namespace kiln;
using Clock = std::chrono::steady_clock;

constexpr int64_t kBatch = 32;
constexpr double kLearningRate = 0.005;
constexpr double kEpsilon = 1e-7;  // Keras' Adam epsilon, given to LibTorch's too

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

nn::Sequential make_model(bool eager) {
  nn::clear_session();
  random::set_seed(42);
  nn::Sequential model({nn::InputLayer(Shape{64}), nn::Dense(64, "relu"), nn::Dense(10)});
  model->compile({.optimizer = std::make_shared<nn::optim::Adam>(kLearningRate),
                  .loss = nn::losses::SparseCategoricalCrossentropy(/*from_logits=*/true),
                  .metrics = {"accuracy"},
                  .run_eagerly = eager});
  return model;
}

// The same training in LibTorch: per epoch a random permutation, then per batch an index_select,
// forward, cross-entropy, autograd, an Adam step, and running loss and accuracy sums kept as
// tensors (read once per epoch, as fit reads its metrics).
class TorchFit {
 public:
  TorchFit(const Tensor& x, const Tensor& y, const std::vector<Tensor>& weights)
      : x_(bench::to_torch(x)), y_(bench::to_torch(y).to(torch::kLong)) {
    // Kiln's weights in order: kernel [in, out], bias, kernel, bias
    for (const Tensor& w : weights) params_.push_back(bench::to_torch(w).requires_grad_(true));
    opt_ = std::make_unique<torch::optim::Adam>(params_, torch::optim::AdamOptions(kLearningRate).eps(kEpsilon));
  }
  // One epoch; returns {mean loss, accuracy}.
  std::pair<double, double> epoch(bool shuffle) {
    const int64_t n = x_.size(0);
    torch::Tensor order = shuffle ? torch::randperm(n, torch::kLong) : torch::arange(n, torch::kLong);
    torch::Tensor loss_sum = torch::zeros({}), correct = torch::zeros({}, torch::kLong);
    for (int64_t start = 0; start < n; start += kBatch) {
      torch::Tensor idx = order.slice(0, start, std::min(n, start + kBatch));
      torch::Tensor xb = x_.index_select(0, idx), yb = y_.index_select(0, idx);
      torch::Tensor h = torch::relu(torch::matmul(xb, params_[0]) + params_[1]);
      torch::Tensor logits = torch::matmul(h, params_[2]) + params_[3];
      torch::Tensor loss = torch::nn::functional::cross_entropy(logits, yb);
      opt_->zero_grad();
      loss.backward();
      opt_->step();
      torch::NoGradGuard no_grad;
      loss_sum += loss.detach() * double(idx.size(0));
      correct += logits.argmax(1).eq(yb).sum();
    }
    return {loss_sum.item<double>() / double(n), correct.item<double>() / double(n)};
  }

 private:
  torch::Tensor x_, y_;
  std::vector<torch::Tensor> params_;
  std::unique_ptr<torch::optim::Adam> opt_;
};

struct Result {
  double kiln_compiled, kiln_eager, torch;  // samples per second (medians)
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> thread_counts = {1, 2};
  int64_t epochs = 10;
  int rounds = 5;
  bool openblas_default = false;
  std::string data = KILN_DIGITS_PATH;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc && std::atoi(argv[i + 1]) > 0) {
      thread_counts = {std::atoi(argv[++i])};
    } else if (!std::strcmp(argv[i], "--epochs") && i + 1 < argc && std::atoi(argv[i + 1]) > 0) {
      epochs = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc && std::atoi(argv[i + 1]) > 0) {
      rounds = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--data") && i + 1 < argc) {
      data = argv[++i];
    } else if (!std::strcmp(argv[i], "--openblas-default")) {
      openblas_default = true;
    } else {
      std::fprintf(stderr,
                   "usage: bench_fit [--threads N] [--epochs E] [--rounds R] [--data FILE] [--openblas-default]\n");
      return 2;
    }
  }
  if (!openblas_default) bench::fix_openblas_core(argv);
  std::printf("LibTorch BLAS: %s\n", bench::blas_description().c_str());
  double load = 0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = 0;
    std::fclose(f);
  }
  std::printf("load average %.2f on %u cores\n", load, std::thread::hardware_concurrency());

  auto [x_train, y_train, x_test, y_test] = digits::split(digits::parse(digits::read_gz(data)));
  const int64_t n = x_train.shape()[0];
  const int64_t steps = (n + kBatch - 1) / kBatch;
  std::printf("digits: %lld training examples, batch %lld: %lld steps per epoch (the last of %lld)\n", (long long)n,
              (long long)kBatch, (long long)steps, (long long)(n - (steps - 1) * kBatch));

  // One unshuffled epoch from the same weights: the three must agree (Adam's epsilon sits in a
  // slightly different place in Keras' and LibTorch's formulas, hence not bit for bit).
  bench::set_threads(thread_counts.front());
  const std::vector<Tensor> initial = make_model(false)->get_weights();
  nn::Logs check[2];
  auto t_first = Clock::now();
  for (bool eager : {false, true}) {
    nn::Sequential m = make_model(eager);
    nn::History h = m->fit(x_train, y_train, {.epochs = 1, .batch_size = kBatch, .verbose = 0, .shuffle = false});
    check[eager] = {{"loss", h.history.at("loss")[0]}, {"accuracy", h.history.at("accuracy")[0]}};
    if (!eager) {
      const double first = seconds_since(t_first);
      std::printf("first compiled epoch (trace, passes and code generation for batches of 32 and %lld): %.0f ms\n",
                  (long long)(n - (steps - 1) * kBatch), first * 1e3);
      std::printf("train_function traces: %zu\n", m->train_function_tracing_count());
    }
  }
  {
    TorchFit t(x_train, y_train, initial);
    auto [loss, acc] = t.epoch(false);
    std::printf("epoch 1 without shuffling: loss compiled %.6f, eager %.6f, LibTorch %.6f; accuracy %.4f, %.4f, %.4f\n",
                check[0].at("loss"), check[1].at("loss"), loss, check[0].at("accuracy"), check[1].at("accuracy"), acc);
  }

  std::printf("\nfit, %lld epochs of %lld examples per timing, median of %d rounds (samples/s):\n", (long long)epochs,
              (long long)n, rounds);
  std::printf("%8s %16s %16s %16s %18s %18s\n", "threads", "fit compiled", "fit run_eagerly", "LibTorch loop",
              "LibTorch/compiled", "LibTorch/eager");
  const double samples = double(epochs) * double(n);
  for (int threads : thread_counts) {
    bench::set_threads(threads);
    nn::Sequential compiled = make_model(false), eager = make_model(true);
    TorchFit t(x_train, y_train, initial);
    // warm up: the compiled step traces and compiles in its first fit
    const nn::FitOptions warm{.epochs = 1, .batch_size = kBatch, .verbose = 0, .seed = 1};
    compiled->fit(x_train, y_train, warm);
    eager->fit(x_train, y_train, warm);
    t.epoch(true);
    const nn::FitOptions timed{.epochs = epochs, .batch_size = kBatch, .verbose = 0, .seed = 2};
    std::vector<double> kc, ke, tt;
    // alternate the three so that load from other processes hits them alike
    for (int r = 0; r < rounds; ++r) {
      auto t0 = Clock::now();
      compiled->fit(x_train, y_train, timed);
      kc.push_back(samples / seconds_since(t0));
      t0 = Clock::now();
      eager->fit(x_train, y_train, timed);
      ke.push_back(samples / seconds_since(t0));
      t0 = Clock::now();
      for (int64_t e = 0; e < epochs; ++e) t.epoch(true);
      tt.push_back(samples / seconds_since(t0));
    }
    const Result res{median(kc), median(ke), median(tt)};
    std::printf("%8d %16.0f %16.0f %16.0f %17.2fx %17.2fx\n", threads, res.kiln_compiled, res.kiln_eager, res.torch,
                res.kiln_compiled / res.torch, res.kiln_eager / res.torch);
    if (compiled->train_function_tracing_count() != 1)
      std::printf("note: the compiled step traced %zu times\n", compiled->train_function_tracing_count());
  }
  return 0;
}
