// Fuzz target: npy::decode on arbitrary bytes. What decodes must encode, and the encoding must
// decode to the same tensor (encode(decode(encode(t))) == encode(t)).
#include <cstdint>

#include "fuzz/fuzz_common.h"
#include "runtime/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Tensor t;
  try {
    t = npy::decode(bytes);
  } catch (const Error&) {
    return 0;
  }
  KILN_FUZZ_CHECK(t.defined());
  std::string once = npy::encode(t);  // every dtype decode yields is one encode writes
  Tensor back = npy::decode(once);
  KILN_FUZZ_CHECK(back.dtype() == t.dtype() && back.shape() == t.shape());
  KILN_FUZZ_CHECK(npy::encode(back) == once);
  return 0;
}
