// The walkthrough's basic training loop chapter ("训练循环") in C++: linear regression on noisy
// points of a line, trained by hand with a gradient tape and assign_sub (plain gradient descent).
#include <kiln/kiln.h>

#include <cstdio>
#include <iostream>

#include "autodiff/tape.h"

using namespace kiln;

namespace {

// The actual line
constexpr double kTrueW = 3.0;
constexpr double kTrueB = 2.0;
constexpr int64_t kNumExamples = 201;

Tensor f(const Tensor& x) { return x * kTrueW + kTrueB; }

// The model: y = w * x + b. The weights start at 5.0 and 0.0 (in practice, they would be
// randomly initialized).
struct MyModel {
  Variable w{constant(5.0)};
  Variable b{constant(0.0)};
  Tensor operator()(const Tensor& x) const { return w * x + b; }
};

// The L2 loss (mean squared error) over the whole batch.
Tensor loss(const Tensor& target_y, const Tensor& predicted_y) { return reduce_mean(square(target_y - predicted_y)); }

// One gradient descent step: the tape watches the trainable variables it sees read.
void train(MyModel& model, const Tensor& x, const Tensor& y, double learning_rate) {
  GradientTape t;
  Tensor current_loss = loss(y, model(x));
  std::vector<Tensor> d = t.gradient(current_loss, {model.w, model.b});
  // subtract the gradient scaled by the learning rate
  model.w.assign_sub(learning_rate * d[0]);
  model.b.assign_sub(learning_rate * d[1]);
}

void report(const MyModel& model, const Tensor& current_loss) {
  std::printf("  W = %1.2f, b = %1.2f, loss=%2.5f\n", model.w.item<float>(), model.b.item<float>(),
              current_loss.item<float>());
}

void training_loop(MyModel& model, const Tensor& x, const Tensor& y, int epochs) {
  for (int epoch = 0; epoch < epochs; ++epoch) {
    train(model, x, y, /*learning_rate=*/0.1);  // the single giant batch
    Tensor current_loss = loss(y, model(x));
    std::printf("Epoch %2d:\n", epoch);
    report(model, current_loss);
  }
}

}  // namespace

int main() {
  // the data: points on the line plus Gaussian noise (seeded, so the output is reproducible)
  Tensor x = cast(linspace(-2, 2, kNumExamples, float64), float32);
  Tensor noise = random::normal({kNumExamples}, /*seed=*/7);
  Tensor y = f(x) + noise;

  MyModel model;
  std::cout << "Variables: (" << model.b << ", " << model.w << ")\n";
  if (model(constant(3.0)).item<float>() != 15.0f) {
    std::cout << "the model does not compute 5 * 3 + 0\n";
    return 1;
  }

  std::printf("Starting:\n");
  report(model, loss(y, model(x)));
  training_loop(model, x, y, /*epochs=*/10);
  std::printf("Current loss: %1.6f\n", loss(model(x), y).item<float>());
  return 0;
}
