// Elementwise ops: results, broadcasting, dtype rules and errors.
#include <catch2/catch.hpp>

#include "ops/ops.h"

using namespace kiln;

TEST_CASE("int32 arithmetic and broadcasting", "[elementwise]") {
  Tensor a = constant({{1, 2}, {3, 4}});
  Tensor b = ones({2, 2}, int32);
  CHECK(a.dtype() == int32);
  CHECK((a + b).to_vector<int32_t>() == std::vector<int32_t>{2, 3, 4, 5});
  CHECK((a * b).to_vector<int32_t>() == std::vector<int32_t>{1, 2, 3, 4});
  Tensor x = reshape(constant({1, 2, 3}), {3, 1});
  Tensor y = range(1, 5);
  Tensor m = multiply(x, y);
  CHECK(m.shape() == Shape{3, 4});
  CHECK(m.to_vector<int32_t>() == std::vector<int32_t>{1, 2, 3, 4, 2, 4, 6, 8, 3, 6, 9, 12});
  CHECK((constant({1, 2, 3}) * 2).to_vector<int32_t>() == std::vector<int32_t>{2, 4, 6});
}

TEST_CASE("mixed dtypes are an error naming both", "[elementwise]") {
  CHECK_THROWS_WITH(constant({1, 2}) + constant({1.0, 2.0}),
                    "[add] x has dtype int32 but y has dtype float32; both operands must have the same dtype "
                    "(use kiln::cast)");
  CHECK_THROWS_AS(constant({1, 2}) * 2.5, InvalidArgument);
  CHECK_THROWS_AS(exp(constant({1, 2})), InvalidArgument);
}

TEST_CASE("integer division rules", "[elementwise]") {
  Tensor a = constant({7, -7, 7, -7});
  Tensor b = constant({2, 2, -2, -2});
  CHECK(floordiv(a, b).to_vector<int32_t>() == std::vector<int32_t>{3, -4, -4, 3});
  CHECK(mod(a, b).to_vector<int32_t>() == std::vector<int32_t>{1, 1, -1, -1});
  CHECK(divide(a, b).dtype() == float64);
  CHECK_THROWS_WITH(floordiv(a, constant({1, 0, 1, 1})), "[floordiv] integer division by zero");
  CHECK_THROWS_AS(pow(a, constant({1, -1, 1, 1})), InvalidArgument);
  CHECK(pow(constant({2, 3}), constant({10, 3})).to_vector<int32_t>() == std::vector<int32_t>{1024, 27});
}

TEST_CASE("signed overflow wraps without undefined behaviour", "[elementwise]") {
  Tensor m = constant({INT32_MIN, INT32_MAX});
  CHECK(negative(m).to_vector<int32_t>() == std::vector<int32_t>{INT32_MIN, -INT32_MAX});
  CHECK((m + 1).to_vector<int32_t>() == std::vector<int32_t>{INT32_MIN + 1, INT32_MIN});
  CHECK(abs(m).to_vector<int32_t>() == std::vector<int32_t>{INT32_MIN, INT32_MAX});
}
