// Fuzz target: safetensors::decode and decode_header on arbitrary bytes. A decoded file must
// agree with its header listing and survive an encode/decode round trip unchanged.
#include <cstdint>

#include "fuzz/fuzz_common.h"
#include "runtime/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  bool header_ok = false;
  std::vector<safetensors::TensorInfo> infos;
  try {
    infos = safetensors::decode_header(bytes).first;
    header_ok = true;
  } catch (const Error&) {
  }
  safetensors::Contents c;
  try {
    c = safetensors::decode(bytes);
  } catch (const Error&) {
    return 0;
  }
  // decode checks everything decode_header checks
  KILN_FUZZ_CHECK(header_ok);
  KILN_FUZZ_CHECK(infos.size() == c.tensors.size());
  for (auto& info : infos) {
    const Tensor* t = c.find(info.name);
    KILN_FUZZ_CHECK(t && t->dtype() == info.dtype && t->shape() == info.shape);
  }
  std::string once;
  try {
    once = safetensors::encode(c.tensors, c.metadata);
  } catch (const Error&) {
    return 0;  // a name encode refuses to write (the reader is more lenient than the writer)
  }
  safetensors::Contents back = safetensors::decode(once);
  KILN_FUZZ_CHECK(back.tensors.size() == c.tensors.size() && back.metadata == c.metadata);
  KILN_FUZZ_CHECK(safetensors::encode(back.tensors, back.metadata) == once);
  return 0;
}
