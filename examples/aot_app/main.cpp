// The out-of-tree application of docs/aot.md: runs the ahead-of-time compiled classifier on the
// check batches that aot_export wrote next to the saved model and compares with the JIT's results.
//   usage: aot_app DIR   (DIR: the saved model directory, holding check/input_B.bin and
//                         check/expected_B.bin for B = 1 and 8)
// It includes only the generated header: no Kiln header, no Kiln library.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "classifier.h"
#include "classifier_ext.h"

namespace {

constexpr int64_t kFeatures = 64;
constexpr int64_t kClasses = 10;

// Reads a file of raw float32 values; an empty vector (with a message) when it is missing or its
// size is not `count` floats.
std::vector<float> read_floats(const std::string& path, size_t count) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    return {};
  }
  if (size_t(in.tellg()) != count * sizeof(float)) {
    std::fprintf(stderr, "%s has %lld bytes, expected %zu\n", path.c_str(), (long long)in.tellg(),
                 count * sizeof(float));
    return {};
  }
  std::vector<float> v(count);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(count * sizeof(float)));
  if (!in) return {};
  return v;
}

// Runs one check batch through `serve`; true when the shape and every value match.
template <class Model>
bool check_batch(Model& model, const std::string& dir, int64_t batch) {
  const std::string b = std::to_string(batch);
  std::vector<float> x = read_floats(dir + "/check/input_" + b + ".bin", size_t(batch * kFeatures));
  std::vector<float> expected = read_floats(dir + "/check/expected_" + b + ".bin", size_t(batch * kClasses));
  if (x.empty() || expected.empty()) return false;

  const int64_t x_shape[2] = {batch, kFeatures};
  std::vector<float> y(size_t(batch * kClasses), NAN);
  int64_t y_shape[2] = {-1, -1};
  int rc = model.serve(x.data(), x_shape, 2, y.data(), y_shape);
  if (rc != 0) {
    std::printf("batch %s: serve returned %d: %s\n", b.c_str(), rc, model.error());
    return false;
  }
  if (y_shape[0] != batch || y_shape[1] != kClasses) {
    std::printf("batch %s: output shape [%lld, %lld], expected [%lld, %lld]\n", b.c_str(), (long long)y_shape[0],
                (long long)y_shape[1], (long long)batch, (long long)kClasses);
    return false;
  }
  // relative tolerance, with values below 1 compared absolutely (logits can be near zero)
  double worst = 0;
  size_t mismatches = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    double err = std::fabs(double(y[i]) - double(expected[i])) / std::fmax(1.0, std::fabs(double(expected[i])));
    if (!(err <= 1e-5)) {
      if (mismatches++ < 5)
        std::printf("batch %s: y[%zu] = %.9g, expected %.9g\n", b.c_str(), i, double(y[i]), double(expected[i]));
    }
    if (!(err <= worst)) worst = err;
  }
  std::printf("batch %s: output [%lld, %lld], largest relative difference %.3g, predicted classes", b.c_str(),
              (long long)y_shape[0], (long long)y_shape[1], worst);
  for (int64_t r = 0; r < batch; ++r) {
    int64_t best = 0;
    for (int64_t c = 1; c < kClasses; ++c)
      if (y[size_t(r * kClasses + c)] > y[size_t(r * kClasses + best)]) best = c;
    std::printf(" %lld", (long long)best);
  }
  std::printf(" (%s)\n", mismatches == 0 ? "same as the JIT" : "DIFFERENT");
  return mismatches == 0;
}

// A batch of 3 fits no compiled shape: `serve` must refuse it with an error code and a message.
bool check_unsupported_shape(classifier& model) {
  std::vector<float> x(3 * kFeatures, 0.5f);
  std::vector<float> y(3 * kClasses, 0.0f);
  const int64_t x_shape[2] = {3, kFeatures};
  int64_t y_shape[2] = {-1, -1};
  int rc = model.serve(x.data(), x_shape, 2, y.data(), y_shape);
  const char* msg = model.error();
  bool ok = rc != 0 && msg != nullptr && msg[0] != '\0';
  std::printf("batch 3 (not compiled): serve returned %d: %s (%s)\n", rc, msg ? msg : "(null)",
              ok ? "refused, as it should" : "NOT REFUSED");
  return ok;
}

// Median nanoseconds per `serve` call at `batch`, next to the JIT's (written by aot_export).
// The same classifier compiled with WEIGHTS_FILE: the weights come from a safetensors file
// read by the constructor, which refuses a damaged copy of it.
bool check_weights_file(const std::string& dir) {
  bool ok = false;
  try {
    classifier_ext model(CLASSIFIER_EXT_WEIGHTS);
    ok = check_batch(model, dir, 1);
  } catch (const std::exception& e) {
    std::printf("weights file: %s\n", e.what());
    return false;
  }
  std::ifstream in(CLASSIFIER_EXT_WEIGHTS, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string damaged = dir + "/check/damaged.safetensors";
  std::ofstream(damaged, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() - 1));
  try {
    classifier_ext broken(damaged.c_str());
    std::printf("weights file: a truncated copy was accepted\n");
    ok = false;
  } catch (const std::exception& e) {
    std::printf("weights file: a truncated copy is refused: %s\n", e.what());
  }
  std::remove(damaged.c_str());
  return ok;
}

void time_batch(classifier& model, const std::string& dir, int64_t batch) {
  std::vector<float> x(size_t(batch) * 64, 0.5f), y(size_t(batch) * 10);
  const int64_t x_shape[2] = {batch, 64};
  int64_t y_shape[2];
  double best[5];
  for (double& b : best) {
    constexpr int kCalls = 2000;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) model.serve(x.data(), x_shape, 2, y.data(), y_shape);
    b = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / kCalls;
  }
  std::sort(best, best + 5);
  double jit = 0;
  std::ifstream(dir + "/check/jit_ns_" + std::to_string(batch) + ".txt") >> jit;
  std::printf("batch %lld: AOT %.0f ns per call, JIT %.0f ns (JIT / AOT %.2fx)\n", (long long)batch, best[2], jit,
              jit / best[2]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: aot_app DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  classifier model;
  bool ok = true;
  for (int64_t batch : {1, 8}) ok = check_batch(model, dir, batch) && ok;
  ok = check_unsupported_shape(model) && ok;
  ok = check_weights_file(dir) && ok;
  for (int64_t batch : {1, 8}) time_batch(model, dir, batch);
  std::printf("%s\n", ok ? "aot_app: all checks passed" : "aot_app: FAILED");
  return ok ? 0 : 1;
}
