// MatMul: every dtype family against a naive reference, transposes, batch broadcasting, errors.
#include <catch2/catch.hpp>

#include "ops/ops.h"

using namespace kiln;

namespace {
// Reference C = op(A) op(B) in double.
std::vector<double> ref_matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t m, int64_t n,
                               int64_t k, bool ta, bool tb) {
  std::vector<double> c(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p)
        c[i * n + j] += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
  return c;
}
}  // namespace

TEST_CASE("the walkthrough's int32 matmul", "[matmul]") {
  Tensor a = constant({{1, 2}, {3, 4}});
  Tensor b = ones({2, 2}, int32);
  CHECK(matmul(a, b).to_vector<int32_t>() == std::vector<int32_t>{3, 3, 7, 7});
  Tensor x = constant({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
  Tensor y = constant({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}});
  CHECK(matmul(x, y).to_vector<float>() == std::vector<float>{22, 28, 49, 64});
}

TEST_CASE("matmul matches a reference for every dtype and transpose", "[matmul]") {
  for (int64_t size : {3, 17, 70}) {
    for (DType dt : {float32, float64, bfloat16, float16, int32, int64, complex64}) {
      for (bool ta : {false, true}) {
        for (bool tb : {false, true}) {
          int64_t m = size, n = size + 1, k = size + 2;
          Tensor a = cast(random::uniform(ta ? Shape{k, m} : Shape{m, k}, 7, -2, 2, float64), dt);
          Tensor b = cast(random::uniform(tb ? Shape{n, k} : Shape{k, n}, 8, -2, 2, float64), dt);
          if (is_integer(dt)) {
            a = cast(random::uniform(ta ? Shape{k, m} : Shape{m, k}, 7, -5, 5, int32), dt);
            b = cast(random::uniform(tb ? Shape{n, k} : Shape{k, n}, 8, -5, 5, int32), dt);
          }
          Tensor c = matmul(a, b, ta, tb);
          REQUIRE(c.shape() == Shape{m, n});
          auto av = cast(is_complex(dt) ? cast(a, float64) : a, float64).to_vector<double>();
          auto bv = cast(is_complex(dt) ? cast(b, float64) : b, float64).to_vector<double>();
          auto want = ref_matmul(av, bv, m, n, k, ta, tb);
          auto got = cast(is_complex(dt) ? cast(c, float64) : c, float64).to_vector<double>();
          double tol = (dt == bfloat16 || dt == float16) ? 0.08 * k : 1e-4 * k;
          for (size_t i = 0; i < want.size(); ++i) REQUIRE(std::abs(got[i] - want[i]) <= tol);
        }
      }
    }
  }
}

TEST_CASE("matmul broadcasts batch dimensions", "[matmul]") {
  Tensor a = reshape(range(0, 24, 1, float32), {2, 1, 3, 4});
  Tensor b = reshape(range(0, 36, 1, float32), {3, 4, 3});
  Tensor c = matmul(a, b);
  REQUIRE(c.shape() == Shape{2, 3, 3, 3});
  auto av = a.to_vector<float>(), bv = b.to_vector<float>(), cv = c.to_vector<float>();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t s = 0; s < 3; ++s) {
          double want = 0;
          for (int64_t p = 0; p < 4; ++p) want += av[i * 12 + r * 4 + p] * bv[j * 12 + p * 3 + s];
          REQUIRE(cv[((i * 3 + j) * 3 + r) * 3 + s] == Approx(want));
        }
  CHECK(matmul(zeros({2, 0}), zeros({0, 3})).to_vector<float>() == std::vector<float>(6, 0.0f));
}

TEST_CASE("matmul errors name the shapes", "[matmul][errors]") {
  CHECK_THROWS_WITH(matmul(zeros({2, 3}), zeros({4, 2})),
                    "[matmul] inner dimensions do not match: a [2, 3] has 3 columns but b [4, 2] has 4 rows");
  CHECK_THROWS_AS(matmul(zeros({3}), zeros({3, 2})), InvalidArgument);
  CHECK_THROWS_AS(matmul(zeros({2, 2}), zeros({2, 2}, float64)), InvalidArgument);
  CHECK_THROWS_AS(matmul(zeros({2, 2}, bool_), zeros({2, 2}, bool_)), InvalidArgument);
  CHECK_THROWS_AS(matmul(zeros({2, 2, 2}), zeros({3, 2, 2})), InvalidArgument);
}
