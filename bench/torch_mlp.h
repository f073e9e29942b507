// The LibTorch side of the MLP training-step benchmarks (bench_train_step, bench_cpu_backend):
// Kiln tensors copied into LibTorch, and the same step — dense layers with ReLU between them,
// softmax cross-entropy, autograd, plain SGD — on LibTorch tensors.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::bench {

/// A copy of a float32 or int32 Kiln tensor as a LibTorch tensor.
inline torch::Tensor to_torch(const Tensor& t) {
  std::vector<int64_t> sizes(t.shape().begin(), t.shape().end());
  if (t.dtype() == int32) {
    std::vector<int32_t> v = t.to_vector<int32_t>();
    return torch::from_blob(v.data(), sizes, torch::kInt32).clone();
  }
  std::vector<float> v = t.to_vector<float>();
  return torch::from_blob(v.data(), sizes, torch::kFloat32).clone();
}

/// One training step per call on copies of `params` (weight, bias per layer); returns the loss.
class TorchMlp {
 public:
  TorchMlp(const Tensor& x, const Tensor& onehot, const std::vector<Tensor>& params, double learning_rate)
      : x_(to_torch(x)), onehot_(to_torch(onehot)), lr_(learning_rate) {
    for (const Tensor& p : params) params_.push_back(to_torch(p).requires_grad_(true));
  }
  torch::Tensor operator()() {
    torch::Tensor h = x_;
    const size_t layers = params_.size() / 2;
    for (size_t l = 0; l < layers; ++l) {
      h = torch::matmul(h, params_[2 * l]) + params_[2 * l + 1];
      if (l + 1 < layers) h = torch::relu(h);
    }
    torch::Tensor loss = -(onehot_ * torch::log_softmax(h, 1)).sum(1).mean();
    std::vector<torch::Tensor> grads = torch::autograd::grad({loss}, params_);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) params_[i].sub_(lr_ * grads[i]);
    return loss;
  }
  const std::vector<torch::Tensor>& params() const { return params_; }

 private:
  std::vector<torch::Tensor> params_;
  torch::Tensor x_, onehot_;
  double lr_;
};

}  // namespace kiln::bench
