// Fuzz target: random ops from the registry (ops::all_ops) with random inputs (dtypes, small
// shapes, data from the input bytes) and attributes drawn by each AttrSpec's kind, through
// ops::apply. Only kiln::Error may come out; outputs must match the inferred types (sizes may be
// unknown there for data-dependent results). A dispatch level skips ops whose inferred outputs
// are too large to compute quickly.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "ops/dispatch.h"
#include "runtime/string_tensor.h"

namespace {

using namespace kiln;
using namespace kiln::ops;

constexpr int64_t kMaxOutputBytes = int64_t{1} << 22;

// Thrown by the level for outputs over kMaxOutputBytes: not a finding, the op is just skipped.
struct TooLarge {};

// True when `s` has the rank of `inferred` and its sizes wherever `inferred` knows them.
bool fits(const Shape& s, const Shape& inferred) {
  if (s.rank() != inferred.rank()) return false;
  for (int64_t i = 0; i < s.rank(); ++i)
    if (inferred[i] >= 0 && inferred[i] != s[i]) return false;
  return true;
}

// Checks every op's inferred outputs before its kernel runs, and its outputs after.
class CheckLevel : public Level {
 public:
  TensorList process(const OpDef& def, const Attrs& attrs, std::span<const Tensor> inputs,
                     const TypeList& types) override {
    int64_t bytes = 0;
    for (const TensorType& t : types) {
      if (!t.shape.is_fully_defined()) continue;  // a data-dependent size (string and ragged ops)
      int64_t n = t.shape.num_elements();
      if (n > kMaxOutputBytes) throw TooLarge{};  // before the product, which could overflow
      bytes += n * std::max(8, dtype_size(t.dtype));
      if (bytes > kMaxOutputBytes) throw TooLarge{};
    }
    TensorList out = process_below(def, attrs, inputs, types);
    KILN_FUZZ_CHECK(out.size() == types.size());
    for (size_t i = 0; i < out.size(); ++i) {
      KILN_FUZZ_CHECK(out[i].defined());
      if (out[i].dtype() != types[i].dtype || !fits(out[i].shape(), types[i].shape)) {
        std::fprintf(stderr, "%s output %zu: inferred %s %s, kernel gave %s %s\n", std::string(def.name).c_str(), i,
                     std::string(dtype_name(types[i].dtype)).c_str(), types[i].shape.to_string().c_str(),
                     std::string(dtype_name(out[i].dtype())).c_str(), out[i].shape().to_string().c_str());
        KILN_FUZZ_CHECK(!"kernel outputs match the inferred types");
      }
    }
    return out;
  }
};

int64_t draw_int(fuzz::Reader& r) {
  uint8_t k = r.u8();
  if (k < 200) return int64_t(k % 13) - 4;  // mostly small values, axes and sizes: [-4, 8]
  switch (k % 8) {
    case 0:
      return std::numeric_limits<int64_t>::max();
    case 1:
      return std::numeric_limits<int64_t>::min();
    case 2:
      return int64_t{1} << 31;
    case 3:
      return -(int64_t{1} << 31);
    case 4:
      return int64_t{1} << 40;
    case 5:
      return int64_t(r.u16());
    default:
      return static_cast<int64_t>(r.u64());
  }
}

double draw_float(fuzz::Reader& r) {
  static const double table[] = {0.0,
                                 1.0,
                                 -1.0,
                                 0.5,
                                 2.0,
                                 -0.0,
                                 1e-3,
                                 1e300,
                                 -1e300,
                                 1e-310,
                                 std::numeric_limits<double>::infinity(),
                                 -std::numeric_limits<double>::infinity(),
                                 std::nan(""),
                                 3.75,
                                 1e10,
                                 -7.5};
  uint8_t k = r.u8();
  if (k < 240) return table[k % (sizeof(table) / sizeof(table[0]))];
  uint64_t bits = r.u64();
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

DType draw_dtype(fuzz::Reader& r) { return static_cast<DType>(r.u8() % (kNumNumericDTypes + 1)); }

// Half the time a value some op accepts (padding, units, encodings, error modes), so kernels
// behind string attributes (conv, pooling, unicode) are reached; otherwise random bytes.
std::string draw_string(fuzz::Reader& r) {
  static const char* const kKnown[] = {"SAME", "VALID", "BYTE", "UTF8_CHAR", "UTF-8", "strict", "replace", "ignore"};
  uint8_t pick = r.u8();
  if (pick & 1) return kKnown[(pick >> 1) % (sizeof kKnown / sizeof kKnown[0])];
  return std::string(r.bytes((pick >> 1) % 8));
}

AttrValue draw_attr(fuzz::Reader& r, AttrKind kind) {
  switch (kind) {
    case AttrKind::Int:
      return draw_int(r);
    case AttrKind::Float:
      return draw_float(r);
    case AttrKind::Bool:
      return r.flag();
    case AttrKind::Type:
      return draw_dtype(r);
    case AttrKind::Ints: {
      std::vector<int64_t> v(r.u8() % 6);
      for (auto& x : v) x = draw_int(r);
      return v;
    }
    case AttrKind::String:
      return draw_string(r);
    case AttrKind::Object:
      break;
  }
  return int64_t{0};
}

Tensor draw_tensor(fuzz::Reader& r) {
  DType dt = draw_dtype(r);
  int rank = r.u8() % 5;
  std::vector<int64_t> dims(rank);
  for (auto& d : dims) d = r.u8() % 6;
  Shape shape(dims);
  int64_t n = shape.num_elements();
  if (dt == DType::String) {
    std::vector<std::string> values(n);
    for (auto& v : values) v = draw_string(r);
    return make_string_tensor(shape, values);
  }
  Tensor t = Tensor::empty(shape, dt);
  auto* p = static_cast<uint8_t*>(t.mutable_raw_data());
  size_t nbytes = t.nbytes();
  // a short input repeats its bytes; an exhausted one leaves zeros
  std::string_view src = r.bytes(std::min<size_t>(nbytes, 64));
  for (size_t i = 0; i < nbytes; ++i) p[i] = src.empty() ? 0 : uint8_t(src[i % src.size()]);
  // bool storage must hold 0 or 1 (anything else is undefined behaviour when read as bool)
  if (dt == DType::Bool)
    for (size_t i = 0; i < nbytes; ++i) p[i] &= 1;
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader r(data, size);
  std::span<const OpDef> defs = all_ops();
  const OpDef& def = defs[r.u16() % defs.size()];
  // `print` writes to stdout on every run, `call` needs a compiled function object
  if (def.name == "print") return 0;
  for (const AttrSpec& spec : def.attrs)
    if (spec.kind == AttrKind::Object) return 0;

  uint8_t mode = r.u8();
  size_t n_inputs = def.num_inputs >= 0 ? size_t(def.num_inputs) : size_t(r.u8() % 5);
  if (mode == 255) n_inputs = r.u8() % 4;  // sometimes the wrong count
  std::vector<Tensor> inputs;
  Attrs attrs;
  try {
    for (size_t i = 0; i < n_inputs; ++i) inputs.push_back(draw_tensor(r));
    for (const AttrSpec& spec : def.attrs) {
      uint8_t a = r.u8();
      if (!spec.required && (a & 3) == 0) continue;
      if (a == 255) continue;                                                    // a missing required attribute
      AttrKind kind = a == 254 ? static_cast<AttrKind>(r.u8() % 6) : spec.kind;  // sometimes the wrong kind
      attrs.set(spec.name, draw_attr(r, kind));
    }
  } catch (const Error&) {
    return 0;
  }

  CheckLevel level;
  LevelScope scope(level);
  try {
    TensorList out = apply(def.id, attrs, inputs);
    (void)out;
  } catch (const Error&) {
  } catch (const TooLarge&) {
  }
  return 0;
}
