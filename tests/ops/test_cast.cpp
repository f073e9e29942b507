// cast: conversions between every pair of dtypes, truncation and saturation of floats to
// integers, complex and bool rules, and the no-copy same-dtype case.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/ops.h"

using namespace kiln;

namespace {

const std::vector<DType> kAllDTypes = {bool_,  int8,    int16,    int32,   int64,   uint8,     uint16,    uint32,
                                       uint64, float16, bfloat16, float32, float64, complex64, complex128};

}  // namespace

TEST_CASE("walkthrough: float64 to float16 to uint8", "[cast]") {
  Tensor x = constant({2.2, 3.3, 4.4}, float64);
  Tensor h = cast(x, float16);
  CHECK(h.dtype() == float16);
  Tensor u = cast(h, uint8);
  CHECK(u.dtype() == uint8);
  CHECK(u.shape() == Shape{3});
  CHECK(u.to_vector<uint8_t>() == std::vector<uint8_t>{2, 3, 4});
}

TEST_CASE("casting to the same dtype returns the input itself", "[cast]") {
  Tensor x = constant({1.0, 2.0});
  CHECK(cast(x, float32).is_same(x));
  CHECK(!cast(x, float64).is_same(x));
}

TEST_CASE("floats to integers truncate toward zero and saturate", "[cast]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor f = constant(std::vector<float>{-2.7f, 2.7f, -0.5f, 1e10f, -1e10f, nan, INFINITY, -INFINITY}, Shape{8});
  CHECK(cast(f, int32).to_vector<int32_t>() ==
        std::vector<int32_t>{-2, 2, 0, INT32_MAX, INT32_MIN, 0, INT32_MAX, INT32_MIN});
  CHECK(cast(f, uint8).to_vector<uint8_t>() == std::vector<uint8_t>{0, 2, 0, 255, 0, 0, 255, 0});
  CHECK(cast(f, int8).to_vector<int8_t>() == std::vector<int8_t>{-2, 2, 0, 127, -128, 0, 127, -128});
  CHECK(cast(constant({300.0, -5.0, 255.9, 127.9, -128.9}), uint8).to_vector<uint8_t>() ==
        std::vector<uint8_t>{255, 0, 255, 127, 0});
  CHECK(cast(constant({127.9, -128.9, 128.0}), int8).to_vector<int8_t>() == std::vector<int8_t>{127, -128, 127});
  const double two63 = 9223372036854775808.0, two64 = 18446744073709551616.0;
  Tensor d = constant(std::vector<double>{two63, -two63, 9.3e18, -9.3e18, 1e19, two64, -1.0}, Shape{7});
  CHECK(cast(d, int64).to_vector<int64_t>() ==
        std::vector<int64_t>{INT64_MAX, INT64_MIN, INT64_MAX, INT64_MIN, INT64_MAX, INT64_MAX, -1});
  CHECK(cast(d, uint64).to_vector<uint64_t>() == std::vector<uint64_t>{9223372036854775808ull, 0,
                                                                       9300000000000000000ull, 0,
                                                                       10000000000000000000ull, UINT64_MAX, 0});
  CHECK(cast(constant({4294967295.5, 4294967296.0}, float64), uint32).to_vector<uint32_t>() ==
        std::vector<uint32_t>{UINT32_MAX, UINT32_MAX});
  Tensor h = constant(std::vector<Half>{Half(-3.75f), Half(65504.0f), Half(nan)}, Shape{3});
  CHECK(cast(h, int16).to_vector<int16_t>() == std::vector<int16_t>{-3, INT16_MAX, 0});
  CHECK(cast(h, int32).to_vector<int32_t>() == std::vector<int32_t>{-3, 65504, 0});
}

TEST_CASE("integer to integer casts wrap", "[cast]") {
  CHECK(cast(constant({300, -1, 256}), uint8).to_vector<uint8_t>() == std::vector<uint8_t>{44, 255, 0});
  CHECK(cast(constant({int64_t{1} << 32 | 5, -(int64_t{1} << 40)}, int64), int32).to_vector<int32_t>() ==
        std::vector<int32_t>{5, 0});
  CHECK(cast(constant(std::vector<uint32_t>{UINT32_MAX}, Shape{1}), int32).to_vector<int32_t>() ==
        std::vector<int32_t>{-1});
  CHECK(cast(constant({-1}), uint64).to_vector<uint64_t>() == std::vector<uint64_t>{UINT64_MAX});
}

TEST_CASE("complex and bool conversions", "[cast]") {
  using C = std::complex<double>;
  Tensor c = constant(std::vector<C>{C(1.5, 2), C(0, 3), C(0, 0), C(-2.5, 0)}, Shape{4});
  CHECK(cast(c, float64).to_vector<double>() == std::vector<double>{1.5, 0, 0, -2.5});
  CHECK(cast(c, int32).to_vector<int32_t>() == std::vector<int32_t>{1, 0, 0, -2});
  std::vector<bool> b;
  for (bool v : cast(c, bool_).to_vector<bool>()) b.push_back(v);
  CHECK(b == std::vector<bool>{true, true, false, true});
  CHECK(cast(c, complex64).to_vector<std::complex<float>>() ==
        std::vector<std::complex<float>>{{1.5f, 2}, {0, 3}, {0, 0}, {-2.5f, 0}});
  CHECK(cast(constant({1, -2}), complex128).to_vector<C>() == std::vector<C>{C(1, 0), C(-2, 0)});
  CHECK(cast(constant({true, false}), complex64).to_vector<std::complex<float>>() ==
        std::vector<std::complex<float>>{{1, 0}, {0, 0}});

  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<bool> fb;
  for (bool v : cast(constant(std::vector<float>{0.0f, -0.0f, 0.1f, nan}, Shape{4}), bool_).to_vector<bool>())
    fb.push_back(v);
  CHECK(fb == std::vector<bool>{false, false, true, true});
  Tensor t = constant({true, false, true});
  CHECK(cast(t, int32).to_vector<int32_t>() == std::vector<int32_t>{1, 0, 1});
  CHECK(cast(t, float32).to_vector<float>() == std::vector<float>{1, 0, 1});
  std::vector<Half> hv = cast(t, float16).to_vector<Half>();
  CHECK(static_cast<float>(hv[0]) == 1.0f);
  CHECK(static_cast<float>(hv[1]) == 0.0f);
  std::vector<bool> ib;
  for (bool v : cast(constant({0, 2, -1}), bool_).to_vector<bool>()) ib.push_back(v);
  CHECK(ib == std::vector<bool>{false, true, true});
}

TEST_CASE("16-bit floats convert through float", "[cast]") {
  Tensor i = constant({int64_t{65504}, int64_t{70000}, int64_t{-3}, int64_t{2049}}, int64);
  std::vector<Half> h = cast(i, float16).to_vector<Half>();
  CHECK(static_cast<float>(h[0]) == 65504.0f);
  CHECK(std::isinf(static_cast<float>(h[1])));
  CHECK(static_cast<float>(h[2]) == -3.0f);
  CHECK(static_cast<float>(h[3]) == 2048.0f);  // rounds to nearest even
  std::vector<BFloat16> b = cast(constant({1.0f, 3.0f, 257.0f}), bfloat16).to_vector<BFloat16>();
  CHECK(static_cast<float>(b[1]) == 3.0f);
  CHECK(static_cast<float>(b[2]) == 256.0f);
  Tensor back = cast(cast(constant({0.5, -1.25}), bfloat16), float16);
  CHECK(static_cast<float>(back.to_vector<Half>()[1]) == -1.25f);
  CHECK(cast(back, float64).to_vector<double>() == std::vector<double>{0.5, -1.25});
}

TEST_CASE("every pair of dtypes converts small values exactly", "[cast]") {
  for (DType from : kAllDTypes) {
    Tensor x = cast(constant({0, 1, 1}), from);
    if (from != bool_) x = cast(constant({0, 1, 2}), from);
    for (DType to : kAllDTypes) {
      INFO(dtype_name(from) << " -> " << dtype_name(to));
      Tensor y = cast(x, to);
      CHECK(y.dtype() == to);
      CHECK(y.shape() == Shape{3});
      Tensor back = cast(y, int32);
      std::vector<int32_t> want = {0, 1, (from == bool_ || to == bool_) ? 1 : 2};
      CHECK(back.to_vector<int32_t>() == want);
    }
  }
}

TEST_CASE("cast of empty and large tensors", "[cast]") {
  Tensor e = cast(constant(std::vector<float>{}, Shape{0, 4}), int64);
  CHECK(e.dtype() == int64);
  CHECK(e.shape() == Shape{0, 4});
  std::vector<int32_t> v(200000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(i) - 100000;
  std::vector<double> d = cast(constant(v, Shape{200000}), float64).to_vector<double>();
  bool all = true;
  for (size_t i = 0; i < v.size(); ++i) all &= d[i] == v[i];
  CHECK(all);
}

TEST_CASE("string casts are not supported", "[cast]") {
  CHECK_THROWS_WITH(cast(constant({1.0f}), string), "[cast] casting float32 to string is not supported");
  CHECK_THROWS_AS(cast(constant({1}), string), Unimplemented);
}
