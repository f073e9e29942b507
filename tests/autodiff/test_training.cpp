// Training loops on the gradient tape: the walkthrough's linear regression (the loss falls every
// epoch, the weights reach the line) and a small softmax classifier trained by plain SGD.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "autodiff/tape.h"
#include "ops/ops.h"

using namespace kiln;

namespace {

struct Linear {
  Variable w{constant(5.0)};
  Variable b{constant(0.0)};
  Tensor operator()(const Tensor& x) const { return w * x + b; }
};

Tensor mse(const Tensor& target, const Tensor& predicted) { return reduce_mean(square(target - predicted)); }

struct Data {
  Tensor x, y;
};

// The walkthrough's data: 201 points of y = 3x + 2 on [-2, 2] plus unit Gaussian noise.
Data line_data(uint64_t seed) {
  Tensor x = linspace(-2, 2, 201);
  return {x, x * 3.0 + 2.0 + random::normal({201}, seed)};
}

// One gradient descent step; returns the loss before the step.
float train_step(Linear& model, const Data& d, double learning_rate) {
  GradientTape tape;
  Tensor loss = mse(d.y, model(d.x));
  std::vector<Tensor> g = tape.gradient(loss, {model.w, model.b});
  model.w.assign_sub(learning_rate * g[0]);
  model.b.assign_sub(learning_rate * g[1]);
  return loss.item<float>();
}

}  // namespace

TEST_CASE("linear regression: the loss falls every epoch and the weights reach the line", "[autodiff][training]") {
  for (uint64_t seed : {1, 7, 42, 1234, 99999}) {
    INFO("noise seed " << seed);
    Data d = line_data(seed);
    Linear model;
    float previous = mse(d.y, model(d.x)).item<float>();
    // b's error shrinks by 0.8 per epoch at learning rate 0.1 (2 * 0.8^30 < 0.003), W's faster
    for (int epoch = 0; epoch < 30; ++epoch) {
      train_step(model, d, 0.1);
      float now = mse(d.y, model(d.x)).item<float>();
      INFO("epoch " << epoch);
      REQUIRE(now < previous);
      previous = now;
    }
    CHECK(std::fabs(model.w.item<float>() - 3.0f) < 0.2f);
    CHECK(std::fabs(model.b.item<float>() - 2.0f) < 0.2f);
  }
}

TEST_CASE("linear regression: gradients are the closed form and descent reaches least squares",
          "[autodiff][training]") {
  Data d = line_data(7);
  std::vector<float> xs = d.x.to_vector<float>(), ys = d.y.to_vector<float>();
  const double n = static_cast<double>(xs.size());
  Linear model;
  {
    // dL/dW = -2 mean(x (y - pred)), dL/db = -2 mean(y - pred) at W = 5, b = 0
    GradientTape tape;
    Tensor loss = mse(d.y, model(d.x));
    std::vector<Tensor> g = tape.gradient(loss, {model.w, model.b});
    double dw = 0, db = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      double r = ys[i] - 5.0 * xs[i];
      dw += -2 * xs[i] * r / n;
      db += -2 * r / n;
    }
    CHECK(g[0].item<float>() == Approx(dw).epsilon(1e-5));
    CHECK(g[1].item<float>() == Approx(db).epsilon(1e-5));
  }
  // ordinary least squares, in double on the host
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < xs.size(); ++i) sx += xs[i], sy += ys[i], sxx += xs[i] * xs[i], sxy += xs[i] * ys[i];
  const double w_ols = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const double b_ols = (sy - w_ols * sx) / n;
  for (int epoch = 0; epoch < 100; ++epoch) train_step(model, d, 0.1);
  CHECK(model.w.item<float>() == Approx(w_ols).margin(1e-4));
  CHECK(model.b.item<float>() == Approx(b_ols).margin(1e-4));
}

TEST_CASE("a softmax classifier trained by SGD fits its batch", "[autodiff][training]") {
  // two-layer MLP 4-16-3 with ReLU and softmax cross-entropy, as bench/train_step.cpp at toy size
  const int64_t batch = 32, classes = 3;
  Tensor x = random::normal({batch, 4}, 1);
  Tensor labels = random::uniform({batch}, 2, 0, classes, int32);
  Tensor onehot = one_hot(labels, classes);
  Variable w1(random::normal({4, 16}, 3, 0.0, 0.5)), b1(zeros({16}));
  Variable w2(random::normal({16, 3}, 4, 0.0, 0.5)), b2(zeros({3}));
  auto loss_fn = [&] {
    Tensor h = relu(matmul(x, w1) + b1);
    Tensor logits = matmul(h, w2) + b2;
    return negative(reduce_mean(reduce_sum(onehot * log_softmax(logits), 1)));
  };
  const float initial = loss_fn().item<float>();
  float last = initial;
  for (int step = 0; step < 200; ++step) {
    GradientTape tape;
    Tensor loss = loss_fn();
    std::vector<Tensor> g = tape.gradient(loss, {w1, b1, w2, b2});
    for (const Tensor& gi : g) REQUIRE(gi.defined());
    REQUIRE(g[0].shape() == w1.shape());
    REQUIRE(g[3].shape() == b2.shape());
    w1.assign_sub(0.1 * g[0]);
    b1.assign_sub(0.1 * g[1]);
    w2.assign_sub(0.1 * g[2]);
    b2.assign_sub(0.1 * g[3]);
    last = loss.item<float>();
  }
  INFO("initial loss " << initial << ", after 200 steps " << last);
  CHECK(std::isfinite(last));
  CHECK(last < 0.5f * initial);
  // the trained model classifies most of its own batch right
  Tensor predicted = argmax(matmul(relu(matmul(x, w1) + b1), w2) + b2, 1, int32);
  const int64_t correct = reduce_sum(cast(equal(predicted, labels), int32)).item<int32_t>();
  INFO("correct on the training batch: " << correct << " of " << batch);
  CHECK(correct >= batch * 3 / 4);
}
