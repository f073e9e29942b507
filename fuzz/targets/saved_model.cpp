// Fuzz target: saved_model::load and describe on a directory built from one input split into
// three files at kSplit: manifest.json, signatures/serve.kir and variables.safetensors. A model
// that loads is called once with zeros that fit its first signature (unknown dims as 1).
#include <unistd.h>

#include <kiln/kiln.h>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "fuzz/fuzz_common.h"

namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  static const fs::path dir = fs::temp_directory_path() / ("kiln_fuzz_saved_model_" + std::to_string(::getpid()));
  fs::create_directories(dir / "signatures");
  std::vector<std::string> parts = fuzz::split_input(data, size, 3);
  write(dir / "manifest.json", parts[0]);
  write(dir / "signatures" / "serve.kir", parts[1]);
  write(dir / "variables.safetensors", parts[2]);
  try {
    saved_model::LoadedModel m = saved_model::load(dir.string());
    (void)saved_model::describe(dir.string());
    std::vector<std::string> keys = m.signature_keys();
    KILN_FUZZ_CHECK(!keys.empty());
    ConcreteFunction f = m.signature(keys[0]);
    std::vector<Tensor> args;
    int64_t total = 0;
    for (const TensorSpec& spec : f.input_specs()) {
      std::vector<int64_t> dims;
      for (int64_t d : spec.shape.dims()) dims.push_back(d < 0 ? 1 : d);
      Shape s(dims);
      total += s.num_elements();
      if (spec.dtype == DType::String || total > (1 << 16)) return 0;
      args.push_back(zeros(s, spec.dtype));
    }
    (void)m.call(keys[0], args);
  } catch (const Error&) {
  }
  return 0;
}
