// Creation: constant's dtype inference and rectangularity, fill/zeros/ones, range, linspace, eye,
// random ops, reshape views, from_blob.
#include <catch2/catch.hpp>

#include <cmath>

#include "ops/ops.h"

using namespace kiln;

namespace {
// A tensor with static storage duration: freed after the main thread's allocator cache is gone.
Tensor g_static_tensor = zeros({4, 3});
}  // namespace

TEST_CASE("tensors with static storage duration outlive the allocator cache", "[creation]") {
  CHECK(g_static_tensor.num_elements() == 12);
}

TEST_CASE("outputs the machine cannot hold are a ResourceExhausted error naming the op", "[creation][errors]") {
  // 2^40 float32 elements: within int64 and the allocator's classes, far beyond this machine
  CHECK_THROWS_WITH(add(ones({int64_t{1} << 20, 1}), ones({1, int64_t{1} << 20})),
                    Catch::StartsWith("[add] out of memory allocating"));
  CHECK_THROWS_AS(split(zeros({0}), int64_t{1} << 40), InvalidArgument);
}

TEST_CASE("constant infers dtypes as TensorFlow", "[creation]") {
  CHECK(constant(4).dtype() == int32);
  CHECK(constant(4).shape() == Shape{});
  CHECK(constant({2.0, 3.0, 4.0}).dtype() == float32);
  CHECK(constant({true, false}).dtype() == bool_);
  CHECK(constant({int64_t{1} << 40}).dtype() == int64);
  CHECK(constant({std::complex<double>(5, 4), std::complex<double>(6, 1)}).dtype() == complex128);
  CHECK(constant({1, 2}, float16).dtype() == float16);
  CHECK(constant({1, 2.5}).dtype() == float32);
  Tensor t = constant({{{0, 1}, {2, 3}}, {{4, 5}, {6, 7}}});
  CHECK(t.shape() == Shape{2, 2, 2});
  CHECK(t.to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(constant(std::vector<double>{1, 2, 3, 4}, Shape{2, 2}).dtype() == float64);
}

TEST_CASE("constant rejects bad lists", "[creation][errors]") {
  CHECK_THROWS_AS(constant({{0, 1, 2, 3}, {4, 5}, {6, 7, 8}, {9}}), InvalidArgument);
  CHECK_THROWS_AS(constant({{1, 2}, 3}), InvalidArgument);
  CHECK_THROWS_AS(constant({1, true}), InvalidArgument);
  CHECK_THROWS_AS(constant({1.5}, int32), InvalidArgument);
  CHECK_THROWS_AS(constant({300}, uint8), InvalidArgument);
  CHECK_THROWS_AS(constant(std::vector<float>{1, 2, 3}, Shape{2, 2}), InvalidArgument);
}

TEST_CASE("fill, zeros, ones, eye", "[creation]") {
  CHECK(zeros({2, 3}).to_vector<float>() == std::vector<float>(6, 0.0f));
  CHECK(ones({2, 2}, int32).to_vector<int32_t>() == std::vector<int32_t>{1, 1, 1, 1});
  CHECK(fill({3}, scalar<int64_t>(7)).to_vector<int64_t>() == std::vector<int64_t>{7, 7, 7});
  CHECK(eye(2, int32).to_vector<int32_t>() == std::vector<int32_t>{1, 0, 0, 1});
  CHECK(eye(2, 3, float64).shape() == Shape{2, 3});
  CHECK(zeros({0, 4}).num_elements() == 0);
  CHECK_THROWS_AS(zeros({-1, 2}), InvalidArgument);
  CHECK_THROWS_AS(zeros({int64_t{1} << 40, int64_t{1} << 40}), InvalidArgument);
  CHECK_THROWS_AS(eye(-2), InvalidArgument);
  CHECK(ones_like(constant({1, 2})).to_vector<int32_t>() == std::vector<int32_t>{1, 1});
}

TEST_CASE("range and linspace", "[creation]") {
  CHECK(range(1, 5).to_vector<int32_t>() == std::vector<int32_t>{1, 2, 3, 4});
  CHECK(range(5).dtype() == int32);
  CHECK(range(0, 1, 0.25).to_vector<float>() == std::vector<float>{0, 0.25f, 0.5f, 0.75f});
  CHECK(range(5, 0, -2).to_vector<int32_t>() == std::vector<int32_t>{5, 3, 1});
  CHECK_THROWS_WITH(range(0, 5, 0), "[range] delta must not be 0");
  CHECK_THROWS_AS(range(5, 0, 1), InvalidArgument);
  CHECK(linspace(0, 1, 5).to_vector<float>() == std::vector<float>{0, 0.25f, 0.5f, 0.75f, 1});
  CHECK(linspace(3, 3, 1).to_vector<float>() == std::vector<float>{3});
  CHECK_THROWS_AS(linspace(0, 1, -1), InvalidArgument);
}

TEST_CASE("random ops are reproducible with a seed and in range", "[creation][random]") {
  Tensor a = random::normal({1000}, 1);
  Tensor b = random::normal({1000}, 1);
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  CHECK(random::normal({1000}, 2).to_vector<float>() != a.to_vector<float>());
  CHECK(random::normal({4}).to_vector<float>() != random::normal({4}).to_vector<float>());
  auto v = random::normal({20000}, 3, 1.0, 2.0).to_vector<float>();
  double mean = 0, var = 0;
  for (float x : v) mean += x;
  mean /= v.size();
  for (float x : v) var += (x - mean) * (x - mean);
  var /= v.size();
  CHECK(std::abs(mean - 1.0) < 0.05);
  CHECK(std::abs(std::sqrt(var) - 2.0) < 0.05);
  auto u = random::uniform({10000}, 5, -1.0, 1.0).to_vector<float>();
  for (float x : u) REQUIRE((x >= -1.0f && x < 1.0f));
  auto ui = random::uniform({10000}, 5, 0, 10, int32).to_vector<int32_t>();
  std::vector<int> counts(10, 0);
  for (int x : ui) {
    REQUIRE((x >= 0 && x < 10));
    counts[x]++;
  }
  for (int c : counts) CHECK(c > 800);
  CHECK_THROWS_AS(random::uniform({2}, 1, 3, 3, int32), InvalidArgument);
  CHECK_THROWS_AS(random::normal({2}, 1, 0, 1, int32), InvalidArgument);
}

TEST_CASE("reshape shares storage and checks element counts", "[creation][reshape]") {
  Tensor t = range(30);
  Tensor r = reshape(t, {3, -1});
  CHECK(r.shape() == Shape{3, 10});
  CHECK(r.raw_data() == t.raw_data());
  CHECK(reshape(t, {-1}).shape() == Shape{30});
  CHECK_THROWS_WITH(reshape(t, {7, -1}), "[reshape] cannot reshape a tensor with 30 elements to shape [7, -1]");
  CHECK_THROWS_AS(reshape(t, {-1, -1}), InvalidArgument);
  CHECK_THROWS_AS(reshape(t, {4, 8}), InvalidArgument);
  CHECK_THROWS_AS(reshape(t, {-3, 10}), InvalidArgument);
  CHECK_THROWS_AS(reshape(zeros({0, 3}), {-1, 0}), InvalidArgument);  // -1 is ambiguous with 0 elements
  CHECK(reshape(zeros({0, 3}), {3, 0}).shape() == Shape{3, 0});
}

TEST_CASE("from_blob wraps caller memory without copying", "[creation]") {
  float data[6] = {1, 2, 3, 4, 5, 6};
  bool freed = false;
  {
    Tensor t = from_blob(data, {2, 3}, float32, [&](void*) { freed = true; });
    CHECK(t.raw_data() == data);
    CHECK((t + t).to_vector<float>() == std::vector<float>{2, 4, 6, 8, 10, 12});
  }
  CHECK(freed);
  CHECK_THROWS_AS(from_blob(nullptr, {2}, float32), InvalidArgument);
}

TEST_CASE("host access checks the element type", "[creation][errors]") {
  Tensor t = constant({1, 2});
  CHECK_THROWS_WITH(t.to_vector<float>(), "[data] requested element type float32 but the tensor has dtype int32");
  CHECK_THROWS_AS(t.item<int32_t>(), InvalidArgument);
  CHECK(constant(5).item<int32_t>() == 5);
  Tensor none;
  CHECK_FALSE(none.defined());
  CHECK_THROWS_WITH(none + t, "[add] input 0 is undefined (None)");
  CHECK_THROWS_AS(none.shape(), FailedPrecondition);
}
