// The walkthrough's training-loop chapter ("训练循环") the Keras way: the linear model as a model
// subclass, trained by a hand-written loop with a built-in optimizer, then with compile/fit
// (one traced training step per batch) and again with run_eagerly for comparison.
//   usage: keras_training [--time]   (--time also prints the time per epoch, eager and compiled)
#include <kiln/kiln.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>

using namespace kiln;

namespace {

// The model y = w x + b, starting at w = 5, b = 0 (in practice, weights start random).
struct MyModelKerasImpl : nn::ModelImpl {
  Variable w = register_variable("w", Variable(constant(5.0f), "w"));
  Variable b = register_variable("b", Variable(constant(0.0f), "b"));
  Tensor call(const Tensor& x, bool training) override { return w * x + b; }
};
KILN_MODULE(MyModelKeras);

Tensor loss(const Tensor& target_y, const Tensor& predicted_y) { return reduce_mean(square(target_y - predicted_y)); }

void report(const MyModelKeras& model, const Tensor& current_loss) {
  std::printf("    W = %1.2f, b = %1.2f, loss=%2.5f\n", model->w.item<float>(), model->b.item<float>(),
              current_loss.item<float>());
}

}  // namespace

int main(int argc, char** argv) {
  const bool timing = argc > 1 && std::strcmp(argv[1], "--time") == 0;
  Tensor x = cast(linspace(-2, 2, 201, float64), float32);
  Tensor y = x * 3.0f + 2.0f + random::normal({201}, /*seed=*/7);

  std::cout << "A hand-written loop with a built-in optimizer\n";
  MyModelKeras keras_model;
  nn::optim::SGD sgd(0.1);
  for (int epoch = 0; epoch < 10; ++epoch) {
    GradientTape tape;
    Tensor current_loss = loss(y, keras_model(x));
    std::vector<Variable> vars = keras_model->trainable_variables();
    sgd.apply_gradients(tape.gradient(current_loss, std::vector<Source>(vars.begin(), vars.end())), vars);
    std::printf("Epoch %2d:\n", epoch);
    report(keras_model, loss(y, keras_model(x)));
  }

  std::cout << "\ncompile and fit (the whole batch of " << x.shape()[0] << " examples per step)\n";
  MyModelKeras fit_model;
  fit_model->compile({.optimizer = std::make_shared<nn::optim::SGD>(0.1), .loss = nn::losses::mean_squared_error});
  nn::History history =
      fit_model->fit(x, y, {.epochs = 10, .batch_size = 1000, .out = &std::cout, .show_timings = false});
  report(fit_model, loss(y, fit_model(x)));
  std::cout << "training step traces: " << fit_model->train_function_tracing_count() << "\n";

  std::cout << "\nrun_eagerly gives the same losses\n";
  MyModelKeras eager_model;
  eager_model->compile({.optimizer = std::make_shared<nn::optim::SGD>(0.1), .loss = "mse", .run_eagerly = true});
  nn::History eager_history = eager_model->fit(x, y, {.epochs = 10, .batch_size = 1000, .verbose = 0});
  double worst = 0;
  for (size_t i = 0; i < 10; ++i)
    worst = std::max(worst, std::abs(eager_history.history["loss"][i] - history.history["loss"][i]));
  std::cout << "largest loss difference below 1e-5: " << std::boolalpha << (worst < 1e-5) << "\n";

  std::cout << "\nsmall batches: the last, partial batch reuses the traced step\n";
  MyModelKeras batched;
  batched->compile({.optimizer = std::make_shared<nn::optim::SGD>(0.05), .loss = "mse"});
  batched->fit(x, y,
               {.epochs = 3,
                .batch_size = 32,
                .verbose = 2,
                .seed = 1,
                .validation_split = 0.2,
                .out = &std::cout,
                .show_timings = false});
  std::cout << "training step traces: " << batched->train_function_tracing_count() << "\n";
  std::printf("evaluate: loss=%.4f\n", batched->evaluate(x, y).at("loss"));

  if (timing) {
    for (bool eager : {true, false}) {
      MyModelKeras m;
      m->compile({.optimizer = std::make_shared<nn::optim::SGD>(0.01), .loss = "mse", .run_eagerly = eager});
      m->fit(x, y, {.epochs = 1, .batch_size = 8, .verbose = 0});
      auto t0 = std::chrono::steady_clock::now();
      m->fit(x, y, {.epochs = 20, .batch_size = 8, .verbose = 0});
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 20;
      std::printf("%s: %.2f ms per epoch (26 steps of 8 examples)\n", eager ? "run_eagerly" : "compiled", ms);
    }
  }
  return 0;
}
