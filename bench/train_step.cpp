// One eager training step of an MLP 784-256-256-10 (ReLU, softmax cross-entropy, batch 64, float32):
// forward, gradient tape, backward and a plain SGD update of every weight, Kiln against LibTorch
// (autograd, update under NoGradGuard) in the same run, at 1 and 2 threads.
//   usage: bench_train_step [--threads N] [--kiln-only]
// (default: 1 and 2 threads; --kiln-only times Kiln alone, e.g. under `perf record`)
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "autodiff/tape.h"
#include "bench/timing.h"
#include "bench/torch_mlp.h"
#include "kiln/kiln.h"

namespace {

constexpr int64_t kBatch = 64;
constexpr int64_t kDims[] = {784, 256, 256, 10};
constexpr int kLayers = 3;
constexpr double kLearningRate = 0.01;

// The same initial weights and data for both libraries, drawn by Kiln (He-normal weights, zero biases).
struct Setup {
  std::vector<kiln::Tensor> params;  // w1, b1, w2, b2, w3, b3
  kiln::Tensor x, onehot;
};

Setup make_setup() {
  Setup s;
  for (int l = 0; l < kLayers; ++l) {
    const double stddev = std::sqrt(2.0 / static_cast<double>(kDims[l]));
    s.params.push_back(kiln::random::normal({kDims[l], kDims[l + 1]}, 10 + l, 0.0, stddev));
    s.params.push_back(kiln::zeros({kDims[l + 1]}));
  }
  s.x = kiln::random::normal({kBatch, kDims[0]}, 1);
  s.onehot = kiln::one_hot(kiln::random::uniform({kBatch}, 2, 0, kDims[kLayers], kiln::int32), kDims[kLayers]);
  return s;
}

class KilnStep {
 public:
  explicit KilnStep(const Setup& s) : x_(s.x), onehot_(s.onehot) {
    for (const kiln::Tensor& p : s.params) params_.emplace_back(p);
  }
  // Returns the loss before the update.
  kiln::Tensor operator()() {
    kiln::GradientTape tape;
    kiln::Tensor h = x_;
    for (int l = 0; l < kLayers; ++l) {
      h = kiln::matmul(h, params_[2 * l]) + params_[2 * l + 1];
      if (l + 1 < kLayers) h = kiln::relu(h);
    }
    kiln::Tensor loss = -kiln::reduce_mean(kiln::reduce_sum(onehot_ * kiln::log_softmax(h), 1));
    std::vector<kiln::Source> sources(params_.begin(), params_.end());
    std::vector<kiln::Tensor> grads = tape.gradient(loss, sources);
    for (size_t i = 0; i < params_.size(); ++i) params_[i].assign_sub(kLearningRate * grads[i]);
    return loss;
  }

 private:
  std::vector<kiln::Variable> params_;
  kiln::Tensor x_, onehot_;
};

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using kiln::bench::keep;
  using kiln::bench::time_ns;
  bool kiln_only = false;
  std::vector<int> thread_counts = {1, 2};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--kiln-only")) {
      kiln_only = true;
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc && std::atoi(argv[i + 1]) > 0) {
      thread_counts = {std::atoi(argv[++i])};
    } else {
      std::fprintf(stderr, "usage: bench_train_step [--threads N] [--kiln-only]\n");
      return 2;
    }
  }
  const Setup setup = make_setup();

  if (!kiln_only) {  // both start from the same weights, so their losses agree
    KilnStep k(setup);
    kiln::bench::TorchMlp t(setup.x, setup.onehot, setup.params, kLearningRate);
    std::printf("first-step loss: kiln %.6f, LibTorch %.6f\n", k().item<float>(), t().item<float>());
    float kl = 0, tl = 0;
    for (int i = 0; i < 19; ++i) kl = k().item<float>(), tl = t().item<float>();
    std::printf("20th-step loss:  kiln %.6f, LibTorch %.6f\n", kl, tl);
  }

  std::printf("\nMLP 784-256-256-10, batch %lld, float32: forward + tape + backward + SGD update\n",
              static_cast<long long>(kBatch));
  std::printf("%8s %14s %18s %14s\n", "threads", "kiln ms/step", "LibTorch ms/step", "LibTorch/kiln");
  for (int threads : thread_counts) {
    kiln::set_num_threads(threads);
    torch::set_num_threads(threads);
    KilnStep k(setup);
    if (kiln_only) {
      std::printf("%8d %14.3f\n", threads, time_ns([&] { keep(k()); }, 9, 1e8) / 1e6);
      continue;
    }
    kiln::bench::TorchMlp t(setup.x, setup.onehot, setup.params, kLearningRate);
    // alternate the two so that load from other processes on a shared machine hits both alike
    std::vector<double> kn, tn;
    for (int round = 0; round < 5; ++round) {
      kn.push_back(time_ns([&] { keep(k()); }, 3, 3e7));
      tn.push_back(time_ns([&] { keep(t()); }, 3, 3e7));
    }
    std::printf("%8d %14.3f %18.3f %13.2fx\n", threads, median(kn) / 1e6, median(tn) / 1e6, median(tn) / median(kn));
  }
  return 0;
}
