// NumPy .npy encoding and decoding: the preamble, the header dict parser, byte-order and
// Fortran-order handling, and the file wrappers. Every size from the input is checked before use.
#include "runtime/npy.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "runtime/errors.h"

namespace kiln::npy {
namespace {

constexpr char kMagic[] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kMagicLen = sizeof(kMagic);
constexpr size_t kAlign = 64;
// np.save leaves room after the dict so the first axis can grow to 21 digits in place.
constexpr size_t kGrowthAxisMaxDigits = 21;
constexpr bool kHostLittle = std::endian::native == std::endian::little;

// Where the bytes came from, for messages: empty for decode(), "file 'x.npy': " for load().
struct Source {
  std::string prefix;
};

template <class Err = DataLoss, class... Args>
[[noreturn]] void npy_fail(const Source& src, Args&&... args) {
  fail<Err>("npy", src.prefix, std::forward<Args>(args)...);
}

// A byte as it should appear in a message: the character if printable, else \xNN.
std::string show_byte(unsigned char c) {
  if (c >= 0x20 && c < 0x7f) return std::string(1, static_cast<char>(c));
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string{'\\', 'x', kHex[c >> 4], kHex[c & 15]};
}

std::string show_bytes(std::string_view s, size_t max_len = 24) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_len; ++i) out += show_byte(static_cast<unsigned char>(s[i]));
  if (s.size() > max_len) out += "...";
  return out;
}

// ---------------------------------------------------------------------------------------------
// dtypes and descrs

std::string_view descr_of(DType d) {
  switch (d) {
    case DType::Bool:
      return "|b1";
    case DType::Int8:
      return "|i1";
    case DType::Int16:
      return "<i2";
    case DType::Int32:
      return "<i4";
    case DType::Int64:
      return "<i8";
    case DType::UInt8:
      return "|u1";
    case DType::UInt16:
      return "<u2";
    case DType::UInt32:
      return "<u4";
    case DType::UInt64:
      return "<u8";
    case DType::Float16:
      return "<f2";
    case DType::Float32:
      return "<f4";
    case DType::Float64:
      return "<f8";
    case DType::Complex64:
      return "<c8";
    case DType::Complex128:
      return "<c16";
    case DType::BFloat16:
      fail<Unimplemented>("npy", "cannot write dtype bfloat16: NumPy has no bfloat16 dtype (cast to float32 first)");
    default:
      fail<Unimplemented>("npy", "cannot write dtype ", dtype_name(d), " to .npy");
  }
}

// The size of the unit that byte order applies to: the element, or each half of a complex.
int swap_unit(DType d) { return is_complex(d) ? dtype_size(d) / 2 : dtype_size(d); }

struct Descr {
  DType dtype;
  bool swap;  // the file's byte order differs from the host's
};

Descr parse_descr(const Source& src, std::string_view descr) {
  char order = '=';
  std::string_view code = descr;
  if (!code.empty() && (code[0] == '<' || code[0] == '>' || code[0] == '=' || code[0] == '|')) {
    order = code[0];
    code.remove_prefix(1);
  }
  static constexpr std::pair<std::string_view, DType> kCodes[] = {
      {"b1", DType::Bool},    {"?", DType::Bool},       {"i1", DType::Int8},       {"i2", DType::Int16},
      {"i4", DType::Int32},   {"i8", DType::Int64},     {"u1", DType::UInt8},      {"u2", DType::UInt16},
      {"u4", DType::UInt32},  {"u8", DType::UInt64},    {"f2", DType::Float16},    {"f4", DType::Float32},
      {"f8", DType::Float64}, {"c8", DType::Complex64}, {"c16", DType::Complex128}};
  for (const auto& [c, d] : kCodes) {
    if (c != code) continue;
    // '|' (order not applicable) and '=' (the writer's native order) are read in the host's
    // order; only an explicit '<' or '>' that differs from the host swaps.
    bool file_little = order != '>';
    bool swap = dtype_size(d) > 1 && (order == '<' || order == '>') && file_little != kHostLittle;
    return {d, swap};
  }
  std::string_view why;
  char kind = code.empty() ? '\0' : code[0];
  if (kind == 'O')
    why = ": object arrays (pickled Python objects) are not supported";
  else if (kind == 'S' || kind == 'U' || kind == 'a')
    why = ": string arrays are not supported";
  else if (kind == 'V')
    why = ": raw void (and bfloat16-as-void) data is not self-describing";
  else if (kind == 'M' || kind == 'm')
    why = ": datetime and timedelta arrays are not supported";
  npy_fail<Unimplemented>(src, "unsupported descr '", show_bytes(descr, 40), "'", why,
                          "; Kiln reads bool, int8..int64, uint8..uint64, float16/32/64 and complex64/128");
}

// ---------------------------------------------------------------------------------------------
// The header dict: a Python literal like {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }

struct Header {
  DType dtype = DType::Float32;
  bool swap = false;
  bool fortran_order = false;
  Shape shape;
  int64_t numel = 0;
  size_t nbytes = 0;
};

class HeaderParser {
 public:
  HeaderParser(const Source& src, std::string_view text) : src_(src), s_(text) {}

  Header parse() {
    check_characters();
    skip_ws();
    if (!eat('{')) bad("the header is not a dict literal: expected '{'");
    std::optional<std::string_view> descr;
    std::optional<bool> fortran;
    std::optional<Shape> shape;
    skip_ws();
    while (!eat('}')) {
      if (at_end()) bad("the header dict is not closed by '}'");
      std::string_view key = parse_string("a dict key");
      skip_ws();
      if (!eat(':')) bad("expected ':' after key '", key, "'");
      skip_ws();
      if (key == "descr") {
        if (descr) bad("duplicate key 'descr'");
        if (peek() == '[') npy_fail<Unimplemented>(src_, "structured dtypes (a list 'descr') are not supported");
        descr = parse_string("'descr' (a dtype string)");
      } else if (key == "fortran_order") {
        if (fortran) bad("duplicate key 'fortran_order'");
        fortran = parse_bool();
      } else if (key == "shape") {
        if (shape) bad("duplicate key 'shape'");
        shape = parse_shape();
      } else {
        bad("unexpected key '", key, "' (a .npy header has exactly 'descr', 'fortran_order' and 'shape')");
      }
      skip_ws();
      if (eat(',')) {
        skip_ws();
      } else if (at_end()) {
        bad("the header dict is not closed by '}'");
      } else if (peek() != '}') {
        bad("expected ',' or '}' after the value of '", key, "'");
      }
    }
    skip_ws();
    if (!at_end()) bad("unexpected text after the header dict");
    if (!descr) npy_fail(src_, "the header has no 'descr' key");
    if (!fortran) npy_fail(src_, "the header has no 'fortran_order' key");
    if (!shape) npy_fail(src_, "the header has no 'shape' key");

    Header h;
    Descr d = parse_descr(src_, *descr);
    h.dtype = d.dtype;
    h.swap = d.swap;
    h.fortran_order = *fortran;
    h.shape = std::move(*shape);
    check_sizes(h);
    return h;
  }

 private:
  // Latin-1 (v1, v2) and UTF-8 (v3) allow more, but nothing Kiln accepts is outside ASCII, and
  // refusing control bytes early keeps messages printable.
  void check_characters() const {
    for (size_t i = 0; i < s_.size(); ++i) {
      auto c = static_cast<unsigned char>(s_[i]);
      if (c >= 0x80) npy_fail(src_, "the header is not ASCII: byte ", show_byte(c), " at header offset ", i);
      if (c < 0x20 && !is_ws(static_cast<char>(c)))
        npy_fail(src_, "the header has a control byte ", show_byte(c), " at header offset ", i);
    }
  }

  template <class... Args>
  [[noreturn]] void bad(Args&&... args) const {
    npy_fail(src_, "cannot parse the header dict: ", std::forward<Args>(args)..., " at header offset ", pos_, near());
  }
  std::string near() const {
    if (at_end()) return " (at its end)";
    std::string out = " (near \"";
    out += show_bytes(s_.substr(pos_), 20);
    out += "\")";
    return out;
  }

  static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }
  void skip_ws() {
    while (!at_end() && is_ws(s_[pos_])) ++pos_;
  }
  bool eat(char c) {
    if (peek() != c || at_end()) return false;
    ++pos_;
    return true;
  }

  // A quoted string without escapes (no supported key or descr needs one).
  std::string_view parse_string(const char* what) {
    char q = peek();
    if (q != '\'' && q != '"') bad("expected a quoted string for ", what);
    size_t start = ++pos_;
    while (!at_end() && s_[pos_] != q) {
      if (s_[pos_] == '\\') bad("escapes are not supported in strings");
      if (s_[pos_] == '\n') bad("unterminated string");
      ++pos_;
    }
    if (at_end()) bad("unterminated string");
    std::string_view out = s_.substr(start, pos_ - start);
    ++pos_;
    return out;
  }

  // The run of characters up to the next delimiter, for messages about a wrong value.
  std::string_view token() const {
    size_t e = pos_;
    while (e < s_.size() && !is_ws(s_[e]) && s_[e] != ',' && s_[e] != '}' && s_[e] != ')') ++e;
    return s_.substr(pos_, std::min<size_t>(e - pos_, 30));
  }

  bool parse_bool() {
    std::string_view t = token();
    if (t == "True" || t == "False") {
      pos_ += t.size();
      return t == "True";
    }
    npy_fail(src_, "'fortran_order' must be True or False, got '", t, "' at header offset ", pos_);
  }

  // A tuple of non-negative Python ints: (), (3,), (2, 3) or (2, 3,); Python 2's 3L is allowed.
  Shape parse_shape() {
    if (!eat('(')) npy_fail(src_, "'shape' must be a tuple of integers, got '", token(), "' at header offset ", pos_);
    Shape shape;
    bool trailing_comma = false;
    skip_ws();
    while (!eat(')')) {
      if (at_end()) bad("the 'shape' tuple is not closed by ')'");
      shape.push_back(parse_dim());
      skip_ws();
      trailing_comma = eat(',');
      skip_ws();
      if (!trailing_comma && peek() != ')') bad("expected ',' or ')' in 'shape'");
    }
    // "(3)" is the integer 3 in Python, not a tuple.
    if (shape.rank() == 1 && !trailing_comma)
      npy_fail(src_, "'shape' must be a tuple, got the parenthesized integer (", shape.dim(0), ")");
    return shape;
  }

  int64_t parse_dim() {
    size_t start = pos_;
    bool negative = eat('-');
    if (!negative) eat('+');
    if (!is_digit(peek())) {
      pos_ = start;
      npy_fail(src_, "'shape' dims must be integers, got '", token(), "' at header offset ", pos_);
    }
    uint64_t v = 0;
    bool overflow = false;
    while (is_digit(peek())) {
      auto digit = static_cast<uint64_t>(s_[pos_] - '0');
      if (v > (uint64_t{INT64_MAX} - digit) / 10) overflow = true;
      if (!overflow) v = v * 10 + digit;
      ++pos_;
    }
    if (peek() == 'L' || peek() == 'l') ++pos_;
    char next = peek();
    if (!at_end() && !is_ws(next) && next != ',' && next != ')') {
      pos_ = start;
      npy_fail(src_, "'shape' dims must be integers, got '", token(), "' at header offset ", pos_);
    }
    std::string_view text = s_.substr(start, pos_ - start);
    if (negative && (v != 0 || overflow)) npy_fail(src_, "'shape' has a negative dimension ", text);
    if (overflow) npy_fail(src_, "'shape' has a dimension too large for int64: ", text);
    return static_cast<int64_t>(v);
  }

  // Element and byte counts. Shapes whose nonzero dims multiply past int64 are refused even when
  // another dim is 0: their strides would overflow in every op that later touches them.
  void check_sizes(Header& h) const {
    int64_t nonzero_product = 1;
    for (int64_t d : h.shape) {
      if (d == 0) continue;
      if (nonzero_product > INT64_MAX / d)
        npy_fail(src_, "the element count of shape ", h.shape.to_string(), " overflows int64");
      nonzero_product *= d;
    }
    h.numel = h.shape.num_elements();
    auto es = static_cast<uint64_t>(dtype_size(h.dtype));
    if (static_cast<uint64_t>(h.numel) > std::numeric_limits<size_t>::max() / es)
      npy_fail(src_, "shape ", h.shape.to_string(), " of ", dtype_name(h.dtype),
               " needs more bytes than fit in memory");
    h.nbytes = static_cast<size_t>(h.numel) * static_cast<size_t>(es);
  }

  const Source& src_;
  std::string_view s_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The preamble: magic, version, header length.

struct Preamble {
  size_t header_offset = 0;  // where the header text starts
  size_t header_len = 0;
};

// Needs the first min(total, 12) bytes in `head`; `total` is the size of the whole input.
Preamble parse_preamble(const Source& src, std::string_view head, uint64_t total) {
  size_t have_magic = std::min<size_t>(head.size(), kMagicLen);
  if (have_magic && std::memcmp(head.data(), kMagic, have_magic) != 0)
    npy_fail(src, "bad magic: .npy data starts with \\x93NUMPY, got \"", show_bytes(head.substr(0, 8)), "\"");
  if (total < kMagicLen + 2)
    npy_fail(src, "truncated: ", total, " bytes is too short for the magic string and version");
  auto major = static_cast<unsigned char>(head[6]);
  auto minor = static_cast<unsigned char>(head[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    npy_fail<Unimplemented>(src, "unsupported .npy format version ", int{major}, ".", int{minor},
                            " (Kiln reads 1.0, 2.0 and 3.0)");
  size_t len_size = major == 1 ? 2 : 4;
  Preamble p;
  p.header_offset = kMagicLen + 2 + len_size;
  if (total < p.header_offset)
    npy_fail(src, "truncated: ", total, " bytes is too short for the version ", int{major}, ".0 header length field");
  uint64_t len = 0;
  for (size_t i = 0; i < len_size; ++i) len |= uint64_t{static_cast<unsigned char>(head[8 + i])} << (8 * i);
  if (len > total - p.header_offset)
    npy_fail(src, "the header length ", len, " goes past the end of the data (only ", total - p.header_offset,
             " bytes follow the preamble)");
  p.header_len = static_cast<size_t>(len);
  return p;
}

void check_data_size(const Source& src, const Header& h, uint64_t available) {
  if (available < h.nbytes)
    npy_fail(src, "truncated data: shape ", h.shape.to_string(), " of ", dtype_name(h.dtype), " needs ", h.nbytes,
             " bytes but only ", available, " follow the header");
  if (available > h.nbytes)
    npy_fail(src, available - h.nbytes, " trailing bytes after the data of shape ", h.shape.to_string(), " of ",
             dtype_name(h.dtype), " (", h.nbytes, " bytes expected)");
}

// ---------------------------------------------------------------------------------------------
// Data layout fixes applied after the raw bytes are in memory.

template <class U>
void swap_units(char* p, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    U v;
    std::memcpy(&v, p + i * sizeof(U), sizeof(U));
    if constexpr (sizeof(U) == 2)
      v = __builtin_bswap16(v);
    else if constexpr (sizeof(U) == 4)
      v = __builtin_bswap32(v);
    else
      v = __builtin_bswap64(v);
    std::memcpy(p + i * sizeof(U), &v, sizeof(U));
  }
}

void byte_swap(char* p, DType d, int64_t numel) {
  int unit = swap_unit(d);
  auto count = static_cast<size_t>(numel) * static_cast<size_t>(dtype_size(d) / unit);
  if (unit == 2)
    swap_units<uint16_t>(p, count);
  else if (unit == 4)
    swap_units<uint32_t>(p, count);
  else if (unit == 8)
    swap_units<uint64_t>(p, count);
}

// Copies a Fortran-ordered (first axis fastest) array into row-major order, walking the
// destination in order with an odometer over the source strides.
template <size_t N>
void fortran_to_c(const char* src, char* dst, const Shape& shape) {
  auto rank = static_cast<size_t>(shape.rank());
  std::vector<int64_t> fstride(rank), index(rank, 0);
  int64_t s = 1;
  for (size_t k = 0; k < rank; ++k) {
    fstride[k] = s;
    s *= shape.dim(k);
  }
  int64_t numel = s;
  int64_t off = 0;  // source element offset of `index`
  for (int64_t i = 0; i < numel; ++i) {
    std::memcpy(dst + static_cast<size_t>(i) * N, src + static_cast<size_t>(off) * N, N);
    for (size_t k = rank; k-- > 0;) {
      if (++index[k] < shape.dim(k)) {
        off += fstride[k];
        break;
      }
      off -= fstride[k] * (index[k] - 1);
      index[k] = 0;
    }
  }
}

// Turns a tensor holding the file's data bytes into the result: transposes Fortran order,
// swaps byte order and normalizes bools (a bool byte other than 0/1 is undefined in C++).
Tensor finish(const Header& h, Tensor raw) {
  Tensor out = raw;
  if (h.fortran_order && h.shape.rank() > 1 && h.numel > 0) {
    out = Tensor::empty(h.shape, h.dtype);
    const char* s = static_cast<const char*>(raw.raw_data());
    char* d = static_cast<char*>(out.mutable_raw_data());
    switch (dtype_size(h.dtype)) {
      case 1:
        fortran_to_c<1>(s, d, h.shape);
        break;
      case 2:
        fortran_to_c<2>(s, d, h.shape);
        break;
      case 4:
        fortran_to_c<4>(s, d, h.shape);
        break;
      case 8:
        fortran_to_c<8>(s, d, h.shape);
        break;
      default:
        fortran_to_c<16>(s, d, h.shape);
        break;
    }
  }
  char* p = static_cast<char*>(out.mutable_raw_data());
  if (h.swap) byte_swap(p, h.dtype, h.numel);
  if (h.dtype == DType::Bool) {
    auto* b = reinterpret_cast<unsigned char*>(p);
    for (int64_t i = 0; i < h.numel; ++i) b[i] = b[i] != 0;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Encoding

void check_writable(const Tensor& t) {
  if (!t.defined()) fail<FailedPrecondition>("npy", "cannot write an undefined (None) tensor");
  if (t.is_symbolic())
    fail<FailedPrecondition>("npy", "cannot write a symbolic tensor while tracing: it has no value yet");
  if (t.device().type != DeviceType::CPU)
    fail<InvalidArgument>("npy", "the tensor lives on ", t.device().to_string(), "; copy it to the CPU first");
}

// Magic, version, length and the padded header, exactly as np.save writes them.
std::string encode_header(const Tensor& t) {
  std::string dict = "{'descr': '";
  dict += descr_of(t.dtype());
  dict += "', 'fortran_order': False, 'shape': (";
  const Shape& shape = t.shape();
  for (int64_t i = 0; i < shape.rank(); ++i) {
    if (i > 0) dict += ", ";
    dict += std::to_string(shape.dim(static_cast<size_t>(i)));
  }
  if (shape.rank() == 1) dict += ',';
  dict += "), }";
  if (shape.rank() > 0) {
    size_t digits = std::to_string(shape.dim(0)).size();
    dict.append(kGrowthAxisMaxDigits - std::min(digits, kGrowthAxisMaxDigits), ' ');
  }
  for (int major : {1, 2}) {
    size_t len_size = major == 1 ? 2 : 4;
    size_t prefix = kMagicLen + 2 + len_size;
    size_t hlen = dict.size() + 1;
    // NumPy pads by 1..64 spaces (a full 64 when already aligned), and so must we to match.
    size_t pad = kAlign - (prefix + hlen) % kAlign;
    size_t total = hlen + pad;
    if (major == 1 && total > 0xffff) continue;
    std::string out(kMagic, kMagicLen);
    out += static_cast<char>(major);
    out += '\0';
    for (size_t i = 0; i < len_size; ++i) out += static_cast<char>((total >> (8 * i)) & 0xff);
    out += dict;
    out.append(pad, ' ');
    out += '\n';
    return out;
  }
  fail<Internal>("npy", "a .npy header of ", dict.size(), " bytes does not fit version 2.0");
}

// The data bytes in little-endian order (a copy only when the host is big-endian).
std::string_view little_endian_data(const Tensor& t, std::string& scratch) {
  std::string_view raw(static_cast<const char*>(t.raw_data()), t.nbytes());
  if (kHostLittle || dtype_size(t.dtype()) == 1) return raw;
  scratch.assign(raw);
  byte_swap(scratch.data(), t.dtype(), t.num_elements());
  return scratch;
}

Source file_source(const std::string& path) {
  Source src;
  src.prefix = "file '";
  src.prefix += path;
  src.prefix += "': ";
  return src;
}

}  // namespace

std::string encode(const Tensor& tensor) {
  check_writable(tensor);
  std::string out = encode_header(tensor);
  std::string scratch;
  out += little_endian_data(tensor, scratch);
  return out;
}

Tensor decode(std::string_view bytes) {
  Source src;
  Preamble p = parse_preamble(src, bytes.substr(0, 12), bytes.size());
  Header h = HeaderParser(src, bytes.substr(p.header_offset, p.header_len)).parse();
  size_t data_offset = p.header_offset + p.header_len;
  check_data_size(src, h, bytes.size() - data_offset);
  Tensor raw = Tensor::empty(h.shape, h.dtype);
  if (h.nbytes) std::memcpy(raw.mutable_raw_data(), bytes.data() + data_offset, h.nbytes);
  return finish(h, std::move(raw));
}

void save(const std::string& path, const Tensor& tensor) {
  check_writable(tensor);
  std::string header = encode_header(tensor);
  std::string scratch;
  std::string_view data = little_endian_data(tensor, scratch);

  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec))
    fail<NotFound>("npy", "cannot write '", path, "': directory '", parent.string(), "' does not exist");
  if (fs::is_directory(path, ec)) fail<InvalidArgument>("npy", "cannot write '", path, "': it is a directory");
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) fail<InvalidArgument>("npy", "cannot open '", path, "' for writing: ", std::strerror(errno));
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  f.close();
  if (!f) {
    int err = errno;
    fs::remove(path, ec);
    fail<DataLoss>("npy", "writing '", path, "' failed (", header.size() + data.size(),
                   " bytes): ", std::strerror(err));
  }
}

Tensor load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) fail<NotFound>("npy", "no such file: '", path, "'");
  if (st.type() == fs::file_type::directory)
    fail<InvalidArgument>("npy", "cannot read '", path, "': it is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail<InvalidArgument>("npy", "cannot open '", path, "' for reading: ", std::strerror(errno));
  f.seekg(0, std::ios::end);
  std::streamoff end = f.tellg();
  f.seekg(0, std::ios::beg);
  if (end < 0 || !f)
    fail<InvalidArgument>("npy", "cannot read '", path, "': its size is unknown (not a regular file?)");
  auto total = static_cast<uint64_t>(end);
  Source src = file_source(path);

  auto read_exact = [&](char* dst, size_t n, const char* what) {
    f.read(dst, static_cast<std::streamsize>(n));
    if (static_cast<size_t>(f.gcount()) != n)
      npy_fail(src, "reading the ", what, " failed after ", f.gcount(), " of ", n, " bytes");
  };

  std::string head(static_cast<size_t>(std::min<uint64_t>(total, 12)), '\0');
  read_exact(head.data(), head.size(), "preamble");
  Preamble p = parse_preamble(src, head, total);
  // The header text: the part already read plus the rest; its length is checked against the file.
  std::string header(p.header_len, '\0');
  size_t from_head = head.size() - p.header_offset;
  from_head = std::min(from_head, p.header_len);
  std::memcpy(header.data(), head.data() + p.header_offset, from_head);
  read_exact(header.data() + from_head, p.header_len - from_head, "header");
  Header h = HeaderParser(src, header).parse();
  check_data_size(src, h, total - (p.header_offset + p.header_len));

  Tensor raw = Tensor::empty(h.shape, h.dtype);
  // head may have read up to 12 - header_offset bytes past the header (a v1 file's tiny header).
  size_t consumed = head.size() - p.header_offset - from_head;
  if (consumed > h.nbytes) consumed = h.nbytes;
  char* dst = static_cast<char*>(raw.mutable_raw_data());
  if (consumed) std::memcpy(dst, head.data() + p.header_offset + from_head, consumed);
  read_exact(dst + consumed, h.nbytes - consumed, "data");
  return finish(h, std::move(raw));
}

}  // namespace kiln::npy
