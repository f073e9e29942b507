// A real-data example: an MLP classifier on the handwritten digits data set that Debian's
// python3-sklearn package ships (8x8 images, 1797 examples, 10 classes; examples/data/README.md
// says where the file comes from). It trains with fit, checks the test accuracy, saves the model
// as a saved function, reloads it without the C++ model and evaluates it again; a checkpoint of
// the model and optimizer round-trips too.
//   usage: digits [--time] [--keep DIR] [--data FILE]
//     --time  also prints the fit time, compiled and with run_eagerly
//     --keep  saves the model into DIR and keeps it (inspect it with `kiln inspect DIR`)
#include <kiln/kiln.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "examples/digits_data.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace {

nn::Sequential make_model() {
  nn::clear_session();
  random::set_seed(42);
  return nn::Sequential({nn::InputLayer(Shape{64}), nn::Dense(64, "relu"), nn::Dense(10)});
}

void compile(nn::Sequential& model, bool eager) {
  model->compile({.optimizer = std::make_shared<nn::optim::Adam>(0.005),
                  .loss = nn::losses::SparseCategoricalCrossentropy(/*from_logits=*/true),
                  .metrics = {"accuracy"},
                  .run_eagerly = eager});
}

double accuracy(const Tensor& logits, const Tensor& y) {
  return reduce_mean(cast(equal(argmax(logits, 1, int32), y), float32)).item<float>();
}

}  // namespace

int main(int argc, char** argv) {
  bool timing = false;
  std::string keep, data = KILN_DIGITS_PATH;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--time") == 0)
      timing = true;
    else if (std::strcmp(argv[i], "--keep") == 0 && i + 1 < argc)
      keep = argv[++i];
    else if (std::strcmp(argv[i], "--data") == 0 && i + 1 < argc)
      data = argv[++i];
    else {
      std::fprintf(stderr, "usage: digits [--time] [--keep DIR] [--data FILE]\n");
      return 2;
    }
  }
  digits::Digits d = digits::parse(digits::read_gz(data));
  std::printf("digits: %zu examples of 64 pixels, 10 classes\n", d.y.size());

  // a seeded 80/20 split
  auto [x_train, y_train, x_test, y_test] = digits::split(d);
  const int64_t n_train = x_train.shape()[0];
  std::printf("train: %lld, test: %lld\n\n", (long long)x_train.shape()[0], (long long)x_test.shape()[0]);

  auto model = make_model();
  compile(model, false);
  model->summary();
  std::printf("\n");
  // verbose 0 and rounded numbers: the transcript must match across builds (a sanitizer build
  // rounds differently in the last digits)
  const nn::FitOptions fit_options{.epochs = 15, .batch_size = 32, .verbose = 0, .seed = 1};
  auto t0 = std::chrono::steady_clock::now();
  nn::History history = model->fit(x_train, y_train, fit_options);
  double compiled_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("fit: %lld epochs of batches of 32; training loss %.2f -> %.2f, training accuracy %.2f -> %.2f\n",
              (long long)fit_options.epochs, history.history.at("loss").front(), history.history.at("loss").back(),
              history.history.at("accuracy").front(), history.history.at("accuracy").back());
  nn::Logs logs = model->evaluate(x_test, y_test);
  std::printf("test accuracy: %.3f\n", logs.at("accuracy"));
  if (logs.at("accuracy") < 0.95) {
    std::printf("FAILED: the test accuracy is below 0.95\n");
    return 1;
  }

  // save a serving signature with an unknown batch size, reload it and evaluate again
  fs::path dir =
      keep.empty() ? fs::temp_directory_path() / ("kiln_digits_" + std::to_string(::getpid())) : fs::path(keep);
  auto serve = function([model](Tensor x) { return model(x); }, {.name = "serve", .arg_names = {"images"}});
  saved_model::save(model, dir.string(), {{"serve", serve.get_concrete_function(TensorSpec({-1, 64}, float32))}});
  saved_model::LoadedModel loaded = saved_model::load(dir.string());
  double reloaded = accuracy(loaded({x_test})[0], y_test);
  std::printf("reloaded saved model: signatures %s, %zu variables, test accuracy: %.3f (%s)\n",
              loaded.signature_keys()[0].c_str(), loaded.variables().size(), reloaded,
              reloaded == accuracy(model->predict(x_test), y_test) ? "same" : "DIFFERENT");

  // a checkpoint of the model and its optimizer restores into a fresh, unbuilt model
  std::string ckpt_path = (dir / "digits.ckpt").string();
  nn::Checkpoint({{"model", model}, {"optimizer", model->optimizer()}}).write(ckpt_path);
  auto fresh = make_model();
  nn::Checkpoint({{"model", fresh}}).read(ckpt_path);
  std::printf("checkpoint: %zu entries; restored model's test accuracy: %.3f\n", nn::list_variables(ckpt_path).size(),
              accuracy(fresh->predict(x_test), y_test));
  if (keep.empty())
    fs::remove_all(dir);
  else
    std::printf("saved to %s (try: kiln inspect %s)\n", dir.c_str(), dir.c_str());

  if (timing) {
    auto eager = make_model();
    compile(eager, true);
    nn::FitOptions quiet = fit_options;
    quiet.verbose = 0;
    t0 = std::chrono::steady_clock::now();
    eager->fit(x_train, y_train, quiet);
    double eager_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double steps = double(fit_options.epochs) * double((n_train + 31) / 32);
    std::printf("\nfit, %lld epochs: compiled %.2f s (%.0f us/step), run_eagerly %.2f s (%.0f us/step)\n",
                (long long)fit_options.epochs, compiled_s, 1e6 * compiled_s / steps, eager_s, 1e6 * eager_s / steps);
  }
  return 0;
}
