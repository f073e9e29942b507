// String tensor storage: offsets[numel + 1] (int64) then the bytes, in one storage block.
#include "runtime/string_tensor.h"

#include <cstring>

namespace kiln {
namespace {

// The same bound Tensor::empty keeps allocations under.
constexpr uint64_t kMaxBytes = uint64_t{1} << 46;

Tensor allocate_strings(std::string_view op, const Shape& shape, int64_t numel, uint64_t heap_bytes) {
  const uint64_t offset_bytes = (static_cast<uint64_t>(numel) + 1) * sizeof(int64_t);
  if (static_cast<uint64_t>(numel) > kMaxBytes / sizeof(int64_t) || heap_bytes > kMaxBytes - offset_bytes)
    fail<InvalidArgument>(op, "a string tensor of shape ", shape.to_list_string(), " with ", heap_bytes,
                          " bytes of text is more than can be allocated");
  Ref<TensorImpl> t(new TensorImpl());
  t->dtype = DType::String;
  t->shape = shape;
  t->numel = numel;
  t->storage = Storage::allocate(static_cast<size_t>(offset_bytes + heap_bytes), kCPU);
  t->device = kCPU;
  return Tensor(std::move(t));
}

int64_t checked_count(std::string_view op, const Shape& shape, size_t n) {
  checked_nbytes(op, shape, DType::String);  // negative dims and int64 overflow
  const int64_t numel = shape.num_elements();
  if (static_cast<uint64_t>(numel) != n)
    fail<InvalidArgument>(op, "got ", n, " strings for shape ", shape.to_string(), " (", numel, " elements)");
  return numel;
}

template <class S>
Tensor make_strings(const Shape& shape, std::span<const S> values) {
  const int64_t numel = checked_count("constant", shape, values.size());
  uint64_t bytes = 0;
  for (const S& s : values) bytes += s.size();
  Tensor t = allocate_strings("constant", shape, numel, bytes);
  auto* offsets = static_cast<int64_t*>(t.mutable_raw_data());
  char* heap = reinterpret_cast<char*>(offsets + numel + 1);
  int64_t at = 0;
  offsets[0] = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!values[i].empty()) std::memcpy(heap + at, values[i].data(), values[i].size());
    at += static_cast<int64_t>(values[i].size());
    offsets[i + 1] = at;
  }
  return t;
}

}  // namespace

Tensor make_string_tensor(const Shape& shape, std::span<const std::string_view> values) {
  return make_strings(shape, values);
}

Tensor make_string_tensor(const Shape& shape, std::span<const std::string> values) {
  return make_strings(shape, values);
}

std::string_view string_at(const Tensor& t, int64_t i) {
  if (t.dtype() != DType::String)
    fail<InvalidArgument>("string_at", "expected a string tensor, got dtype ", dtype_name(t.dtype()));
  const int64_t n = t.num_elements();
  if (i < 0 || i >= n) fail<OutOfRange>("string_at", "element ", i, " is not in [0, ", n, ")");
  const auto* offsets = static_cast<const int64_t*>(t.raw_data());
  const char* heap = reinterpret_cast<const char*>(offsets + n + 1);
  return std::string_view(heap + offsets[i], static_cast<size_t>(offsets[i + 1] - offsets[i]));
}

std::vector<std::string> string_values(const Tensor& t) {
  if (t.dtype() != DType::String)
    fail<InvalidArgument>("to_vector", "requested element type string but the tensor has dtype ",
                          dtype_name(t.dtype()));
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(t.num_elements()));
  for (int64_t i = 0; i < t.num_elements(); ++i) out.emplace_back(string_at(t, i));
  return out;
}

Tensor StringTensorBuilder::finish(const Shape& shape, std::string_view op) const {
  const int64_t numel = checked_count(op, shape, offsets_.size() - 1);
  Tensor t = allocate_strings(op, shape, numel, heap_.size());
  auto* offsets = static_cast<int64_t*>(t.mutable_raw_data());
  std::memcpy(offsets, offsets_.data(), offsets_.size() * sizeof(int64_t));
  if (!heap_.empty()) std::memcpy(reinterpret_cast<char*>(offsets + numel + 1), heap_.data(), heap_.size());
  return t;
}

std::string bytes_repr(std::string_view s) {
  const bool dq = s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos;
  const char quote = dq ? '"' : '\'';
  static constexpr char kHex[] = "0123456789abcdef";
  std::string r = "b";
  r += quote;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == quote || c == '\\') {
      r += '\\';
      r += ch;
    } else if (c == '\t') {
      r += "\\t";
    } else if (c == '\n') {
      r += "\\n";
    } else if (c == '\r') {
      r += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      r += "\\x";
      r += kHex[c >> 4];
      r += kHex[c & 15];
    } else {
      r += ch;
    }
  }
  r += quote;
  return r;
}

}  // namespace kiln
