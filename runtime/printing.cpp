// Tensor printing: NumPy 1.x's arrayprint algorithms (float formatting, alignment, line wrapping,
// summarization) and TensorFlow's `tf.Tensor(...)` wrapper around them.
#include "runtime/printing.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <mutex>
#include <ostream>
#include <span>
#include <string_view>
#include <vector>

#include "runtime/string_tensor.h"

namespace kiln {
namespace {

std::mutex g_options_mutex;
PrintOptions g_options;

// The floating types differ in which decimal strings are their shortest round-trip form, and in
// the precision NumPy divides max/min in when choosing scientific notation.
enum class FloatKind { Half, BFloat16, Single, Double };

FloatKind float_kind(DType d) {
  switch (d) {
    case DType::Float16:
      return FloatKind::Half;
    case DType::BFloat16:
      return FloatKind::BFloat16;
    case DType::Float32:
    case DType::Complex64:
      return FloatKind::Single;
    default:
      return FloatKind::Double;
  }
}

// A non-negative finite value as decimal digits: digits[0].digits[1..] x 10^exp. Digits carry no
// trailing zeros; zero is {"0", 0}.
struct Decimal {
  std::string digits;
  int exp = 0;
  // Digits after the decimal point in positional notation.
  int frac_digits() const { return std::max(0, static_cast<int>(digits.size()) - 1 - exp); }
};

void strip_trailing_zeros(Decimal& d) {
  size_t n = d.digits.find_last_not_of('0');
  if (n == std::string::npos) {
    d.digits = "0";
    d.exp = 0;
  } else {
    d.digits.resize(n + 1);
  }
}

// Parses std::to_chars' scientific output of a non-negative value ("1.25e-05", "3e+00").
Decimal parse_scientific(std::string_view s) {
  Decimal d;
  size_t e = s.find('e');
  for (char c : s.substr(0, e))
    if (c != '.') d.digits += c;
  std::string_view ex = s.substr(e + 1);
  bool neg = ex.front() == '-';
  if (ex.front() == '+' || ex.front() == '-') ex.remove_prefix(1);
  int v = 0;
  std::from_chars(ex.data(), ex.data() + ex.size(), v);
  d.exp = neg ? -v : v;
  strip_trailing_zeros(d);
  return d;
}

// Parses std::to_chars' fixed output of a non-negative value ("123.4500", "0.00012").
Decimal parse_fixed(std::string_view s) {
  size_t dot = s.find('.');
  std::string_view ip = s.substr(0, dot);
  std::string all(ip);
  if (dot != std::string_view::npos) all += s.substr(dot + 1);
  size_t first = all.find_first_not_of('0');
  Decimal d;
  if (first == std::string::npos) {
    d.digits = "0";
    return d;
  }
  d.exp = static_cast<int>(ip.size()) - 1 - static_cast<int>(first);
  d.digits = all.substr(first);
  strip_trailing_zeros(d);
  return d;
}

// Buffer big enough for any double in fixed or scientific form with up to kMaxPrecision digits.
constexpr int kMaxPrecision = 100;
using CharBuf = std::array<char, 512>;

// `v` (non-negative, finite) correctly rounded to `nsig` significant digits.
Decimal round_significant(double v, int nsig) {
  CharBuf buf;
  auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::scientific, nsig - 1);
  return parse_scientific(std::string_view(buf.data(), r.ptr));
}

// `v` (non-negative, finite) correctly rounded to `nfrac` digits after the decimal point.
Decimal round_fractional(double v, int nfrac) {
  CharBuf buf;
  auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, nfrac);
  return parse_fixed(std::string_view(buf.data(), r.ptr));
}

uint16_t bits16(double v, FloatKind k) {
  return k == FloatKind::Half ? Half(static_cast<float>(v)).bits : BFloat16(static_cast<float>(v)).bits;
}
double value16(uint16_t b, FloatKind k) {
  return k == FloatKind::Half ? static_cast<float>(Half::from_bits(b)) : static_cast<float>(BFloat16::from_bits(b));
}

// Shortest round-trip digits of a 16-bit float: the fewest significant digits whose decimal
// value rounds back to the same 16-bit value, the closest such one if several. All the bounds
// are exact in double, so the round-trip test is exact.
Decimal shortest16(double v, FloatKind k) {
  if (v == 0) return Decimal{"0", 0};
  uint16_t b = bits16(v, k);
  uint16_t inf_bits = k == FloatKind::Half ? 0x7c00 : 0x7f80;
  double down = value16(static_cast<uint16_t>(b - 1), k);
  double up = static_cast<uint16_t>(b + 1) == inf_bits ? v + (v - down) : value16(static_cast<uint16_t>(b + 1), k);
  double lo = (v + down) / 2, hi = (v + up) / 2;
  bool even = (b & 1) == 0;
  auto round_trips = [&](double c) { return (c > lo && c < hi) || (even && (c == lo || c == hi)); };
  for (int n = 1; n <= 17; ++n) {
    Decimal r = round_significant(v, n);
    // The mantissa as an n-digit integer M with value M x 10^scale; its neighbours M-1 and M+1
    // are the other n-digit candidates, since the nearest one can fall outside an asymmetric
    // rounding interval (just above a power of two) while a farther one falls inside.
    uint64_t m = 0;
    for (int i = 0; i < n; ++i) m = m * 10 + (i < static_cast<int>(r.digits.size()) ? r.digits[i] - '0' : 0);
    int scale = r.exp - (n - 1);
    bool found = false;
    uint64_t best = 0;
    double best_dist = 0;
    for (uint64_t cand : {m, m - 1, m + 1}) {
      if (cand == 0) continue;
      std::string s = std::to_string(cand) + "e" + std::to_string(scale);
      double c = 0;
      std::from_chars(s.data(), s.data() + s.size(), c);
      if (!round_trips(c)) continue;
      double dist = std::abs(c - v);
      if (!found || dist < best_dist) {
        found = true;
        best = cand;
        best_dist = dist;
      }
    }
    if (found) {
      Decimal d;
      d.digits = std::to_string(best);
      d.exp = scale + static_cast<int>(d.digits.size()) - 1;
      strip_trailing_zeros(d);
      return d;
    }
  }
  return round_significant(v, 17);
}

// Shortest round-trip digits of `v` (non-negative, finite) in the type `k`.
Decimal shortest(double v, FloatKind k) {
  CharBuf buf;
  std::to_chars_result r;
  switch (k) {
    case FloatKind::Single:
      r = std::to_chars(buf.data(), buf.data() + buf.size(), static_cast<float>(v), std::chars_format::scientific);
      break;
    case FloatKind::Double:
      r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::scientific);
      break;
    default:
      return shortest16(v, k);
  }
  return parse_scientific(std::string_view(buf.data(), r.ptr));
}

// The integer and fraction digits of `d` in positional notation.
void positional_parts(const Decimal& d, std::string& ip, std::string& fp) {
  const std::string& g = d.digits;
  int n = static_cast<int>(g.size());
  if (g == "0") {
    ip = "0";
    fp.clear();
  } else if (d.exp >= 0) {
    ip = g.substr(0, std::min(n, d.exp + 1));
    if (n < d.exp + 1) ip.append(static_cast<size_t>(d.exp + 1 - n), '0');
    fp = n > d.exp + 1 ? g.substr(static_cast<size_t>(d.exp + 1)) : std::string();
  } else {
    ip = "0";
    fp.assign(static_cast<size_t>(-d.exp - 1), '0');
    fp += g;
  }
}

// "e+05": the exponent with a sign and at least `min_digits` (NumPy caps the padding at 5).
std::string exponent_string(int exp, int min_digits) {
  std::string digits = std::to_string(exp < 0 ? -exp : exp);
  int pad = std::min(min_digits, 5) - static_cast<int>(digits.size());
  std::string s = exp < 0 ? "e-" : "e+";
  if (pad > 0) s.append(static_cast<size_t>(pad), '0');
  return s + digits;
}

std::string sign_prefix(double x, bool plus) { return std::signbit(x) ? "-" : plus ? "+" : ""; }

// NumPy's FloatingFormat in 'maxprec' mode: chooses positional or scientific notation from the
// shown values, then pads every value to a common layout.
class FloatFormat {
 public:
  FloatFormat(std::span<const double> data, FloatKind kind, int precision, bool plus)
      : kind_(kind), plus_(plus), precision_(precision) {
    std::vector<double> finite;
    finite.reserve(data.size());
    bool has_neg_inf = false;
    for (double x : data) {
      if (std::isfinite(x))
        finite.push_back(x);
      else if (std::isinf(x) && x < 0)
        has_neg_inf = true;
    }
    double max_val = 0, min_val = std::numeric_limits<double>::infinity();
    bool any_nonzero = false;
    for (double x : finite) {
      double a = std::abs(x);
      if (a == 0) continue;
      any_nonzero = true;
      max_val = std::max(max_val, a);
      min_val = std::min(min_val, a);
    }
    if (any_nonzero) exp_format_ = max_val >= 1e8 || min_val < 1e-4 || ratio(max_val, min_val) > 1000.0;

    if (finite.empty()) {
      pad_left_ = pad_right_ = 0;
    } else if (exp_format_) {
      int frac = 0, exp_digits = 0;
      for (double x : finite) {
        Decimal d = first_pass(std::abs(x), /*scientific=*/true);
        frac = std::max(frac, static_cast<int>(d.digits.size()) - 1);
        exp_digits = std::max(exp_digits, static_cast<int>(exponent_string(d.exp, 2).size()) - 2);
        pad_left_ = std::max(pad_left_, 1 + static_cast<int>(sign_prefix(x, plus_).size()));
      }
      precision_ = frac;
      exp_size_ = exp_digits;
      pad_right_ = exp_size_ + 2 + precision_;
    } else {
      std::string ip, fp;
      for (double x : finite) {
        positional_parts(first_pass(std::abs(x), /*scientific=*/false), ip, fp);
        pad_left_ = std::max(pad_left_, static_cast<int>(ip.size() + sign_prefix(x, plus_).size()));
        pad_right_ = std::max(pad_right_, static_cast<int>(fp.size()));
      }
    }
    if (finite.size() != data.size()) {
      int inflen = 3 + ((plus_ || has_neg_inf) ? 1 : 0);
      int offset = pad_right_ + 1;
      pad_left_ = std::max({pad_left_, 3 - offset, inflen - offset});
    }
  }

  std::string operator()(double x) const {
    if (!std::isfinite(x)) {
      std::string ret = std::isnan(x) ? std::string(plus_ ? "+" : "") + "nan" : sign_prefix(x, plus_) + "inf";
      int pad = pad_left_ + pad_right_ + 1 - static_cast<int>(ret.size());
      return std::string(static_cast<size_t>(std::max(pad, 0)), ' ') + ret;
    }
    std::string sign = sign_prefix(x, plus_);
    std::string ip, fp, tail;
    if (exp_format_) {
      // Every value gets exactly precision_ mantissa digits: NumPy's min_digits extends a short
      // value with its exact further digits, and a long one is rounded.
      Decimal d = round_significant(std::abs(x), precision_ + 1);
      ip = d.digits.substr(0, 1);
      fp = d.digits.substr(1);
      fp.resize(static_cast<size_t>(precision_), '0');
      tail = exponent_string(d.exp, exp_size_);
    } else {
      positional_parts(first_pass(std::abs(x), false), ip, fp);
    }
    std::string s;
    int left = static_cast<int>(sign.size() + ip.size());
    if (left < pad_left_) s.append(static_cast<size_t>(pad_left_ - left), ' ');
    s += sign;
    s += ip;
    s += '.';
    s += fp;
    s += tail;
    if (!exp_format_ && static_cast<int>(fp.size()) < pad_right_)
      s.append(static_cast<size_t>(pad_right_ - static_cast<int>(fp.size())), ' ');
    return s;
  }

 private:
  // max/min computed in the array's own type, as NumPy divides the two scalars.
  double ratio(double max_val, double min_val) const {
    switch (kind_) {
      case FloatKind::Double:
        return max_val / min_val;
      case FloatKind::Single:
        return static_cast<float>(max_val) / static_cast<float>(min_val);
      case FloatKind::Half:
        return static_cast<float>(Half(static_cast<float>(max_val) / static_cast<float>(min_val)));
      case FloatKind::BFloat16:
        return static_cast<float>(BFloat16(static_cast<float>(max_val) / static_cast<float>(min_val)));
    }
    return max_val / min_val;
  }

  // Dragon4 in unique mode cut off at `precision` digits (after the point, or of the mantissa):
  // the shortest round-trip digits when they fit, else the value correctly rounded.
  Decimal first_pass(double a, bool scientific) const {
    Decimal d = shortest(a, kind_);
    if (scientific) {
      if (static_cast<int>(d.digits.size()) - 1 > precision_) d = round_significant(a, precision_ + 1);
    } else if (d.frac_digits() > precision_) {
      d = round_fractional(a, precision_);
    }
    return d;
  }

  FloatKind kind_;
  bool plus_;
  int precision_;
  bool exp_format_ = false;
  int pad_left_ = 0;
  int pad_right_ = 0;
  int exp_size_ = -1;
};

// NumPy's scalar str of a float: positional with at least one fraction digit when
// 1e-4 <= |x| < 1e16 (or zero), else scientific with trailing zeros and the point trimmed.
// `keep_zero` is false for the parts of a complex scalar, which trim "5.0" to "5".
std::string scalar_float_str(double x, FloatKind kind, bool plus, bool keep_zero) {
  if (std::isnan(x)) return std::string(plus ? "+" : "") + "nan";
  if (std::isinf(x)) return sign_prefix(x, plus) + "inf";
  double a = std::abs(x);
  Decimal d = shortest(a, kind);
  std::string s = sign_prefix(x, plus);
  if (a == 0 || (a < 1e16 && a >= 1e-4)) {
    std::string ip, fp;
    positional_parts(d, ip, fp);
    s += ip;
    if (!fp.empty())
      s += "." + fp;
    else if (keep_zero)
      s += ".0";
  } else {
    s += d.digits.substr(0, 1);
    if (d.digits.size() > 1) s += "." + d.digits.substr(1);
    s += exponent_string(d.exp, 2);
  }
  return s;
}

template <class T>
double to_double(T v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>)
    return static_cast<float>(v);
  else
    return static_cast<double>(v);
}

template <class T>
std::string int_str(T v) {
  std::array<char, 24> buf;
  auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), r.ptr);
}

// The str of a 0-d tensor: NumPy's scalar str.
std::string scalar_str(const Tensor& t) {
  DType dt = t.dtype();
  if (dt == DType::String) return bytes_repr(string_at(t, 0));  // NumPy shows bytes objects by repr
  const void* p = t.raw_data();
  return visit_dtype(dt, "print", [&](auto tag) -> std::string {
    using T = decltype(tag);
    T v = *static_cast<const T*>(p);
    if constexpr (std::is_same_v<T, bool>) {
      return v ? "True" : "False";
    } else if constexpr (std::is_integral_v<T>) {
      return int_str(v);
    } else if constexpr (is_complex_v<T>) {
      FloatKind k = float_kind(dt);
      double re = v.real(), im = v.imag();
      if (re == 0 && !std::signbit(re)) return scalar_float_str(im, k, false, false) + "j";
      return "(" + scalar_float_str(re, k, false, false) + scalar_float_str(im, k, true, false) + "j)";
    } else {
      return scalar_float_str(to_double(v), float_kind(dt), false, true);
    }
  });
}

// Flat offsets of the elements NumPy shows (all of them, or each axis's leading and trailing
// `edge` entries when summarizing), in row-major order.
std::vector<int64_t> shown_offsets(const Shape& shape, bool summarize, int64_t edge) {
  int64_t nd = shape.rank();
  std::vector<std::vector<int64_t>> idx(static_cast<size_t>(nd));
  for (int64_t a = 0; a < nd; ++a) {
    int64_t n = shape.dim(static_cast<size_t>(a));
    auto& v = idx[static_cast<size_t>(a)];
    if (summarize && 2 * edge < n) {
      for (int64_t i = 0; i < edge; ++i) v.push_back(i);
      for (int64_t i = n - edge; i < n; ++i) v.push_back(i);
    } else {
      for (int64_t i = 0; i < n; ++i) v.push_back(i);
    }
  }
  SmallVector<int64_t, 6> strides = contiguous_strides(shape);
  int64_t count = 1;
  for (auto& v : idx) count *= static_cast<int64_t>(v.size());
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(count));
  std::vector<size_t> pos(static_cast<size_t>(nd), 0);
  for (int64_t c = 0; c < count; ++c) {
    int64_t off = 0;
    for (int64_t a = 0; a < nd; ++a) off += idx[static_cast<size_t>(a)][pos[static_cast<size_t>(a)]] * strides[a];
    out.push_back(off);
    for (int64_t a = nd - 1; a >= 0; --a) {
      size_t ua = static_cast<size_t>(a);
      if (++pos[ua] < idx[ua].size()) break;
      pos[ua] = 0;
    }
  }
  return out;
}

// Formats the shown elements with the dtype's NumPy formatter, which sizes its columns from
// exactly these elements.
std::vector<std::string> format_elements(const Tensor& t, const std::vector<int64_t>& offsets, int precision) {
  DType dt = t.dtype();
  std::vector<std::string> words;
  words.reserve(offsets.size());
  if (dt == DType::String) {
    // TensorFlow hands NumPy an object array of bytes: each element is its repr, unpadded
    for (int64_t o : offsets) words.push_back(bytes_repr(string_at(t, o)));
    return words;
  }
  const void* p = t.raw_data();
  visit_dtype(dt, "print", [&](auto tag) {
    using T = decltype(tag);
    const T* data = static_cast<const T*>(p);
    if constexpr (std::is_same_v<T, bool>) {
      for (int64_t o : offsets) words.push_back(data[o] ? " True" : "False");
    } else if constexpr (std::is_integral_v<T>) {
      T lo = data[offsets.front()], hi = lo;
      for (int64_t o : offsets) {
        lo = std::min(lo, data[o]);
        hi = std::max(hi, data[o]);
      }
      size_t width = std::max(int_str(lo).size(), int_str(hi).size());
      for (int64_t o : offsets) {
        std::string s = int_str(data[o]);
        words.push_back(std::string(width - s.size(), ' ') + s);
      }
    } else if constexpr (is_complex_v<T>) {
      std::vector<double> re, im;
      for (int64_t o : offsets) {
        re.push_back(data[o].real());
        im.push_back(data[o].imag());
      }
      FloatKind k = float_kind(dt);
      FloatFormat rf(re, k, precision, false), imf(im, k, precision, true);
      for (size_t i = 0; i < re.size(); ++i) {
        std::string is = imf(im[i]);
        // the 'j' goes before the imaginary part's right padding
        size_t end = is.find_last_not_of(' ') + 1;
        std::string w = rf(re[i]);
        w.append(is, 0, end);
        w += 'j';
        w.append(is, end);
        words.push_back(std::move(w));
      }
    } else {
      std::vector<double> v;
      for (int64_t o : offsets) v.push_back(to_double(data[o]));
      FloatFormat f(v, float_kind(dt), precision, false);
      for (double x : v) words.push_back(f(x));
    }
  });
  return words;
}

void rstrip(std::string& s) {
  size_t n = s.find_last_not_of(" \t\n");
  s.resize(n == std::string::npos ? 0 : n + 1);
}

// NumPy's _formatArray: nests brackets, wraps rows at the line width with a hanging indent and
// inserts the summary "..." rows and columns.
class ArrayLayout {
 public:
  ArrayLayout(const Shape& shape, const std::vector<std::string>& words, std::string_view separator, bool summarize,
              int64_t edge)
      : shape_(shape), words_(words), sep_(separator), summarize_(summarize), edge_(edge) {
    sep_stripped_ = sep_;
    rstrip(sep_stripped_);
  }

  std::string format(const std::string& hanging_indent, int64_t width) { return recurse(0, hanging_indent, width); }

 private:
  static void extend_line(std::string& s, std::string& line, const std::string& word, int64_t width,
                          const std::string& prefix) {
    bool wrap = static_cast<int64_t>(line.size() + word.size()) > width;
    // wrapping does not help when the line holds only the indent
    if (line.size() <= prefix.size()) wrap = false;
    if (wrap) {
      rstrip(line);
      s += line;
      s += '\n';
      line = prefix;
    }
    line += word;
  }

  std::string recurse(int64_t axis, const std::string& hanging, int64_t width) {
    int64_t axes_left = shape_.rank() - axis;
    std::string next_hanging = hanging + ' ';
    int64_t next_width = width - 1;
    int64_t n = shape_.dim(static_cast<size_t>(axis));
    bool show_summary = summarize_ && 2 * edge_ < n;
    int64_t leading = show_summary ? edge_ : 0;
    int64_t trailing = show_summary ? edge_ : n;
    std::string s;
    if (axes_left == 1) {
      int64_t elem_width = width - std::max<int64_t>(static_cast<int64_t>(sep_stripped_.size()), 1);
      std::string line = hanging;
      for (int64_t i = 0; i < leading; ++i) {
        extend_line(s, line, words_[next_++], elem_width, hanging);
        line += sep_;
      }
      if (show_summary) {
        extend_line(s, line, "...", elem_width, hanging);
        line += sep_;
      }
      for (int64_t i = trailing; i > 1; --i) {
        extend_line(s, line, words_[next_++], elem_width, hanging);
        line += sep_;
      }
      extend_line(s, line, words_[next_++], elem_width, hanging);
      s += line;
    } else {
      std::string line_sep = sep_stripped_ + std::string(static_cast<size_t>(axes_left - 1), '\n');
      for (int64_t i = 0; i < leading; ++i) s += hanging + recurse(axis + 1, next_hanging, next_width) + line_sep;
      if (show_summary) s += hanging + "..." + line_sep;
      for (int64_t i = trailing; i > 1; --i) s += hanging + recurse(axis + 1, next_hanging, next_width) + line_sep;
      s += hanging + recurse(axis + 1, next_hanging, next_width);
    }
    return "[" + s.substr(hanging.size()) + "]";
  }

  const Shape& shape_;
  const std::vector<std::string>& words_;
  std::string sep_;
  std::string sep_stripped_;
  bool summarize_;
  int64_t edge_;
  size_t next_ = 0;
};

// NumPy's array2string for a non-empty tensor of rank >= 1. `prefix` is the text printed before
// the array ("array(" in repr), which indents continuation lines.
std::string array_to_string(const Tensor& t, const PrintOptions& opt, int64_t line_width, std::string_view separator,
                            std::string_view prefix) {
  bool summarize = t.num_elements() > opt.threshold;
  int64_t edge = opt.edgeitems;
  std::vector<int64_t> offsets = shown_offsets(t.shape(), summarize, edge);
  std::vector<std::string> words = format_elements(t, offsets, opt.precision);
  ArrayLayout layout(t.shape(), words, separator, summarize, edge);
  return layout.format(std::string(1 + prefix.size(), ' '), line_width);
}

// Tensors on a GPU print from a host copy, as TensorFlow's do.
Tensor on_host(const Tensor& t) { return t.device().type == DeviceType::CPU ? t : t.to(kCPU); }

}  // namespace

PrintOptions get_print_options() {
  std::lock_guard<std::mutex> lock(g_options_mutex);
  return g_options;
}

void set_print_options(const PrintOptions& options) {
  if (options.linewidth < 1)
    fail<InvalidArgument>("set_print_options", "linewidth must be positive, got ", options.linewidth);
  if (options.threshold < 0)
    fail<InvalidArgument>("set_print_options", "threshold must be >= 0, got ", options.threshold);
  if (options.edgeitems < 1)
    fail<InvalidArgument>("set_print_options", "edgeitems must be >= 1, got ", options.edgeitems);
  if (options.precision < 0 || options.precision > kMaxPrecision)
    fail<InvalidArgument>("set_print_options", "precision must be in [0, ", kMaxPrecision, "], got ",
                          options.precision);
  std::lock_guard<std::mutex> lock(g_options_mutex);
  g_options = options;
}

std::string numpy_str(const Tensor& tensor) {
  if (!tensor.defined()) return "None";
  Tensor t = on_host(tensor);
  if (t.ndim() == 0) return scalar_str(t);
  if (t.num_elements() == 0) return "[]";
  PrintOptions opt = get_print_options();
  return array_to_string(t, opt, opt.linewidth, " ", "");
}

std::string numpy_repr(const Tensor& tensor) {
  if (!tensor.defined()) return "None";
  Tensor t = on_host(tensor);
  if (t.ndim() == 0) return scalar_str(t);
  PrintOptions opt = get_print_options();
  DType dt = t.dtype();
  // NumPy leaves out the dtype of its default types, but never for an empty array
  bool implied = (dt == DType::Float64 || dt == DType::Int64 || dt == DType::Bool || dt == DType::Complex128) &&
                 t.num_elements() > 0;
  // string tensors reach NumPy as object arrays of bytes
  std::string_view shown_dtype = dt == DType::String ? "object" : dtype_name(dt);
  const std::string prefix = "array(";
  std::string suffix = implied ? ")" : ",";
  std::string body;
  if (t.num_elements() > 0)
    body = array_to_string(t, opt, opt.linewidth - static_cast<int64_t>(suffix.size()), ", ", prefix);
  else if (t.ndim() == 1)
    body = "[]";
  else
    body = "[], shape=" + t.shape().to_string();
  std::string s = prefix + body + suffix;
  if (implied) return s;
  std::string dtype_str = "dtype=" + std::string(shown_dtype) + ")";
  size_t nl = s.rfind('\n');
  int64_t last_line = static_cast<int64_t>(nl == std::string::npos ? s.size() : s.size() - nl - 1);
  // the dtype moves to its own line when it would run past the line width
  if (last_line + static_cast<int64_t>(dtype_str.size()) + 1 > opt.linewidth)
    s += "\n" + std::string(prefix.size(), ' ');
  else
    s += ' ';
  return s + dtype_str;
}

std::string format_tensor(const Tensor& t) {
  if (!t.defined()) return "None";
  std::string text = t.is_symbolic() ? "<symbolic>" : numpy_str(t);
  if (text.find('\n') != std::string::npos) text.insert(0, "\n");
  return "kiln.Tensor(" + text + ", shape=" + t.shape().to_string() + ", dtype=" + std::string(dtype_name(t.dtype())) +
         ")";
}

std::string element_repr(const Tensor& tensor, int64_t i) {
  Tensor t = on_host(tensor);
  if (i < 0 || i >= t.num_elements())
    fail<OutOfRange>("print", "element ", i, " is not in [0, ", t.num_elements(), ")");
  DType dt = t.dtype();
  if (dt == DType::String) return bytes_repr(string_at(t, i));
  return visit_dtype(dt, "print", [&](auto tag) -> std::string {
    using T = decltype(tag);
    T v = static_cast<const T*>(t.raw_data())[i];
    // tolist() turns every element into a Python int, float (a double) or complex
    if constexpr (std::is_same_v<T, bool>) {
      return v ? "True" : "False";
    } else if constexpr (std::is_integral_v<T>) {
      return int_str(v);
    } else if constexpr (is_complex_v<T>) {
      double re = v.real(), im = v.imag();
      if (re == 0 && !std::signbit(re)) return scalar_float_str(im, FloatKind::Double, false, false) + "j";
      return "(" + scalar_float_str(re, FloatKind::Double, false, false) +
             scalar_float_str(im, FloatKind::Double, true, false) + "j)";
    } else {
      return scalar_float_str(to_double(v), FloatKind::Double, false, true);
    }
  });
}

std::string Tensor::to_string() const { return format_tensor(*this); }

std::string Tensor::numpy_string() const { return numpy_str(*this); }

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << format_tensor(t); }

}  // namespace kiln
