// Writes small valid inputs for the fuzz targets into DIR/<target>/ (the seed corpora checked in
// under fuzz/corpus/ came from here): .npy and safetensors files of several dtypes, a checkpoint
// of the objects the checkpoint target tracks, a saved model split into the saved_model target's
// three pieces, one input per op for the op harness, and model JSON. Usage: fuzz_make_seeds DIR
#include <unistd.h>

#include <kiln/kiln.h>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "fuzz/fuzz_common.h"
#include "ops/op_def.h"
#include "runtime/file_io.h"
#include "runtime/npy.h"
#include "runtime/safetensors.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

std::vector<Tensor> sample_tensors() {
  return {constant({{1.5f, -2.0f, 3.0f}, {4.0f, 5.0f, 6.0f}}),
          scalar<int64_t>(-7),
          cast(constant({1, 0, 1}), bool_),
          zeros({0, 2}, float64),
          cast(constant({1.0f, 0.5f}), float16),
          cast(constant({1, 2, 255}), uint8),
          cast(constant({{1, -2}, {3, -4}}), int16)};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds DIR\n");
    return 2;
  }
  fs::path out(argv[1]);
  std::vector<Tensor> ts = sample_tensors();

  for (size_t i = 0; i < ts.size(); ++i)
    write(out / "npy" / ("seed_" + std::to_string(i) + ".npy"), npy::encode(ts[i]));
  write(out / "npy" / "seed_complex.npy", npy::encode(cast(constant({1.0f, 2.0f}), complex64)));

  std::vector<std::pair<std::string, Tensor>> named;
  for (size_t i = 0; i < ts.size(); ++i) named.emplace_back("t" + std::to_string(i), ts[i]);
  write(out / "safetensors" / "seed_all.safetensors", safetensors::encode(named, {{"format", "pt"}}));
  write(out / "safetensors" / "seed_one.safetensors", safetensors::encode({named[0]}));
  write(out / "safetensors" / "seed_empty.safetensors", safetensors::encode({}));

  // the checkpoint target's objects, after one training step (so Adam has slots)
  fs::path tmp = fs::temp_directory_path() / ("kiln_fuzz_seeds_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  {
    nn::clear_session();
    auto model = nn::Sequential({nn::Dense(3, "relu"), nn::Dense(2)});
    model(ones({1, 4}));
    auto late = nn::Sequential({nn::Dense(2)});
    late(ones({1, 4}));
    auto opt = std::make_shared<nn::optim::Adam>(0.01);
    Variable step(scalar<int64_t>(3), "step");
    nn::Checkpoint ckpt({{"model", model}, {"late", late}, {"optimizer", opt}, {"step", step}});
    ckpt.write((tmp / "a.ckpt").string());
    write(out / "checkpoint" / "seed_no_slots.ckpt", io::read_file((tmp / "a.ckpt").string(), "seeds"));
    model->compile({.optimizer = opt, .loss = nn::losses::MeanSquaredError()});
    model->fit(ones({4, 4}), zeros({4, 2}), {.epochs = 1, .batch_size = 4, .verbose = 0});
    ckpt.write((tmp / "b.ckpt").string());
    write(out / "checkpoint" / "seed_model.ckpt", io::read_file((tmp / "b.ckpt").string(), "seeds"));
  }

  // a saved model: manifest, the "serve" signature's IR, the variables
  {
    nn::clear_session();
    auto model = nn::Sequential({nn::Dense(2, "relu"), nn::Dense(1)});
    model(ones({1, 3}));
    auto serve = function([model](Tensor x) { return model(x); }, {.name = "serve", .arg_names = {"x"}});
    ConcreteFunction cf = serve.get_concrete_function(TensorSpec({-1, 3}, float32));
    fs::path dir = tmp / "m";
    saved_model::save(model, dir.string(), {{"serve", cf}});
    auto read = [&](const fs::path& p) { return io::read_file(p.string(), "seeds"); };
    std::string joined = read(dir / "manifest.json") + std::string(fuzz::kSplit) +
                         read(dir / "signatures" / "serve.kir") + std::string(fuzz::kSplit) +
                         read(dir / "variables.safetensors");
    write(out / "saved_model" / "seed_dense.bin", joined);
  }
  fs::remove_all(tmp);

  // the op harness: a u16 op index, then bytes it draws inputs and attributes from
  std::span<const ops::OpDef> defs = ops::all_ops();
  for (size_t i = 0; i < defs.size(); ++i) {
    std::string bytes;
    bytes += char(i & 0xff);
    bytes += char(i >> 8);
    bytes += '\0';  // mode
    const char body[] = "\x0d\x02\x02\x03\x01\x02\x03\x04\x05\x06\x0d\x02\x02\x03\x01\x02\x03\x04\x05\x06\x01\x00\x01";
    bytes.append(body, sizeof body - 1);
    write(out / "ops" / ("seed_" + std::string(defs[i].name)), bytes);
  }
  // model_from_json: a Sequential and a functional model with a shared layer
  {
    nn::clear_session();
    nn::Sequential seq({nn::InputLayer(Shape{6}), nn::Dense(8, "relu"), nn::BatchNormalization(), nn::Dropout(0.25, 3),
                        nn::Dense(3, "softmax")});
    write(out / "model_json" / "seed_sequential.json", seq->to_json());
    auto in = nn::Input({-1, -1, 2}, float32, "image");
    auto shared = nn::Conv2D(2, 3, nn::Conv2DOptions{.padding = "same"});
    auto h = nn::MaxPooling2D(2)(shared(nn::Conv2D(2, 1)(in)));
    nn::Model functional(in, nn::AveragePooling2D(1)(shared(h)), "functional");
    write(out / "model_json" / "seed_functional.json", functional->to_json());
  }
  std::printf("seeds written under %s\n", out.string().c_str());
  return 0;
}
