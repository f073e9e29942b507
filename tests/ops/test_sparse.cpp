// Sparse tensors: the walkthrough's sparse section, validation on construction, to_dense /
// from_dense round trips, reorder, add, reduce_sum, sparse-dense matmul and their gradients.
#include <catch2/catch.hpp>

#include <random>
#include <sstream>

#include "autodiff/check.h"
#include "autodiff/tape.h"
#include "ops/ops.h"
#include "ops/sparse.h"
#include "tests/support/text.h"

using namespace kiln;
using I64 = std::vector<int64_t>;

using kiln::testing::str;

namespace {

Tensor i64(const I64& v, const Shape& s) { return constant(v, s); }

// A random sparse matrix (canonical order) with about `density` of its entries stored.
SparseTensor random_sparse(std::mt19937& rng, int64_t rows, int64_t cols, double density) {
  I64 idx;
  std::vector<float> vals;
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      if (u(rng) < density) {
        idx.push_back(r);
        idx.push_back(c);
        vals.push_back(static_cast<float>(std::round(u(rng) * 20 - 10)));
      }
  const auto n = static_cast<int64_t>(vals.size());
  return SparseTensor(i64(idx, {n, 2}), constant(vals, {n}), i64({rows, cols}, {2}));
}
}  // namespace

TEST_CASE("the walkthrough's sparse section", "[sparse][walkthrough]") {
  sparse::SparseTensor sparse_tensor({{0, 0}, {1, 2}}, {1, 2}, {3, 4});
  CHECK(str(sparse_tensor) ==
        "SparseTensor(indices=kiln.Tensor(\n[[0 0]\n [1 2]], shape=(2, 2), dtype=int64), values=kiln.Tensor([1 2], "
        "shape=(2,), dtype=int32), dense_shape=kiln.Tensor([3 4], shape=(2,), dtype=int64))");
  CHECK(str(sparse::to_dense(sparse_tensor)) ==
        "kiln.Tensor(\n[[1 0 0 0]\n [0 0 2 0]\n [0 0 0 0]], shape=(3, 4), dtype=int32)");
}

TEST_CASE("sparse tensors are validated on construction", "[sparse]") {
  CHECK_THROWS_MATCHES(SparseTensor({{0, 0}, {3, 2}}, {1, 2}, {3, 4}), InvalidArgument,
                       Catch::Matchers::Message("[SparseTensor] index [3, 2] (entry 1) is out of bounds for "
                                                "dense_shape [3, 4]"));
  CHECK_THROWS_WITH(SparseTensor({{0, -1}}, {1}, {3, 4}), Catch::Contains("index [0, -1] (entry 0) is out of bounds"));
  CHECK_THROWS_MATCHES(SparseTensor({{1, 2}, {0, 0}}, {1, 2}, {3, 4}), InvalidArgument,
                       Catch::Matchers::Message("[SparseTensor] index [0, 0] (entry 1) comes before entry 0 [1, 2] in "
                                                "row-major order; sort with kiln::sparse::reorder"));
  CHECK_THROWS_WITH(SparseTensor({{1, 2}, {1, 2}}, {1, 2}, {3, 4}), Catch::Contains("repeats entry 0"));
  CHECK_THROWS_WITH(SparseTensor({{0, 0}}, {1, 2}, {3, 4}), Catch::Contains("1 entries but values has 2"));
  CHECK_THROWS_WITH(SparseTensor({{0, 0}}, {1}, {3}), Catch::Contains("2 columns but dense_shape has rank 1"));
  CHECK_THROWS_WITH(SparseTensor({{0, 0}}, {1}, {3, -4}), Catch::Contains("negative"));
  CHECK_THROWS_WITH(SparseTensor({{0.5, 0}}, {1}, {3, 4}), Catch::Contains("integers"));
  CHECK_THROWS_WITH(SparseTensor(constant({{0, 0}}), constant({1}), i64({3, 4}, {2})), Catch::Contains("int64"));
  CHECK_THROWS_WITH(SparseTensor(i64({0, 0}, {1, 2}), constant(1), i64({3, 4}, {2})), Catch::Contains("vector [N]"));
  CHECK_THROWS_WITH(SparseTensor({{0, 0}}, {1}, {int64_t{1} << 40, int64_t{1} << 40}), Catch::Contains("overflows"));
  // huge dense shapes are fine as long as they are not densified
  SparseTensor wide({{5, int64_t{1} << 40}}, {1.0}, {10, int64_t{1} << 41});
  CHECK(sparse::reduce_sum(wide).item<float>() == 1.0f);
  CHECK_THROWS_AS(sparse::to_dense(wide), InvalidArgument);
  SparseTensor empty({}, NestedList{}, {2, 2});
  CHECK(empty.nnz() == 0);
  CHECK(sparse::to_dense(empty).to_vector<float>() == std::vector<float>{0, 0, 0, 0});
}

TEST_CASE("reorder sorts indices and values together", "[sparse]") {
  SparseTensor sp = sparse::reorder(i64({1, 2, 0, 3, 0, 1}, {3, 2}), constant({10, 20, 30}), i64({3, 4}, {2}));
  CHECK(sp.indices().to_vector<int64_t>() == I64{0, 1, 0, 3, 1, 2});
  CHECK(sp.values().to_vector<int32_t>() == std::vector<int32_t>{30, 20, 10});
  CHECK_THROWS_WITH(sparse::reorder(i64({1, 2, 1, 2}, {2, 2}), constant({1, 2}), i64({3, 4}, {2})),
                    Catch::Contains("repeats"));
  CHECK_THROWS_WITH(sparse::reorder(i64({1, 9}, {1, 2}), constant({1}), i64({3, 4}, {2})),
                    Catch::Contains("out of bounds"));
  CHECK_THROWS_WITH(sparse::reorder(i64({1, 2}, {1, 2}), constant({1, 2}), i64({3, 4}, {2})),
                    Catch::StartsWith("[sparse.reorder]"));
}

TEST_CASE("to_dense, from_dense and defaults", "[sparse]") {
  SparseTensor sp({{0, 1}, {2, 0}}, {5.0, -1.0}, {3, 2});
  CHECK(sparse::to_dense(sp, constant(9.0f)).to_vector<float>() == std::vector<float>{9, 5, 9, 9, -1, 9});
  CHECK_THROWS_WITH(sparse::to_dense(sp, constant(1)), Catch::Contains("default_value has dtype int32"));
  SparseTensor words({{1}}, {"b"}, {3});
  CHECK(sparse::to_dense(words).to_vector<std::string>() == std::vector<std::string>{"", "b", ""});
  CHECK(sparse::to_dense(words, constant("-")).to_vector<std::string>() == std::vector<std::string>{"-", "b", "-"});
  CHECK(sparse::to_dense(SparseTensor({{0}}, {true}, {2})).to_vector<bool>() == std::vector<bool>{true, false});
  SparseTensor back = sparse::from_dense(constant({{0, 3}, {4, 0}}));
  CHECK(str(back) ==
        "SparseTensor(indices=kiln.Tensor(\n[[0 1]\n [1 0]], shape=(2, 2), dtype=int64), values=kiln.Tensor([3 4], "
        "shape=(2,), dtype=int32), dense_shape=kiln.Tensor([2 2], shape=(2,), dtype=int64))");
  CHECK(sparse::from_dense(constant({"", "x"})).indices().to_vector<int64_t>() == I64{1});
  CHECK(sparse::from_dense(constant(7)).nnz() == 1);
  CHECK(sparse::to_dense(sparse::from_dense(constant(7))).item<int32_t>() == 7);
}

TEST_CASE("property: sparse round trips and matmul against dense matmul", "[sparse][property]") {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 30; ++trial) {
    const int64_t m = 1 + rng() % 6, k = 1 + rng() % 6, n = 1 + rng() % 5;
    const double density = (rng() % 5) / 4.0;
    SparseTensor sp = random_sparse(rng, m, k, density);
    Tensor dense = sparse::to_dense(sp);
    // from_dense(to_dense(sp)) keeps the nonzero entries of sp, in order
    SparseTensor back = sparse::from_dense(dense);
    CHECK(sparse::to_dense(back).to_vector<float>() == dense.to_vector<float>());
    CHECK(sparse::to_dense(sparse::from_dense(dense)).to_vector<float>() == dense.to_vector<float>());
    Tensor b = round(random::uniform({k, n}, uint64_t(trial), -5, 5));
    CHECK(sparse::matmul(sp, b).to_vector<float>() == matmul(dense, b).to_vector<float>());
    Tensor bt = round(random::uniform({n, k}, uint64_t(trial + 100), -5, 5));
    CHECK(sparse::matmul(sp, bt, false, true).to_vector<float>() == matmul(dense, bt, false, true).to_vector<float>());
    Tensor c = round(random::uniform({m, n}, uint64_t(trial + 200), -5, 5));
    CHECK(sparse::matmul(sp, c, true).to_vector<float>() == matmul(dense, c, true).to_vector<float>());
    // sums agree with the dense ones on every axis
    CHECK(sparse::reduce_sum(sp, 0).to_vector<float>() == reduce_sum(dense, 0).to_vector<float>());
    CHECK(sparse::reduce_sum(sp, 1, true).to_vector<float>() == reduce_sum(dense, 1, true).to_vector<float>());
    CHECK(sparse::reduce_sum(sp).item<float>() == reduce_sum(dense).item<float>());
    SparseTensor other = random_sparse(rng, m, k, density);
    CHECK(sparse::to_dense(sparse::add(sp, other)).to_vector<float>() ==
          (dense + sparse::to_dense(other)).to_vector<float>());
  }
}

TEST_CASE("add, reduce_sum and matmul check their operands", "[sparse]") {
  SparseTensor a({{0, 0}, {1, 1}}, {1, 2}, {2, 3});
  SparseTensor b({{0, 0}, {0, 2}}, {10, 20}, {2, 3});
  SparseTensor s = sparse::add(a, b);
  CHECK(s.indices().to_vector<int64_t>() == I64{0, 0, 0, 2, 1, 1});
  CHECK(s.values().to_vector<int32_t>() == std::vector<int32_t>{11, 20, 2});
  CHECK(sparse::add(a, ones({2, 3}, int32)).to_vector<int32_t>() == std::vector<int32_t>{2, 1, 1, 1, 3, 1});
  CHECK_THROWS_WITH(sparse::add(a, SparseTensor({{0}}, {1}, {2})), Catch::Contains("[2, 3] and [2]"));
  CHECK_THROWS_WITH(sparse::add(a, SparseTensor({{0, 0}}, {1.0}, {2, 3})), Catch::Contains("int32 and float32"));
  CHECK_THROWS_WITH(sparse::add(SparseTensor({{0}}, {true}, {2}), SparseTensor({{0}}, {true}, {2})),
                    Catch::Contains("bool"));
  CHECK(sparse::reduce_sum(a, {0, 1}).item<int32_t>() == 3);
  CHECK(sparse::reduce_sum(a, -1).to_vector<int32_t>() == std::vector<int32_t>{1, 2});
  CHECK(sparse::reduce_sum(a, {}, true).shape() == Shape{1, 1});
  CHECK_THROWS_WITH(sparse::reduce_sum(a, 2), Catch::StartsWith("[sparse.reduce_sum]"));
  CHECK_THROWS_WITH(sparse::reduce_sum(a, {1, -1}), Catch::Contains("more than once"));
  CHECK_THROWS_WITH(sparse::matmul(a, ones({2, 2}, int32)), Catch::Contains("inner dimensions differ"));
  CHECK_THROWS_WITH(sparse::matmul(a, ones({3, 2})), Catch::Contains("dtype int32"));
  CHECK_THROWS_WITH(sparse::matmul(a, ones({3}, int32)), Catch::Contains("dense matrix"));
  CHECK_THROWS_WITH(sparse::matmul(SparseTensor({{0}}, {1}, {2}), ones({2, 2}, int32)), Catch::Contains("(2,)"));
  CHECK(sparse::matmul(a, ones({3, 2}, int32)).to_vector<int32_t>() == std::vector<int32_t>{1, 1, 2, 2});
}

TEST_CASE("gradients with respect to sparse values and the dense matrix", "[sparse][autodiff]") {
  const Tensor idx = i64({0, 1, 1, 0, 2, 2}, {3, 2});
  const Tensor shape = i64({3, 3}, {2});
  Tensor values = constant({1.0, 2.0, 3.0});
  Tensor b = constant({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}});
  GradientTape tape(true);
  tape.watch(values);
  tape.watch(b);
  SparseTensor sp(idx, values, shape);
  Tensor y = reduce_sum(sparse::matmul(sp, b));
  auto g = tape.gradient(y, {values, b});
  // d/dv of sum(v_k * b[c_k, :]) = row sums of b at each column
  CHECK(g[0].to_vector<float>() == std::vector<float>{7, 3, 11});
  // d/db[c, :] = sum of values in column c
  CHECK(g[1].to_vector<float>() == std::vector<float>{2, 2, 1, 1, 3, 3});
  CHECK(tape.gradient(reduce_sum(square(sparse::to_dense(sp))), values).to_vector<float>() ==
        std::vector<float>{2, 4, 6});
  CHECK(
      tape.gradient(reduce_sum(sparse::reduce_sum(sp, 1) * constant({1.0, 10.0, 100.0})), values).to_vector<float>() ==
      std::vector<float>{1, 10, 100});
  auto check = autodiff::check_gradients(
      [&](const std::vector<Tensor>& in) {
        SparseTensor s(idx, in[0], shape);
        SparseTensor t = sparse::add(s, s.with_values(in[0] * in[0]));
        return sparse::matmul(t, in[1], true, false);
      },
      {constant({1.0, 2.0, 3.0}, float64), constant({{1.0, -2.0}, {0.5, 4.0}, {5.0, 6.0}}, float64)});
  INFO(check.report);
  CHECK(check.ok);
}
