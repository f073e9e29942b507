// safetensors encoding and decoding with nlohmann::json for the header.
#include "runtime/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>

#include "runtime/errors.h"
#include "runtime/file_io.h"

namespace kiln::safetensors {

// The format is little-endian; Kiln's tensors use the host order.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using nlohmann::json;

struct Code {
  const char* code;
  DType dtype;
};
constexpr Code kCodes[] = {{"BOOL", bool_},   {"U8", uint8},    {"I8", int8},     {"U16", uint16},  {"I16", int16},
                           {"U32", uint32},   {"I32", int32},   {"U64", uint64},  {"I64", int64},   {"F16", float16},
                           {"BF16", bfloat16}, {"F32", float32}, {"F64", float64}};

// A header entry after validation.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

struct Header {
  std::vector<Entry> entries;  // sorted by name
  Metadata metadata;
  uint64_t data_start = 0;
};

template <class... A>
[[noreturn]] void corrupt(const std::string& where, A&&... args) {
  fail<DataLoss>("safetensors", where, std::forward<A>(args)...);
}

DType dtype_of_code(const std::string& where, const std::string& name, const std::string& code) {
  for (const Code& c : kCodes)
    if (code == c.code) return c.dtype;
  static const char* const kKnownElsewhere[] = {"F8_E4M3", "F8_E5M2", "C64", "F4", "F6_E2M3", "F6_E3M2", "E8M0"};
  for (const char* k : kKnownElsewhere)
    if (code == k) fail<Unimplemented>("safetensors", where, "tensor '", name, "' has dtype ", code, ", which Kiln does not support");
  corrupt(where, "tensor '", name, "' has an unknown dtype '", code.substr(0, 32), "'");
}

uint64_t to_u64(const std::string& where, const std::string& name, const char* field, const json& v) {
  if (!v.is_number_unsigned()) corrupt(where, "tensor '", name, "': ", field, " must hold non-negative integers");
  return v.get<uint64_t>();
}

Header parse_header(std::string_view bytes, const std::string& where) {
  if (bytes.size() < 8) corrupt(where, "the file has ", bytes.size(), " bytes, fewer than the 8-byte header length");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  uint64_t available = bytes.size() - 8;
  if (n > kMaxHeaderBytes) corrupt(where, "the header length ", n, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  if (n > available) corrupt(where, "the header length ", n, " runs past the end of the file (", available, " bytes follow)");
  std::string_view text = bytes.substr(8, size_t(n));
  if (text.empty() || text[0] != '{') corrupt(where, "the header does not start with '{'");
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    corrupt(where, "the header is not valid JSON: ", e.what());
  }
  if (!j.is_object()) corrupt(where, "the header is not a JSON object");
  Header h;
  h.data_start = 8 + n;
  uint64_t data_size = available - n;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) corrupt(where, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) corrupt(where, "__metadata__ value of '", m.key(), "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || v.size() != 3 || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      corrupt(where, "tensor '", name, "' must be an object with exactly dtype, shape and data_offsets");
    if (!v["dtype"].is_string()) corrupt(where, "tensor '", name, "': dtype is not a string");
    const json& shape = v["shape"];
    const json& offs = v["data_offsets"];
    if (!shape.is_array() || shape.size() > 64) corrupt(where, "tensor '", name, "': shape is not an array of at most 64 dims");
    if (!offs.is_array() || offs.size() != 2) corrupt(where, "tensor '", name, "': data_offsets is not [begin, end]");
    Entry e{name, dtype_of_code(where, name, v["dtype"].get<std::string>()), {}, 0, 0};
    uint64_t numel = 1;
    bool overflow = false;
    std::vector<int64_t> dims;
    for (const json& d : shape) {
      uint64_t x = to_u64(where, name, "shape", d);
      if (x > uint64_t(INT64_MAX)) corrupt(where, "tensor '", name, "': dim ", x, " is too large");
      dims.push_back(int64_t(x));
      if (x != 0 && numel > uint64_t(INT64_MAX) / x) overflow = true;
      numel *= x;
    }
    uint64_t esize = dtype_size(e.dtype);
    if (overflow || numel > uint64_t(INT64_MAX) / esize)
      corrupt(where, "tensor '", name, "': the element count of its shape overflows");
    e.shape = Shape(dims);
    e.begin = to_u64(where, name, "data_offsets", offs[0]);
    e.end = to_u64(where, name, "data_offsets", offs[1]);
    if (e.begin > e.end || e.end > data_size)
      corrupt(where, "tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] lie outside the ", data_size,
              " data bytes");
    if (e.end - e.begin != numel * esize)
      corrupt(where, "tensor '", name, "': data_offsets cover ", e.end - e.begin, " bytes but ", dtype_name(e.dtype),
              " shape ", e.shape.to_string(), " needs ", numel * esize);
    h.entries.push_back(std::move(e));
  }
  // the data must be exactly the tensors' bytes: no overlaps, no gaps, nothing after
  std::vector<const Entry*> by_offset;
  for (const Entry& e : h.entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t at = 0;
  for (const Entry* e : by_offset) {
    if (e->begin != at)
      corrupt(where, "tensor '", e->name, "' starts at data byte ", e->begin, " but the previous data ends at ", at,
              " (overlap or gap)");
    at = e->end;
  }
  if (at != data_size) corrupt(where, "the tensors cover ", at, " data bytes but the file holds ", data_size);
  return h;
}

std::string where_of(const std::string& path) { return path.empty() ? std::string() : "file '" + path + "': "; }

Contents decode_at(std::string_view bytes, const std::string& where) {
  Header h = parse_header(bytes, where);
  Contents c;
  c.metadata = std::move(h.metadata);
  for (Entry& e : h.entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.mutable_raw_data(), bytes.data() + h.data_start + e.begin, e.end - e.begin);
    if (e.dtype == bool_) {
      // bytes other than 0 and 1 are not valid C++ bools (UBSan): normalize them
      auto* p = static_cast<unsigned char*>(t.mutable_raw_data());
      for (uint64_t i = 0; i < e.end - e.begin; ++i) p[i] = p[i] != 0;
    }
    c.tensors.emplace_back(std::move(e.name), std::move(t));
  }
  return c;
}

}  // namespace

std::string_view dtype_code(DType d) {
  for (const Code& c : kCodes)
    if (c.dtype == d) return c.code;
  fail<Unimplemented>("safetensors", "the format has no dtype for ", dtype_name(d));
}

const Tensor* Contents::find(std::string_view name) const {
  for (auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

std::string encode(const std::vector<std::pair<std::string, Tensor>>& tensors, const Metadata& metadata) {
  std::vector<const std::pair<std::string, Tensor>*> sorted;
  for (auto& p : tensors) {
    if (p.first.empty()) fail<InvalidArgument>("safetensors", "a tensor name is empty");
    if (p.first == "__metadata__") fail<InvalidArgument>("safetensors", "the name '__metadata__' is reserved");
    const Tensor& t = p.second;
    if (!t.defined()) fail<FailedPrecondition>("safetensors", "tensor '", p.first, "' is undefined (None)");
    if (t.is_symbolic())
      fail<FailedPrecondition>("safetensors", "tensor '", p.first, "' is symbolic (made by a trace): it has no value");
    if (t.device().type != DeviceType::CPU)
      fail<InvalidArgument>("safetensors", "tensor '", p.first, "' lives on ", t.device().to_string(),
                            "; copy it to the CPU first");
    dtype_code(t.dtype());
    sorted.push_back(&p);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->first == sorted[i - 1]->first)
      fail<InvalidArgument>("safetensors", "the tensor name '", sorted[i]->first, "' appears twice");
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t at = 0;
  for (auto* p : sorted) {
    const Tensor& t = p->second;
    nlohmann::ordered_json e;
    e["dtype"] = dtype_code(t.dtype());
    e["shape"] = nlohmann::ordered_json::array();
    for (int64_t d : t.shape().as_list()) e["shape"].push_back(d);
    e["data_offsets"] = {at, at + t.nbytes()};
    at += t.nbytes();
    h[p->first] = std::move(e);
  }
  std::string text = h.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  out.reserve(8 + text.size() + at);
  out += text;
  for (auto* p : sorted) out.append(static_cast<const char*>(p->second.raw_data()), p->second.nbytes());
  return out;
}

Contents decode(std::string_view bytes) { return decode_at(bytes, {}); }

std::pair<std::vector<TensorInfo>, Metadata> decode_header(std::string_view bytes) {
  Header h = parse_header(bytes, {});
  std::vector<TensorInfo> out;
  for (Entry& e : h.entries) out.push_back({std::move(e.name), e.dtype, std::move(e.shape)});
  return {std::move(out), std::move(h.metadata)};
}

void save(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
          const Metadata& metadata) {
  io::write_file_atomic(path, encode(tensors, metadata), "safetensors");
}

Contents load(const std::string& path) { return decode_at(io::read_file(path, "safetensors"), where_of(path)); }

}  // namespace kiln::safetensors
