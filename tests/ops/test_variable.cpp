// Variables: assignment, copy-on-write, independence of copies, errors, device scopes.
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "ops/variable.h"

using namespace kiln;

TEST_CASE("variables hold and replace values", "[variable]") {
  Variable a(constant({2.0, 3.0}));
  CHECK(a.name() == "Variable:0");
  CHECK(a.trainable());
  a.assign({1, 2});
  CHECK(a.to_vector<float>() == std::vector<float>{1, 2});
  CHECK_THROWS_WITH(a.assign({1.0, 2.0, 3.0}),
                    "[assign] cannot assign to variable Variable:0 due to variable shape (2,) and value shape (3,) are "
                    "incompatible");
  CHECK_THROWS_AS(a.assign(constant({1, 2})), InvalidArgument);
  CHECK(a.to_vector<float>() == std::vector<float>{1, 2});
}

TEST_CASE("copies do not share storage", "[variable]") {
  Variable a(constant({2.0, 3.0}));
  Variable b(a);
  a.assign({5, 6});
  CHECK(a.to_vector<float>() == std::vector<float>{5, 6});
  CHECK(b.to_vector<float>() == std::vector<float>{2, 3});
  CHECK(a.assign_add({2, 3}).to_vector<float>() == std::vector<float>{7, 9});
  CHECK(a.assign_sub({7, 9}).to_vector<float>() == std::vector<float>{0, 0});
}

TEST_CASE("a value read before an assignment keeps its contents", "[variable]") {
  Variable v(constant({1, 2, 3}));
  Tensor before = v;
  v.assign_add(constant({10, 10, 10}));
  CHECK(before.to_vector<int32_t>() == std::vector<int32_t>{1, 2, 3});
  CHECK(v.to_vector<int32_t>() == std::vector<int32_t>{11, 12, 13});
  // with no outstanding reads the buffer is reused in place
  const void* p = v.read_value().raw_data();
  v.assign(constant({0, 0, 0}));
  CHECK(v.read_value().raw_data() == p);
}

TEST_CASE("variables work in ops as tensors", "[variable]") {
  Variable a(constant({{1.0, 2.0}, {3.0, 4.0}}), "Mark");
  Variable b(constant({{1.0, 2.0}, {3.0, 4.0}}) + 1, "Mark");
  CHECK((a == b).to_vector<bool>() == std::vector<bool>{false, false, false, false});
  CHECK(argmax(a).to_vector<int64_t>() == std::vector<int64_t>{1, 1});
  CHECK(reshape(a, {1, 4}).shape() == Shape{1, 4});
  Variable step(constant(1), "step", /*trainable=*/false);
  CHECK_FALSE(step.trainable());
  CHECK(step.name() == "step:0");
}

TEST_CASE("device scopes and soft placement", "[variable][device]") {
  CHECK(current_device() == kCPU);
  {
    DeviceScope scope("GPU:0");
    CHECK(scope.requested().type == DeviceType::GPU);
    CHECK(scope.placed() == kCPU);  // no GPU in this build: soft placement
    Variable k(constant({1.0, 2.0}));
    CHECK(k.device() == kCPU);
  }
  CHECK(Device::parse("/job:localhost/replica:0/task:0/device:CPU:0") == kCPU);
  CHECK(Device::parse("gpu:1").index == 1);
  CHECK_THROWS_AS(Device::parse("TPU:0"), InvalidArgument);
  CHECK_THROWS_AS(DeviceScope("CPU:3"), InvalidArgument);
}
