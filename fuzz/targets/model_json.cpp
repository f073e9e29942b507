// Fuzz target: rebuilding a model from arbitrary JSON text (nn::model_from_json) with a small
// weight budget. Every input must load or throw a typed error; a model that loads must write JSON
// that loads again into the same JSON and the same summary (the round trip is canonical).
#include <kiln/kiln.h>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const nn::DeserializeOptions options{.max_weight_elements = 1 << 16, .max_depth = 8};
  try {
    nn::clear_session();
    nn::Model model = nn::model_from_json(text, options);
    const std::string again = model->to_json();
    nn::Model copy = nn::model_from_json(again, options);
    KILN_FUZZ_CHECK(copy->to_json() == again);
    KILN_FUZZ_CHECK(copy->built() == model->built());
    if (model->built()) KILN_FUZZ_CHECK(copy->summary_string() == model->summary_string());
  } catch (const Error&) {
  }
  return 0;
}
