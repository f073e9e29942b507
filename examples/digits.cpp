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
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

using namespace kiln;
namespace fs = std::filesystem;

namespace {

// Reads a gzip file with zlib (the whole file: it is small).
std::string read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail<NotFound>("digits", "cannot open '", path, "' (run scripts/kiln.sh fetch-digits)");
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, size_t(n));
  int err = 0;
  std::string msg = n < 0 ? gzerror(f, &err) : "";
  gzclose(f);
  if (n < 0) fail<DataLoss>("digits", "'", path, "' is not a valid gzip file: ", msg);
  return out;
}

struct Digits {
  std::vector<float> x;  // [n, 64], pixel values 0..16 scaled to 0..1
  std::vector<int32_t> y;
};

// Parses the CSV: one example per line, 64 pixel values then the label.
Digits parse(const std::string& csv) {
  Digits d;
  size_t line = 0, at = 0;
  while (at < csv.size()) {
    size_t end = csv.find('\n', at);
    if (end == std::string::npos) end = csv.size();
    std::string_view row(csv.data() + at, end - at);
    at = end + 1;
    ++line;
    if (row.empty()) continue;
    std::vector<int> v;
    size_t p = 0;
    while (p <= row.size()) {
      size_t q = row.find(',', p);
      if (q == std::string_view::npos) q = row.size();
      v.push_back(std::stoi(std::string(row.substr(p, q - p))));
      p = q + 1;
    }
    if (v.size() != 65 || v[64] < 0 || v[64] > 9)
      fail<DataLoss>("digits", "line ", line, " has ", v.size(), " values (expected 64 pixels and a label 0-9)");
    for (int i = 0; i < 64; ++i) d.x.push_back(float(v[size_t(i)]) / 16.0f);
    d.y.push_back(v[64]);
  }
  return d;
}

// The rows of `idx` as tensors.
std::pair<Tensor, Tensor> take(const Digits& d, const std::vector<size_t>& idx) {
  std::vector<float> x;
  std::vector<int32_t> y;
  for (size_t i : idx) {
    x.insert(x.end(), d.x.begin() + std::ptrdiff_t(64 * i), d.x.begin() + std::ptrdiff_t(64 * i + 64));
    y.push_back(d.y[i]);
  }
  int64_t n = int64_t(idx.size());
  return {constant(x, Shape{n, 64}), constant(y, Shape{n})};
}

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
  Digits d = parse(read_gz(data));
  std::printf("digits: %zu examples of 64 pixels, 10 classes\n", d.y.size());

  // a seeded 80/20 split (Fisher-Yates with a fixed generator: the same on every platform)
  std::vector<size_t> order(d.y.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 gen(0);
  for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[size_t(gen() % (i + 1))]);
  size_t n_train = order.size() * 4 / 5;
  auto [x_train, y_train] = take(d, {order.begin(), order.begin() + std::ptrdiff_t(n_train)});
  auto [x_test, y_test] = take(d, {order.begin() + std::ptrdiff_t(n_train), order.end()});
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
