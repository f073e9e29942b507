// String ops: split, bytes_split, to_number, length, join, substr, lower/upper, decode_raw and the
// UTF-8 ops (unicode_split, unicode_decode, unicode_encode), plus ragged_value_rowids. Ops whose
// result is ragged return (values, row_splits) pairs; kiln::strings wraps them in RaggedTensors.
#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "ops/defs/elementwise_common.h"
#include "runtime/string_tensor.h"

namespace kiln::ops {
namespace {

// ---------------------------------------------------------------------------------------------
// Shared checks and helpers

void check_string(const OpDef& def, const Tensor& t, std::string_view what) {
  if (t.dtype() != DType::String)
    fail<InvalidArgument>(def.name, what, " must be a string tensor, got dtype ", dtype_name(t.dtype()));
}

std::string attr_string_or(const Attrs& attrs, std::string_view name, std::string_view dflt) {
  return attrs.has(name) ? attrs.get_string(name) : std::string(dflt);
}

// The element's position for messages: "" for a scalar, " at [1, 0]" otherwise.
std::string where_in(int64_t i, const Shape& s) {
  return s.rank() == 0 ? std::string() : " at " + multi_index_string(i, s);
}

// A tensor of int64 values from a host vector.
Tensor int64_tensor(const std::vector<int64_t>& v) {
  Tensor t = Tensor::empty(Shape{static_cast<int64_t>(v.size())}, DType::Int64);
  if (!v.empty()) std::memcpy(t.mutable_raw_data(), v.data(), v.size() * sizeof(int64_t));
  return t;
}

// Ops that turn each element of a scalar or vector into a list of parts: outputs are the parts
// (flat) and int64 row splits with one row per element (one row for a scalar).
TypeList ragged_result_types(const OpDef& def, const Tensor& x, DType values_dtype) {
  if (x.ndim() > 1)
    fail<InvalidArgument>(def.name, "input must be a scalar or a vector, got shape ", x.shape().to_string(),
                          " (reshape it to a vector first)");
  const int64_t rows = x.ndim() == 0 ? 1 : x.shape().dim(0);
  return {TensorType{values_dtype, Shape{kUnknownDim}}, TensorType{DType::Int64, Shape{rows < 0 ? rows : rows + 1}}};
}

// ---------------------------------------------------------------------------------------------
// UTF-8

enum class Errors { Replace, Ignore, Strict };

Errors parse_errors(const OpDef& def, const Attrs& attrs) {
  const std::string e = attr_string_or(attrs, "errors", "replace");
  if (e == "replace") return Errors::Replace;
  if (e == "ignore") return Errors::Ignore;
  if (e == "strict") return Errors::Strict;
  fail<InvalidArgument>(def.name, "errors must be 'replace', 'ignore' or 'strict', got '", e, "'");
}

void check_encoding(const OpDef& def, const Attrs& attrs, std::string_view name) {
  const std::string enc = attr_string_or(attrs, name, "UTF-8");
  if (enc != "UTF-8" && enc != "utf-8" && enc != "UTF8")
    fail<InvalidArgument>(def.name, name, " '", enc, "' is not supported (only UTF-8)");
}

int64_t replacement_char(const OpDef& def, const Attrs& attrs) {
  const int64_t r = attrs.get_int_or("replacement_char", 0xFFFD);
  if (r < 0 || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
    fail<InvalidArgument>(def.name, "replacement_char ", r, " is not a valid code point");
  return r;
}

struct Decoded {
  int32_t cp;  // -1: an invalid sequence
  int len;     // bytes consumed (the maximal invalid subpart when cp is -1), >= 1
};

// One code point at p (n > 0 bytes left), following the Unicode standard's well-formed byte
// sequences (Table 3-7); an invalid sequence consumes its maximal subpart, as ICU does.
Decoded next_utf8(const unsigned char* p, size_t n) {
  const unsigned c = p[0];
  if (c < 0x80) return {static_cast<int32_t>(c), 1};
  int need;
  unsigned lo = 0x80, hi = 0xBF;
  int32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
    cp = static_cast<int32_t>(c & 0x1F);
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    cp = static_cast<int32_t>(c & 0x0F);
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    cp = static_cast<int32_t>(c & 0x07);
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return {-1, 1};
  }
  for (int k = 1; k <= need; ++k) {
    if (static_cast<size_t>(k) >= n) return {-1, k};
    const unsigned b = p[k];
    if (b < lo || b > hi) return {-1, k};
    lo = 0x80;
    hi = 0xBF;
    cp = (cp << 6) | static_cast<int32_t>(b & 0x3F);
  }
  return {cp, need + 1};
}

bool valid_code_point(int64_t cp) { return cp >= 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF); }

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

[[noreturn]] void invalid_utf8(const OpDef& def, std::string_view s, size_t at, int64_t elem, const Shape& shape) {
  fail<InvalidArgument>(def.name, "invalid UTF-8 at byte ", at, " of ", bytes_repr(s), where_in(elem, shape),
                        " (errors='strict'; use errors='replace' or 'ignore' to accept it)");
}

// Calls f(code point or -1, byte offset, byte length) for each character of s.
template <class F>
void for_each_char(std::string_view s, F&& f) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    const Decoded d = next_utf8(p + i, s.size() - i);
    f(d.cp, i, static_cast<size_t>(d.len));
    i += static_cast<size_t>(d.len);
  }
}

// ---------------------------------------------------------------------------------------------
// string_split

TypeList infer_split(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  check_string(def, in[0], "input");
  if (attrs.get_int_or("maxsplit", -1) < -1)
    fail<InvalidArgument>(def.name, "maxsplit must be -1 (no limit) or >= 0, got ", attrs.get_int("maxsplit"));
  return ragged_result_types(def, in[0], DType::String);
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

void kernel_split(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const std::string sep = attr_string_or(ctx.attrs, "sep", "");
  const int64_t maxsplit = ctx.attrs.get_int_or("maxsplit", -1);
  StringTensorBuilder parts;
  std::vector<int64_t> splits{0};
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    std::string_view s = string_at(x, i);
    int64_t done = 0;
    if (sep.empty()) {
      // Python's str.split(): runs of whitespace separate, no empty parts
      size_t k = 0;
      while (true) {
        while (k < s.size() && is_space(s[k])) ++k;
        if (k == s.size()) break;
        if (maxsplit >= 0 && done == maxsplit) {
          size_t e = s.size();
          while (e > k && is_space(s[e - 1])) --e;
          parts.add(s.substr(k, e - k));
          break;
        }
        size_t e = k;
        while (e < s.size() && !is_space(s[e])) ++e;
        parts.add(s.substr(k, e - k));
        ++done;
        k = e;
      }
    } else {
      // an explicit separator keeps empty parts ("" gives [""]), as Python's str.split(sep)
      size_t k = 0;
      while (true) {
        const size_t e = (maxsplit >= 0 && done == maxsplit) ? std::string_view::npos : s.find(sep, k);
        if (e == std::string_view::npos) {
          parts.add(s.substr(k));
          break;
        }
        parts.add(s.substr(k, e - k));
        ++done;
        k = e + sep.size();
      }
    }
    splits.push_back(parts.size());
  }
  ctx.set_output(0, parts.finish(Shape{parts.size()}, ctx.def.name));
  ctx.set_output(1, int64_tensor(splits));
}

// ---------------------------------------------------------------------------------------------
// string_bytes_split

TypeList infer_bytes_split(const OpDef& def, const Attrs&, std::span<const Tensor> in) {
  check_string(def, in[0], "input");
  return ragged_result_types(def, in[0], DType::String);
}

void kernel_bytes_split(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  StringTensorBuilder parts;
  std::vector<int64_t> splits{0};
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    for (char c : string_at(x, i)) parts.add(std::string_view(&c, 1));
    splits.push_back(parts.size());
  }
  ctx.set_output(0, parts.finish(Shape{parts.size()}, ctx.def.name));
  ctx.set_output(1, int64_tensor(splits));
}

// ---------------------------------------------------------------------------------------------
// string_to_number

TypeList infer_to_number(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  check_string(def, in[0], "input");
  const DType t = attrs.get_type("out_type");
  if (t != DType::Float32 && t != DType::Float64 && t != DType::Int32 && t != DType::Int64)
    fail<InvalidArgument>(def.name, "out_type must be float32, float64, int32 or int64, got ", dtype_name(t));
  return {TensorType{t, in[0].shape()}};
}

template <class T>
bool parse_number(std::string_view s, T& out) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  if (s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if constexpr (std::is_integral_v<T>) {
    auto r = std::from_chars(b, e, out);
    return r.ec == std::errc() && r.ptr == e;
  } else {
    auto r = std::from_chars(b, e, out);
    if (r.ptr != e) return false;
    if (r.ec == std::errc()) return true;
    if (r.ec != std::errc::result_out_of_range) return false;
    // beyond the type's range: overflow gives +-inf and underflow zero, as TensorFlow's strtod;
    // the value is tiny when its exponent is negative or, without one, its integer part is zero
    const bool neg = s.front() == '-';
    std::string_view mant = s.substr(neg ? 1 : 0);
    const size_t ex = mant.find_first_of("eE");
    bool tiny;
    if (ex != std::string_view::npos) {
      tiny = ex + 1 < mant.size() && mant[ex + 1] == '-';
    } else {
      const std::string_view ip = mant.substr(0, mant.find('.'));
      tiny = ip.find_first_not_of('0') == std::string_view::npos;
    }
    out =
        tiny ? (neg ? -T(0) : T(0)) : (neg ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity());
    return true;
  }
}

void kernel_to_number(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  Tensor& out = ctx.output(0);
  visit_dtype(out.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, int32_t> ||
                  std::is_same_v<T, int64_t>) {
      T* o = static_cast<T*>(out.mutable_raw_data());
      for (int64_t i = 0; i < x.num_elements(); ++i) {
        const std::string_view s = string_at(x, i);
        if (!parse_number(s, o[i]))
          fail<InvalidArgument>(
              ctx.def.name, "cannot convert ", bytes_repr(s), where_in(i, x.shape()), " to ", dtype_name(out.dtype()),
              std::is_integral_v<T> ? ": it is not an integer in the type's range" : ": it is not a number");
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// string_length

int unit_is_chars(const OpDef& def, const Attrs& attrs) {
  const std::string unit = attr_string_or(attrs, "unit", "BYTE");
  if (unit == "BYTE") return 0;
  if (unit == "UTF8_CHAR") return 1;
  fail<InvalidArgument>(def.name, "unit must be 'BYTE' or 'UTF8_CHAR', got '", unit, "'");
}

TypeList infer_length(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  check_string(def, in[0], "input");
  unit_is_chars(def, attrs);
  return {TensorType{DType::Int32, in[0].shape()}};
}

int64_t char_count(std::string_view s) {
  int64_t n = 0;
  for_each_char(s, [&](int32_t, size_t, size_t) { ++n; });
  return n;
}

void kernel_length(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const bool chars = unit_is_chars(ctx.def, ctx.attrs);
  auto* o = static_cast<int32_t*>(ctx.output(0).mutable_raw_data());
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const std::string_view s = string_at(x, i);
    const int64_t n = chars ? char_count(s) : static_cast<int64_t>(s.size());
    if (n > std::numeric_limits<int32_t>::max())
      fail<InvalidArgument>(ctx.def.name, "element", where_in(i, x.shape()), " has ", n,
                            " units, more than int32 holds");
    o[i] = static_cast<int32_t>(n);
  }
}

// ---------------------------------------------------------------------------------------------
// string_join: elementwise concatenation of several string tensors (broadcast) with a separator

TypeList infer_join(const OpDef& def, const Attrs&, std::span<const Tensor> in) {
  if (in.empty()) fail<InvalidArgument>(def.name, "needs at least one input");
  Shape out = in[0].shape();
  for (size_t k = 0; k < in.size(); ++k) {
    check_string(def, in[k], "input " + std::to_string(k));
    out = broadcast_shapes(def.name, out, in[k].shape());
  }
  return {TensorType{DType::String, out}};
}

void kernel_join(KernelContext& ctx) {
  const Shape& out = ctx.types[0].shape;
  const std::string sep = attr_string_or(ctx.attrs, "separator", "");
  const int64_t n = out.num_elements();
  // per input: row-major strides in the output's index space (0 along broadcast axes)
  std::vector<SmallVector<int64_t, 6>> strides;
  for (const Tensor& t : ctx.inputs) {
    SmallVector<int64_t, 6> st(static_cast<size_t>(out.rank()), 0);
    const SmallVector<int64_t, 6> own = contiguous_strides(t.shape());
    const int64_t off = out.rank() - t.ndim();
    for (int64_t a = 0; a < t.ndim(); ++a)
      st[size_t(a + off)] = t.shape().dim(size_t(a)) == 1 ? 0 : own[static_cast<int64_t>(a)];
    strides.push_back(st);
  }
  StringTensorBuilder b;
  std::vector<int64_t> idx(static_cast<size_t>(out.rank()), 0);
  for (int64_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < ctx.inputs.size(); ++k) {
      int64_t flat = 0;
      for (size_t a = 0; a < idx.size(); ++a) flat += idx[a] * strides[k][a];
      if (k) b.append(sep);
      b.append(string_at(ctx.inputs[k], flat));
    }
    b.end_element();
    for (int64_t a = out.rank() - 1; a >= 0; --a) {
      if (++idx[size_t(a)] < out.dim(size_t(a))) break;
      idx[size_t(a)] = 0;
    }
  }
  ctx.set_output(0, b.finish(out, ctx.def.name));
}

// ---------------------------------------------------------------------------------------------
// string_substr

TypeList infer_substr(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  check_string(def, in[0], "input");
  unit_is_chars(def, attrs);
  if (attrs.get_int("len") < 0) fail<InvalidArgument>(def.name, "len must be non-negative, got ", attrs.get_int("len"));
  return {TensorType{DType::String, in[0].shape()}};
}

void kernel_substr(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const int64_t pos = ctx.attrs.get_int("pos"), len = ctx.attrs.get_int("len");
  const bool chars = unit_is_chars(ctx.def, ctx.attrs);
  StringTensorBuilder b;
  std::vector<size_t> starts;  // byte offset of each character, and the end
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const std::string_view s = string_at(x, i);
    starts.clear();
    if (chars) for_each_char(s, [&](int32_t, size_t at, size_t) { starts.push_back(at); });
    const int64_t units = chars ? static_cast<int64_t>(starts.size()) : static_cast<int64_t>(s.size());
    starts.push_back(s.size());
    if (pos > units || pos < -units)
      fail<InvalidArgument>(ctx.def.name, "pos ", pos, " is out of range for ", bytes_repr(s), where_in(i, x.shape()),
                            " (", units, chars ? " characters)" : " bytes)");
    const int64_t p = pos < 0 ? pos + units : pos;
    const int64_t e = p + std::min(len, units - p);
    const size_t bp = chars ? starts[size_t(p)] : size_t(p), be = chars ? starts[size_t(e)] : size_t(e);
    b.add(s.substr(bp, be - bp));
  }
  ctx.set_output(0, b.finish(x.shape(), ctx.def.name));
}

// ---------------------------------------------------------------------------------------------
// string_lower / string_upper (ASCII letters, as TensorFlow without an encoding)

TypeList infer_same_strings(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  check_string(def, in[0], "input");
  const std::string enc = attr_string_or(attrs, "encoding", "");
  if (!enc.empty() && enc != "utf-8" && enc != "UTF-8")
    fail<InvalidArgument>(def.name, "encoding must be '' or 'utf-8', got '", enc, "'");
  return {TensorType{DType::String, in[0].shape()}};
}

template <bool Upper>
void kernel_case(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  StringTensorBuilder b;
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    for (char c : string_at(x, i)) {
      if (Upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      if (!Upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      b.append(c);
    }
    b.end_element();
  }
  ctx.set_output(0, b.finish(x.shape(), ctx.def.name));
}

// ---------------------------------------------------------------------------------------------
// decode_raw: the bytes of each string reinterpreted as numbers

TypeList infer_decode_raw(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  check_string(def, in[0], "bytes");
  const DType t = attrs.get_type("out_type");
  if (t == DType::String) fail<InvalidArgument>(def.name, "out_type must be a numeric dtype or bool, got string");
  Shape out = in[0].shape();
  // the last dim is the common byte length / element size, known when the op runs
  out.push_back(kUnknownDim);
  return {TensorType{t, out}};
}

void kernel_decode_raw(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const DType t = ctx.types[0].dtype;
  const size_t es = static_cast<size_t>(dtype_size(t));
  const bool little = ctx.attrs.get_bool_or("little_endian", true);
  const int64_t n = x.num_elements();
  size_t bytes = n > 0 ? string_at(x, 0).size() : 0;
  for (int64_t i = 0; i < n; ++i) {
    const size_t len = string_at(x, i).size();
    if (len != bytes)
      fail<InvalidArgument>(ctx.def.name, "every string must have the same length, but element", where_in(i, x.shape()),
                            " has ", len, " bytes and element", where_in(0, x.shape()), " has ", bytes);
  }
  if (bytes % es != 0)
    fail<InvalidArgument>(ctx.def.name, "the input has ", bytes, " bytes per string, which is not a multiple of ", es,
                          ", the size of ", dtype_name(t));
  Shape shape = x.shape();
  shape.push_back(static_cast<int64_t>(bytes / es));
  Tensor out = Tensor::empty(shape, t);
  char* o = static_cast<char*>(out.mutable_raw_data());
  const bool host_little = std::endian::native == std::endian::little;
  // complex values swap each part, not the whole pair
  const size_t unit = is_complex(t) ? es / 2 : es;
  for (int64_t i = 0; i < n; ++i) {
    const std::string_view s = string_at(x, i);
    char* dst = o + static_cast<size_t>(i) * bytes;
    if (bytes) std::memcpy(dst, s.data(), bytes);
    if (little != host_little && unit > 1)
      for (size_t k = 0; k < bytes; k += unit) std::reverse(dst + k, dst + k + unit);
  }
  if (t == DType::Bool)  // any nonzero byte is true; a bool object must hold 0 or 1
    for (size_t k = 0; k < static_cast<size_t>(out.num_elements()); ++k) o[k] = o[k] != 0;
  ctx.set_output(0, std::move(out));
}

// ---------------------------------------------------------------------------------------------
// unicode_split / unicode_decode

TypeList infer_unicode_split(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  check_string(def, in[0], "input");
  check_encoding(def, attrs, "input_encoding");
  parse_errors(def, attrs);
  return ragged_result_types(def, in[0], DType::String);
}

TypeList infer_unicode_decode(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  check_string(def, in[0], "input");
  check_encoding(def, attrs, "input_encoding");
  parse_errors(def, attrs);
  replacement_char(def, attrs);
  return ragged_result_types(def, in[0], DType::Int32);
}

void kernel_unicode_split(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const Errors errors = parse_errors(ctx.def, ctx.attrs);
  std::string repl;
  append_utf8(repl, static_cast<uint32_t>(ctx.attrs.get_int_or("replacement_char", 0xFFFD)));
  StringTensorBuilder parts;
  std::vector<int64_t> splits{0};
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const std::string_view s = string_at(x, i);
    for_each_char(s, [&](int32_t cp, size_t at, size_t len) {
      if (cp >= 0)
        parts.add(s.substr(at, len));
      else if (errors == Errors::Strict)
        invalid_utf8(ctx.def, s, at, i, x.shape());
      else if (errors == Errors::Replace)
        parts.add(repl);
    });
    splits.push_back(parts.size());
  }
  ctx.set_output(0, parts.finish(Shape{parts.size()}, ctx.def.name));
  ctx.set_output(1, int64_tensor(splits));
}

void kernel_unicode_decode(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const Errors errors = parse_errors(ctx.def, ctx.attrs);
  const auto repl = static_cast<int32_t>(replacement_char(ctx.def, ctx.attrs));
  std::vector<int32_t> cps;
  std::vector<int64_t> splits{0};
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const std::string_view s = string_at(x, i);
    for_each_char(s, [&](int32_t cp, size_t at, size_t) {
      if (cp >= 0)
        cps.push_back(cp);
      else if (errors == Errors::Strict)
        invalid_utf8(ctx.def, s, at, i, x.shape());
      else if (errors == Errors::Replace)
        cps.push_back(repl);
    });
    splits.push_back(static_cast<int64_t>(cps.size()));
  }
  Tensor values = Tensor::empty(Shape{static_cast<int64_t>(cps.size())}, DType::Int32);
  if (!cps.empty()) std::memcpy(values.mutable_raw_data(), cps.data(), cps.size() * sizeof(int32_t));
  ctx.set_output(0, std::move(values));
  ctx.set_output(1, int64_tensor(splits));
}

// ---------------------------------------------------------------------------------------------
// unicode_encode: rows of code points (values + row_splits) to one UTF-8 string per row

TypeList infer_unicode_encode(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor &cps = in[0], &splits = in[1];
  if (cps.dtype() != DType::Int32)
    fail<InvalidArgument>(def.name, "code points must be int32, got ", dtype_name(cps.dtype()));
  if (splits.dtype() != DType::Int64)
    fail<InvalidArgument>(def.name, "row_splits must be int64, got ", dtype_name(splits.dtype()));
  if (cps.ndim() != 1)
    fail<InvalidArgument>(def.name, "code points must be a vector, got shape ", cps.shape().to_string());
  if (splits.ndim() != 1 || splits.shape().dim(0) == 0)
    fail<InvalidArgument>(def.name, "row_splits must be a non-empty vector, got shape ", splits.shape().to_string());
  check_encoding(def, attrs, "output_encoding");
  parse_errors(def, attrs);
  replacement_char(def, attrs);
  const int64_t rows = splits.shape().dim(0);
  return {TensorType{DType::String, Shape{rows < 0 ? rows : rows - 1}}};
}

// Checks that row splits start at 0, never decrease and end at `nvals`.
void check_row_splits(const OpDef& def, const int64_t* sp, int64_t n, int64_t nvals) {
  if (sp[0] != 0) fail<InvalidArgument>(def.name, "row_splits must start at 0, got row_splits[0] = ", sp[0]);
  for (int64_t i = 1; i < n; ++i)
    if (sp[i] < sp[i - 1])
      fail<InvalidArgument>(def.name, "row_splits must not decrease, got row_splits[", i - 1, "] = ", sp[i - 1],
                            " and row_splits[", i, "] = ", sp[i]);
  if (sp[n - 1] != nvals)
    fail<InvalidArgument>(def.name, "row_splits end at ", sp[n - 1], " but there are ", nvals, " values");
}

void kernel_unicode_encode(KernelContext& ctx) {
  const Tensor &cps = ctx.inputs[0], &splits = ctx.inputs[1];
  const Errors errors = parse_errors(ctx.def, ctx.attrs);
  const auto repl = static_cast<uint32_t>(replacement_char(ctx.def, ctx.attrs));
  const auto* sp = static_cast<const int64_t*>(splits.raw_data());
  const int64_t n = splits.num_elements();
  check_row_splits(ctx.def, sp, n, cps.num_elements());
  const auto* cp = static_cast<const int32_t*>(cps.raw_data());
  StringTensorBuilder b;
  std::string row;
  for (int64_t r = 0; r + 1 < n; ++r) {
    row.clear();
    for (int64_t k = sp[r]; k < sp[r + 1]; ++k) {
      if (valid_code_point(cp[k]))
        append_utf8(row, static_cast<uint32_t>(cp[k]));
      else if (errors == Errors::Strict)
        fail<InvalidArgument>(ctx.def.name, "code point ", cp[k], " at position ", k,
                              " is not a valid Unicode scalar value (errors='strict')");
      else if (errors == Errors::Replace)
        append_utf8(row, repl);
    }
    b.add(row);
  }
  ctx.set_output(0, b.finish(Shape{n - 1}, ctx.def.name));
}

// ---------------------------------------------------------------------------------------------
// ragged_value_rowids: row_splits to the row id of each value. The output is sized by the
// values (input 1), never by the last split: hostile splits then fail the check against a count
// that already exists instead of asking for an arbitrary allocation.

TypeList infer_rowids(const OpDef& def, const Attrs&, std::span<const Tensor> in) {
  const Tensor &splits = in[0], &values = in[1];
  if (splits.dtype() != DType::Int64)
    fail<InvalidArgument>(def.name, "row_splits must be int64, got ", dtype_name(splits.dtype()));
  if (splits.ndim() != 1 || splits.shape().dim(0) == 0)
    fail<InvalidArgument>(def.name, "row_splits must be a non-empty vector, got shape ", splits.shape().to_string());
  if (values.ndim() == 0)
    fail<InvalidArgument>(def.name, "values must have at least one axis (one entry per value), got a scalar");
  return {TensorType{DType::Int64, Shape{values.shape().dim(0)}}};
}

void kernel_rowids(KernelContext& ctx) {
  const Tensor& splits = ctx.inputs[0];
  const auto* sp = static_cast<const int64_t*>(splits.raw_data());
  const int64_t n = splits.num_elements();
  const int64_t nvals = ctx.inputs[1].shape().dim(0);
  check_row_splits(ctx.def, sp, n, nvals);
  Tensor out = Tensor::empty(Shape{nvals}, DType::Int64);
  auto* o = static_cast<int64_t*>(out.mutable_raw_data());
  for (int64_t r = 0; r + 1 < n; ++r)
    for (int64_t k = sp[r]; k < sp[r + 1]; ++k) o[k] = r;
  ctx.set_output(0, std::move(out));
}

OpDef string_op(int num_inputs, std::vector<AttrSpec> attrs, InferFn infer, KernelFn kernel) {
  OpDef d;
  d.traits = kStrings;
  d.num_inputs = num_inputs;
  d.attrs = std::move(attrs);
  d.infer = infer;
  d.cpu_kernel = kernel;
  return d;
}

}  // namespace

OpDef define_StringSplit() {
  return string_op(1, {{"sep", AttrKind::String, false}, {"maxsplit", AttrKind::Int, false}}, infer_split,
                   kernel_split);
}
OpDef define_StringBytesSplit() { return string_op(1, {}, infer_bytes_split, kernel_bytes_split); }
OpDef define_StringToNumber() {
  return string_op(1, {{"out_type", AttrKind::Type}}, infer_to_number, kernel_to_number);
}
OpDef define_StringLength() { return string_op(1, {{"unit", AttrKind::String, false}}, infer_length, kernel_length); }
OpDef define_StringJoin() {
  OpDef d = string_op(-1, {{"separator", AttrKind::String, false}}, infer_join, kernel_join);
  d.traits |= kVariadic;
  return d;
}
OpDef define_StringSubstr() {
  return string_op(1, {{"pos", AttrKind::Int}, {"len", AttrKind::Int}, {"unit", AttrKind::String, false}}, infer_substr,
                   kernel_substr);
}
OpDef define_StringLower() {
  return string_op(1, {{"encoding", AttrKind::String, false}}, infer_same_strings, kernel_case<false>);
}
OpDef define_StringUpper() {
  return string_op(1, {{"encoding", AttrKind::String, false}}, infer_same_strings, kernel_case<true>);
}
OpDef define_DecodeRaw() {
  return string_op(1, {{"out_type", AttrKind::Type}, {"little_endian", AttrKind::Bool, false}}, infer_decode_raw,
                   kernel_decode_raw);
}
OpDef define_UnicodeSplit() {
  return string_op(1,
                   {{"input_encoding", AttrKind::String, false},
                    {"errors", AttrKind::String, false},
                    {"replacement_char", AttrKind::Int, false}},
                   infer_unicode_split, kernel_unicode_split);
}
OpDef define_UnicodeDecode() {
  return string_op(1,
                   {{"input_encoding", AttrKind::String, false},
                    {"errors", AttrKind::String, false},
                    {"replacement_char", AttrKind::Int, false}},
                   infer_unicode_decode, kernel_unicode_decode);
}
OpDef define_UnicodeEncode() {
  return string_op(2,
                   {{"output_encoding", AttrKind::String, false},
                    {"errors", AttrKind::String, false},
                    {"replacement_char", AttrKind::Int, false}},
                   infer_unicode_encode, kernel_unicode_encode);
}
OpDef define_RaggedValueRowIds() {
  OpDef d;
  d.num_inputs = 2;
  d.infer = infer_rowids;
  d.cpu_kernel = kernel_rowids;
  return d;
}

}  // namespace kiln::ops
