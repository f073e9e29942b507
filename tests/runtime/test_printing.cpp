// Printing: TensorFlow's `tf.Tensor(...)` form around NumPy's str/repr layout, pinned to real
// TensorFlow/NumPy outputs (alignment, float notation, wrapping, summarization, every dtype).
#include <catch2/catch.hpp>

#include <cmath>
#include <complex>
#include <limits>
#include <numeric>
#include <sstream>

#include "ops/ops.h"
#include "runtime/printing.h"

using namespace kiln;

namespace {

template <class T>
Tensor make(std::vector<T> values, const Shape& shape) {
  Tensor t = Tensor::empty(shape, dtype_v<T>);
  std::copy(values.begin(), values.end(), static_cast<T*>(t.mutable_raw_data()));
  return t;
}

Tensor iota_i32(int32_t n, const Shape& shape) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return constant(v, shape);
}

Tensor bools(std::initializer_list<bool> values, const Shape& shape) {
  Tensor t = Tensor::empty(shape, bool_);
  std::copy(values.begin(), values.end(), static_cast<bool*>(t.mutable_raw_data()));
  return t;
}

// Restores the default print options when a test ends.
struct OptionsGuard {
  PrintOptions saved = get_print_options();
  ~OptionsGuard() { set_print_options(saved); }
};

}  // namespace

TEST_CASE("tensors print like TensorFlow's EagerTensor", "[printing]") {
  CHECK(constant(4).to_string() == "kiln.Tensor(4, shape=(), dtype=int32)");
  CHECK(constant({2.0, 3.0, 4.0}).to_string() == "kiln.Tensor([2. 3. 4.], shape=(3,), dtype=float32)");
  CHECK(constant({{1, 2}, {3, 4}, {5, 6}}, float16).to_string() ==
        "kiln.Tensor(\n[[1. 2.]\n [3. 4.]\n [5. 6.]], shape=(3, 2), dtype=float16)");
  CHECK(iota_i32(30, {3, 2, 5}).to_string() ==
        "kiln.Tensor(\n[[[ 0  1  2  3  4]\n  [ 5  6  7  8  9]]\n\n [[10 11 12 13 14]\n  [15 16 17 18 19]]\n\n "
        "[[20 21 22 23 24]\n  [25 26 27 28 29]]], shape=(3, 2, 5), dtype=int32)");
  CHECK(iota_i32(30, {30}).to_string() ==
        "kiln.Tensor(\n[ 0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15 16 17 18 19 20 21 22 23\n 24 25 26 27 28 "
        "29], shape=(30,), dtype=int32)");
  CHECK(scalar(10.0f).to_string() == "kiln.Tensor(10.0, shape=(), dtype=float32)");
  CHECK(constant(std::vector<int64_t>{1, 0}, {2}).to_string() == "kiln.Tensor([1 0], shape=(2,), dtype=int64)");
  CHECK(bools({false, false, false, false}, {2, 2}).to_string() ==
        "kiln.Tensor(\n[[False False]\n [False False]], shape=(2, 2), dtype=bool)");
  CHECK(constant(std::vector<uint8_t>{2, 3, 4}, {3}).to_string() == "kiln.Tensor([2 3 4], shape=(3,), dtype=uint8)");
  CHECK(constant({{22.0, 28.0}, {49.0, 64.0}}).to_string() ==
        "kiln.Tensor(\n[[22. 28.]\n [49. 64.]], shape=(2, 2), dtype=float32)");
  CHECK(constant(std::vector<complex128_t>{{5, 4}, {6, 1}}, {2}).to_string() ==
        "kiln.Tensor([5.+4.j 6.+1.j], shape=(2,), dtype=complex128)");
  CHECK(scalar(true).to_string() == "kiln.Tensor(True, shape=(), dtype=bool)");
  CHECK(Tensor().to_string() == "None");
  CHECK(numpy_str(Tensor()) == "None");
  std::ostringstream os;
  os << constant({1, 2});
  CHECK(os.str() == "kiln.Tensor([1 2], shape=(2,), dtype=int32)");
}

TEST_CASE("softmax output switches to scientific notation", "[printing]") {
  // The float32 values TensorFlow's softmax([[4, 5], [10, 1]]) returns.
  Tensor t = constant(std::vector<float>{0.26894143f, 0.73105854f, 0.9998766f, 0.00012339458f}, {2, 2});
  CHECK(t.to_string() ==
        "kiln.Tensor(\n[[2.6894143e-01 7.3105854e-01]\n [9.9987662e-01 1.2339458e-04]], shape=(2, 2), "
        "dtype=float32)");
  // 0.7310586f is one ulp away and gets its own exact digits once the mantissas are padded.
  CHECK(numpy_str(constant(std::vector<float>{0.7310586f, 0.0001f}, {2})) == "[7.310586e-01 1.000000e-04]");
  CHECK(numpy_str(constant(std::vector<float>{0.7310586f, 0.00012339458f}, {2})) == "[7.3105860e-01 1.2339458e-04]");
}

TEST_CASE("numpy_str and numpy_repr", "[printing]") {
  CHECK(numpy_str(constant({{3.0, 4.0}, {5.0, 6.0}})) == "[[3. 4.]\n [5. 6.]]");
  CHECK(constant({0, 1, 1, 2, 3, 5, 8, 13, 21, 34}).numpy_string() == "[ 0  1  1  2  3  5  8 13 21 34]");
  CHECK(numpy_repr(constant({{1.0, 2.0}, {3.0, 4.0}})) == "array([[1., 2.],\n       [3., 4.]], dtype=float32)");
  CHECK(numpy_repr(constant(1)) == "1");
  CHECK(numpy_repr(scalar(10.0f)) == "10.0");
  CHECK(numpy_repr(constant({1.5, 2.5}, float64)) == "array([1.5, 2.5])");
  CHECK(numpy_repr(constant(std::vector<int64_t>{1, 2}, {2})) == "array([1, 2])");
  CHECK(numpy_repr(constant({1, 2})) == "array([1, 2], dtype=int32)");
  CHECK(numpy_repr(bools({true, false}, {2})) == "array([ True, False])");
  CHECK(numpy_repr(constant(std::vector<complex128_t>{{1, 2}}, {1})) == "array([1.+2.j])");
  CHECK(numpy_repr(Tensor()) == "None");
  // the dtype moves to its own line when it would pass the line width
  std::vector<float> v;
  for (int i = 0; i < 20; ++i) v.push_back(static_cast<float>(i) + 0.5f);
  CHECK(numpy_repr(constant(v, {20})) ==
        "array([ 0.5,  1.5,  2.5,  3.5,  4.5,  5.5,  6.5,  7.5,  8.5,  9.5, 10.5,\n       11.5, 12.5, 13.5, 14.5, "
        "15.5, 16.5, 17.5, 18.5, 19.5],\n      dtype=float32)");
  CHECK(numpy_str(constant(v, {20})) ==
        "[ 0.5  1.5  2.5  3.5  4.5  5.5  6.5  7.5  8.5  9.5 10.5 11.5 12.5 13.5\n 14.5 15.5 16.5 17.5 18.5 19.5]");
}

TEST_CASE("empty tensors", "[printing]") {
  CHECK(Tensor::empty({0}, float32).to_string() == "kiln.Tensor([], shape=(0,), dtype=float32)");
  CHECK(Tensor::empty({2, 0}, int32).to_string() == "kiln.Tensor([], shape=(2, 0), dtype=int32)");
  CHECK(numpy_repr(Tensor::empty({0}, float32)) == "array([], dtype=float32)");
  CHECK(numpy_repr(Tensor::empty({0}, float64)) == "array([], dtype=float64)");
  CHECK(numpy_repr(Tensor::empty({2, 0}, float32)) == "array([], shape=(2, 0), dtype=float32)");
}

TEST_CASE("float layout: alignment, notation, nan and inf", "[printing]") {
  auto f32 = [](std::vector<float> v) { return numpy_str(constant(v, {static_cast<int64_t>(v.size())})); };
  auto f64 = [](std::vector<double> v) { return numpy_str(constant(v, {static_cast<int64_t>(v.size())})); };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(f32({1.5f, 2.25f}) == "[1.5  2.25]");
  CHECK(f32({1e-5f, 1.5f}) == "[1.0e-05 1.5e+00]");
  CHECK(f32({0.1f, 100000.0f}) == "[1.e-01 1.e+05]");
  CHECK(f32({nan, 1.0f, -inf}) == "[ nan   1. -inf]");
  CHECK(f32({nan, inf}) == "[nan inf]");
  CHECK(f32({-1.5f, 2.25f}) == "[-1.5   2.25]");
  CHECK(f32({-0.0f, 1.0f}) == "[-0.  1.]");
  CHECK(f32({0.0f, 0.0f}) == "[0. 0.]");
  CHECK(f32({1000.0f, 1.0f}) == "[1000.    1.]");
  CHECK(f32({1001.0f, 1.0f}) == "[1.001e+03 1.000e+00]");
  CHECK(f32({1e8f, 1.0f}) == "[1.e+08 1.e+00]");
  CHECK(f32({0.0001f}) == "[1.e-04]");  // float32 0.0001 is just below 1e-4
  CHECK(f32({0.1f, 0.2f, 0.3f}) == "[0.1 0.2 0.3]");
  CHECK(f32({3.14159265f}) == "[3.1415927]");
  CHECK(f32({-1e-5f, 1.5f}) == "[-1.0e-05  1.5e+00]");
  CHECK(f64({0.1 + 0.2, 1.0}) == "[0.3 1. ]");
  CHECK(f64({1.0 / 3, 2.0 / 3}) == "[0.33333333 0.66666667]");
  CHECK(f64({1e-100, 1.0}) == "[1.e-100 1.e+000]");
  CHECK(f64({123456789.0, 1.0}) == "[1.23456789e+08 1.00000000e+00]");
  CHECK(f64({1e-9, 1.0}) == "[1.e-09 1.e+00]");
}

TEST_CASE("0-d tensors print like NumPy scalars", "[printing]") {
  CHECK(numpy_str(scalar(10.0f)) == "10.0");
  CHECK(numpy_str(scalar(0.5f)) == "0.5");
  CHECK(numpy_str(scalar(1e-5f)) == "1e-05");
  CHECK(numpy_str(scalar(1e20f)) == "1e+20");
  CHECK(numpy_str(scalar(1.5e-7f)) == "1.5e-07");
  CHECK(numpy_str(scalar(0.1f)) == "0.1");
  CHECK(numpy_str(scalar(-0.0f)) == "-0.0");
  CHECK(numpy_str(scalar(123456789.0f)) == "123456790.0");
  CHECK(numpy_str(scalar(1e16)) == "1e+16");
  CHECK(numpy_str(scalar(0.1 + 0.2)) == "0.30000000000000004");
  CHECK(numpy_str(scalar(std::numeric_limits<double>::quiet_NaN())) == "nan");
  CHECK(numpy_str(scalar(-std::numeric_limits<float>::infinity())) == "-inf");
  CHECK(numpy_str(scalar(int8_t{-5})) == "-5");
  CHECK(numpy_str(scalar(std::numeric_limits<uint64_t>::max())) == "18446744073709551615");
  CHECK(numpy_str(scalar(false)) == "False");
  CHECK(numpy_str(scalar(complex128_t(5, 4))) == "(5+4j)");
  CHECK(numpy_str(scalar(complex128_t(0, 4))) == "4j");
  CHECK(numpy_str(scalar(complex64_t(1.5f, -0.25f))) == "(1.5-0.25j)");
  CHECK(numpy_str(scalar(complex128_t(-0.0, 1))) == "(-0+1j)");
}

TEST_CASE("16-bit floats use their own shortest digits", "[printing]") {
  CHECK(numpy_str(scalar(Half(0.1f))) == "0.1");
  CHECK(numpy_str(scalar(Half(65504.0f))) == "65500.0");
  CHECK(numpy_str(scalar(Half(1.0f / 3))) == "0.3333");
  CHECK(numpy_str(constant({0.1, 0.2, 1.0 / 3}, float16)) == "[0.1    0.2    0.3333]");
  CHECK(numpy_str(scalar(Half::from_bits(1))) == "6e-08");  // the smallest subnormal
  CHECK(numpy_str(scalar(BFloat16(0.1f))) == "0.1");
  CHECK(numpy_str(scalar(BFloat16(1.0f / 3))) == "0.334");
  CHECK(numpy_str(scalar(BFloat16(3.14159265f))) == "3.14");
  CHECK(numpy_str(constant({1.0, 2.5, 300.0}, bfloat16)) == "[  1.    2.5 300. ]");
  CHECK(numpy_str(constant({1e-5, 1.0}, float16)) == "[1.e-05 1.e+00]");
}

TEST_CASE("integer, bool and complex columns", "[printing]") {
  CHECK(numpy_str(constant(std::vector<int8_t>{-128, 5, 127}, {3})) == "[-128    5  127]");
  CHECK(numpy_str(constant(std::vector<uint64_t>{0, std::numeric_limits<uint64_t>::max()}, {2})) ==
        "[                   0 18446744073709551615]");
  CHECK(numpy_str(bools({true, false, true}, {3})) == "[ True False  True]");
  CHECK(numpy_str(constant(std::vector<complex64_t>{{1, 2}, {-3.5f, -1}}, {2})) == "[ 1. +2.j -3.5-1.j]");
  CHECK(numpy_str(constant(std::vector<complex128_t>{{0, 1.5}, {2, 0.25}}, {2})) == "[0.+1.5j  2.+0.25j]");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(numpy_str(constant(std::vector<complex128_t>{{1, nan}, {2, 1}}, {2})) == "[1.+nanj 2. +1.j]");
}

TEST_CASE("rank-4 blocks are separated by blank lines", "[printing]") {
  Tensor t = constant(std::vector<float>(120, 0.0f), {3, 2, 4, 5});
  const std::string row = "[0. 0. 0. 0. 0.]";
  // a (4, 5) block whose rows after the first are indented by `ind`
  auto block2 = [&](const std::string& ind) {
    std::string s = "[" + row;
    for (int i = 0; i < 3; ++i) s.append("\n").append(ind).append(row);
    return s.append("]");
  };
  // a (2, 4, 5) block whose second (4, 5) block is indented by `ind`
  auto block3 = [&](const std::string& ind) {
    std::string s = "[";
    s += block2(ind + " ");
    return s.append("\n\n").append(ind).append(block2(ind + " ")).append("]");
  };
  std::string want = "[";
  want.append(block3("  ")).append("\n\n\n ").append(block3("  ")).append("\n\n\n ").append(block3("  "));
  want.append("]");
  CHECK(numpy_str(t) == want);
  CHECK(want.substr(0, 46) == "[[[[0. 0. 0. 0. 0.]\n   [0. 0. 0. 0. 0.]\n   [0.");
}

TEST_CASE("large tensors are summarized", "[printing]") {
  CHECK(numpy_str(iota_i32(2000, {2000})) == "[   0    1    2 ... 1997 1998 1999]");
  CHECK(numpy_str(iota_i32(2000, {100, 20})) ==
        "[[   0    1    2 ...   17   18   19]\n"
        " [  20   21   22 ...   37   38   39]\n"
        " [  40   41   42 ...   57   58   59]\n"
        " ...\n"
        " [1940 1941 1942 ... 1957 1958 1959]\n"
        " [1960 1961 1962 ... 1977 1978 1979]\n"
        " [1980 1981 1982 ... 1997 1998 1999]]");
  // 1000 elements is the threshold itself: not summarized
  CHECK(numpy_str(iota_i32(1000, {1000})).find("...") == std::string::npos);
  CHECK(numpy_str(iota_i32(1001, {1001})) == "[   0    1    2 ...  998  999 1000]");
  // widths come from the shown elements only
  std::vector<float> v(4000, 1.0f);
  v[1000] = 1e10f;
  CHECK(numpy_str(constant(v, {4000})) == "[1. 1. 1. ... 1. 1. 1.]");
  Tensor big = constant(std::vector<float>(1000000, 0.5f), {1000, 1000});
  CHECK(numpy_str(big) ==
        "[[0.5 0.5 0.5 ... 0.5 0.5 0.5]\n [0.5 0.5 0.5 ... 0.5 0.5 0.5]\n [0.5 0.5 0.5 ... 0.5 0.5 0.5]\n ...\n"
        " [0.5 0.5 0.5 ... 0.5 0.5 0.5]\n [0.5 0.5 0.5 ... 0.5 0.5 0.5]\n [0.5 0.5 0.5 ... 0.5 0.5 0.5]]");
  CHECK(numpy_str(iota_i32(2000, {2, 1000})) ==
        "[[   0    1    2 ...  997  998  999]\n [1000 1001 1002 ... 1997 1998 1999]]");
}

TEST_CASE("print options", "[printing]") {
  OptionsGuard guard;
  PrintOptions o = get_print_options();
  CHECK(o.linewidth == 75);
  CHECK(o.threshold == 1000);
  CHECK(o.edgeitems == 3);
  CHECK(o.precision == 8);
  o.precision = 3;
  set_print_options(o);
  CHECK(numpy_str(constant({3.14159265358979, 2.71828182845905}, float64)) == "[3.142 2.718]");
  CHECK(numpy_str(scalar(3.14159265358979)) == "3.14159265358979");  // scalars ignore precision
  o = PrintOptions{};
  o.threshold = 5;
  o.edgeitems = 2;
  set_print_options(o);
  CHECK(numpy_str(iota_i32(10, {10})) == "[0 1 ... 8 9]");
  o = PrintOptions{};
  o.linewidth = 20;
  set_print_options(o);
  CHECK(numpy_str(iota_i32(10, {10})) == "[0 1 2 3 4 5 6 7 8\n 9]");
  CHECK_THROWS_AS(set_print_options(PrintOptions{.linewidth = 0}), InvalidArgument);
  CHECK_THROWS_AS(set_print_options(PrintOptions{.threshold = -1}), InvalidArgument);
  CHECK_THROWS_AS(set_print_options(PrintOptions{.edgeitems = 0}), InvalidArgument);
  CHECK_THROWS_AS(set_print_options(PrintOptions{.precision = -1}), InvalidArgument);
  CHECK(get_print_options().linewidth == 20);  // a rejected call changes nothing
}
