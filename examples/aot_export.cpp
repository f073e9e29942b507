// The exporting half of the ahead-of-time example (docs/aot.md): trains a small classifier, saves
// it with a `serve` signature for float32[?, 64], and writes check data for the compiled app.
//   usage: aot_export DIR
// DIR receives the saved model (manifest.json, variables.safetensors, signatures/serve.kir) and
// DIR/check/input_<B>.bin and DIR/check/expected_<B>.bin for B = 1 and 8: raw little-endian
// float32, an input batch [B, 64] and the JIT-compiled `serve` function's logits [B, 10] for it.
// `kiln aot DIR ...` compiles the saved model; examples/aot_app checks its results against these.
#include <kiln/kiln.h>
#include <algorithm>
#include <chrono>

#include <bit>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace kiln;
namespace fs = std::filesystem;

namespace {

static_assert(std::endian::native == std::endian::little, "the check files are little-endian float32");

constexpr int64_t kFeatures = 64;
constexpr int64_t kClasses = 10;

// Writes a float32 tensor's elements as raw bytes (the file is replaced).
void write_floats(const fs::path& path, const Tensor& t) {
  std::vector<float> v = t.to_vector<float>();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  if (!out) fail<DataLoss>("aot_export", "cannot write '", path.string(), "'");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: aot_export DIR\n");
    return 2;
  }
  const fs::path dir = argv[1];

  nn::clear_session();
  random::set_seed(42);
  auto model =
      nn::Sequential({nn::InputLayer(Shape{kFeatures}), nn::Dense(32, "relu"), nn::Dense(kClasses)}, "classifier");

  // a few training steps on random data labelled by a fixed random linear map: the weights move
  // away from their initial values, which is all the check needs
  Tensor x_train = random::normal({256, kFeatures}, /*seed=*/1);
  Tensor y_train = argmax(matmul(x_train, random::normal({kFeatures, kClasses}, /*seed=*/2)), 1, int32);
  model->compile({.optimizer = std::make_shared<nn::optim::Adam>(0.01),
                  .loss = nn::losses::SparseCategoricalCrossentropy(/*from_logits=*/true)});
  nn::History history = model->fit(x_train, y_train, {.epochs = 2, .batch_size = 32, .verbose = 0, .seed = 3});
  std::printf("trained %zu epochs: loss %.3f -> %.3f\n", history.history.at("loss").size(),
              history.history.at("loss").front(), history.history.at("loss").back());

  auto serve = function([model](Tensor x) { return model(x); }, {.name = "serve", .arg_names = {"x"}});
  ConcreteFunction cf = serve.get_concrete_function(TensorSpec({-1, kFeatures}, float32));
  saved_model::save(model, dir.string(), {{"serve", cf}});
  std::printf("saved %s\n%s\n", dir.c_str(), cf.pretty_printed_signature().c_str());

  fs::create_directories(dir / "check");
  for (int64_t batch : {1, 8}) {
    Tensor x = random::normal({batch, kFeatures}, /*seed=*/uint64_t(100 + batch));
    Tensor y = cf({x})[0];
    if (y.dtype() != float32 || y.shape() != Shape{batch, kClasses})
      fail<Internal>("aot_export", "serve returned ", y.dtype(), " ", y.shape(), ", expected float32 [", batch, ", ",
                     kClasses, "]");
    const std::string b = std::to_string(batch);
    write_floats(dir / "check" / ("input_" + b + ".bin"), x);
    write_floats(dir / "check" / ("expected_" + b + ".bin"), y);
    std::printf("check data for batch %s: input [%s, %lld], expected [%s, %lld]\n", b.c_str(), b.c_str(),
                (long long)kFeatures, b.c_str(), (long long)kClasses);
    // the JIT's per-call latency on the same input, for the application to compare with
    std::vector<double> medians;
    for (int rep = 0; rep < 5; ++rep) {
      constexpr int kCalls = 2000;
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < kCalls; ++i) cf({x});
      medians.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
                        kCalls);
    }
    std::sort(medians.begin(), medians.end());
    std::ofstream(dir / "check" / ("jit_ns_" + b + ".txt")) << medians[medians.size() / 2] << "\n";
  }
  return 0;
}
