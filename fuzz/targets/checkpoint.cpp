// Fuzz target: reading a checkpoint file (nn::Checkpoint::read, list_variables, load_variable)
// from arbitrary bytes, into a small built model, an unbuilt one (deferred restores), an Adam
// optimizer and a plain variable. The API reads paths, so the bytes go to a per-process file.
#include <unistd.h>

#include <kiln/kiln.h>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "fuzz/fuzz_common.h"

namespace {

std::string temp_path() {
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("kiln_fuzz_ckpt_" + std::to_string(::getpid()))).string();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  const std::string& path = temp_path();
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  try {
    nn::clear_session();
    auto model = nn::Sequential({nn::Dense(3, "relu"), nn::Dense(2)});
    model(ones({1, 4}));
    auto late = nn::Sequential({nn::Dense(2)});
    auto opt = std::make_shared<nn::optim::Adam>(0.01);
    Variable step(scalar<int64_t>(0), "step");
    nn::Checkpoint ckpt({{"model", model}, {"late", late}, {"optimizer", opt}, {"step", step}});
    try {
      nn::CheckpointStatus status = ckpt.read(path);
      (void)status.restored;
      // deferred values apply (and are checked) when the variables are created
      late(ones({1, 4}));
    } catch (const Error&) {
    }
    std::vector<nn::CheckpointEntry> entries = nn::list_variables(path);
    for (size_t i = 0; i < entries.size() && i < 4; ++i) {
      Tensor t = nn::load_variable(path, entries[i].key);
      KILN_FUZZ_CHECK(t.dtype() == entries[i].dtype && t.shape() == entries[i].shape);
    }
  } catch (const Error&) {
  }
  return 0;
}
