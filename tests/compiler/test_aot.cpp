// Tests of ahead-of-time compilation (compiler/aot): the object's entry points, linked into
// this process, give the JIT's results for inference and for a training step that updates
// variables; shapes and graphs that cannot be compiled are refused with typed errors. The
// generated header is compiled by the out-of-tree check (scripts/aot_check.sh).
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "compiler/aot/aot.h"
#include "compiler/backend/cpu/codegen.h"
#include "kiln/kiln.h"
#include "ops/variable.h"
#include "runtime/safetensors.h"

using namespace kiln;

namespace {

using RawEntry = int32_t (*)(void* const* args, void* const* results, void* arena);

struct Mlp {
  Variable w1{random::normal({64, 32}, 1, 0.0, 0.2), "w1"}, b1{random::normal({32}, 2, 0.0, 0.1), "b1"};
  Variable w2{random::normal({32, 10}, 3, 0.0, 0.2), "w2"}, b2{zeros({10}), "b2"};
  Tensor forward(const Tensor& x) const { return matmul(relu(matmul(x, w1) + b1), w2) + b2; }
};

// Links `object` into the process and returns entry `symbol` (kept alive by `code`).
RawEntry link(const std::string& object, const std::string& symbol, Ref<backend::cpu::NativeCode>& code) {
  code = backend::cpu::load_object(object, symbol);
  return reinterpret_cast<RawEntry>(reinterpret_cast<void*>(code->entry));
}

struct Work {
  std::unique_ptr<float[]> mem{new float[1 << 20]};
  void* get() { return mem.get(); }
};

aot::Entry entry(const std::string& sig, const ConcreteFunction& cf, std::vector<Shape> shapes) {
  aot::Entry e;
  e.signature = sig;
  e.graph = cf.state()->optimized;
  for (const TensorSpec& s : cf.input_specs()) e.input_names.push_back(s.name);
  e.shapes = std::move(shapes);
  return e;
}

}  // namespace

TEST_CASE("aot: inference entry points equal the JIT at each compiled shape", "[aot]") {
  Mlp mlp;
  FunctionOptions o;
  o.name = "serve";
  o.arg_names = {"x"};
  o.input_signature = std::vector<TensorSpec>{TensorSpec({-1, 64}, float32, "x")};
  auto serve = function([&mlp](Tensor x) { return mlp.forward(x); }, o);
  ConcreteFunction cf = serve.get_concrete_function(TensorSpec({-1, 64}, float32));
  aot::Options opts;
  opts.name = "mlp";
  aot::Artifact a = aot::compile({entry("serve", cf, {Shape{1, 64}}), entry("serve", cf, {Shape{8, 64}})}, opts);
  CHECK(a.header.find("class mlp {") != std::string::npos);
  CHECK(a.header.find("int serve_1(const float* x, float* output0)") != std::string::npos);
  CHECK(a.header.find("int serve(const float* x, const int64_t* x_shape, size_t x_rank, float* output0, int64_t* "
                      "output0_shape)") != std::string::npos);

  // with the weights in a file: the object embeds none, the file holds each variable
  aot::Options ext = opts;
  ext.weights_file = true;
  aot::Artifact b = aot::compile({entry("serve", cf, {Shape{1, 64}})}, ext);
  CHECK(b.header.find("explicit mlp(const char* weights_path)") != std::string::npos);
  CHECK(b.header.find("mlp_weights[]") == std::string::npos);
  safetensors::Contents file = safetensors::decode(b.weights);
  REQUIRE(file.tensors.size() == 4);
  REQUIRE(file.find("w1") != nullptr);
  CHECK(file.find("w1")->to_vector<float>() == mlp.w1.read_value().to_vector<float>());

  Ref<backend::cpu::NativeCode> c0, c1;
  RawEntry e0 = link(a.object, "mlp_serve_0", c0), e1 = link(a.object, "mlp_serve_1", c1);
  Work work;
  for (auto [batch, fn] : {std::pair{int64_t(1), e0}, std::pair{int64_t(8), e1}}) {
    Tensor x = random::normal({batch, 64}, uint64_t(batch));
    Tensor want = serve(x);
    std::vector<float> got(size_t(batch * 10));
    std::vector<Tensor> vars{mlp.w1.read_value(), mlp.b1.read_value(), mlp.w2.read_value(), mlp.b2.read_value()};
    // args: the input, then the graph's variables in slot order
    std::vector<void*> args{x.mutable_raw_data()};
    for (const auto& slot : cf.graph().variables) {
      for (size_t i = 0; i < 4; ++i)
        if (slot.name == std::vector<std::string>{"w1", "b1", "w2", "b2"}[i])
          args.push_back(vars[i].mutable_raw_data());
    }
    REQUIRE(args.size() == 5);
    void* results[] = {got.data()};
    REQUIRE(fn(args.data(), results, work.get()) == 0);
    Tensor g = constant(got, {batch, 10});
    CHECK(reduce_max(abs(g - want)).item<float>() <= 1e-5f);
  }
}

TEST_CASE("aot: a training step updates the variables it is given", "[aot]") {
  Variable w(random::normal({4, 3}, 5), "w"), b(zeros({3}), "b");
  auto step = function([&](Tensor x, Tensor y) {
    GradientTape tape;
    Tensor loss = reduce_mean(square(matmul(x, w) + b - y));
    std::vector<Tensor> g = tape.gradient(loss, std::vector<Source>{w, b});
    w.assign_sub(0.1f * g[0]);
    b.assign_sub(0.1f * g[1]);
    return loss;
  });
  Tensor x = random::normal({6, 4}, 6), y = random::normal({6, 3}, 7);
  ConcreteFunction cf = step.get_concrete_function(x, y);
  std::vector<float> w0 = w.read_value().to_vector<float>(), b0 = b.read_value().to_vector<float>();
  aot::Options opts;
  opts.name = "trainer";
  aot::Artifact a = aot::compile({entry("train", cf, {Shape{6, 4}, Shape{6, 3}})}, opts);
  CHECK(a.header.find("std::memcpy(vars() + ") != std::string::npos);  // assigned values are copied back

  Tensor loss_jit = step(x, y);  // updates w and b once
  // the AOT step from the same starting values
  std::vector<float> wv = w0, bv = b0, new_w(12), new_b(3);
  float loss = 0;
  std::vector<void*> args{x.mutable_raw_data(), y.mutable_raw_data()};
  for (const auto& slot : cf.graph().variables) args.push_back(slot.name == "w" ? wv.data() : bv.data());
  // results: the outputs, then the assigned values in assignment order (w, then b)
  std::vector<void*> results{&loss, new_w.data(), new_b.data()};
  Ref<backend::cpu::NativeCode> code;
  Work work;
  REQUIRE(link(a.object, "trainer_train_0", code)(args.data(), results.data(), work.get()) == 0);
  CHECK(std::abs(loss - loss_jit.item<float>()) <= 1e-5f);
  std::vector<float> jw = w.read_value().to_vector<float>(), jb = b.read_value().to_vector<float>();
  for (size_t i = 0; i < 12; ++i) CHECK(std::abs(new_w[i] - jw[i]) <= 1e-5f);
  for (size_t i = 0; i < 3; ++i) CHECK(std::abs(new_b[i] - jb[i]) <= 1e-5f);
}

TEST_CASE("aot: what cannot be compiled ahead of time is refused with a typed error", "[aot]") {
  auto f = function([](Tensor x) { return x * 2.0f; });
  ConcreteFunction cf = f.get_concrete_function(TensorSpec({-1, 3}, float32));
  aot::Options opts;
  opts.name = "ok";
  CHECK_THROWS_AS(aot::compile({entry("f", cf, {Shape{2, 4}})}, opts), InvalidArgument);  // does not fit [?, 3]
  CHECK_THROWS_AS(aot::compile({entry("f", cf, {Shape{2, 3}, Shape{2, 3}})}, opts), InvalidArgument);
  CHECK_THROWS_AS(aot::compile({entry("f", cf, {Shape{2, 3}}), entry("f", cf, {Shape{2, 3}})}, opts), InvalidArgument);
  opts.name = "not an identifier";
  CHECK_THROWS_AS(aot::compile({entry("f", cf, {Shape{2, 3}})}, opts), InvalidArgument);
  opts.name = "ok";
  CHECK_THROWS_AS(aot::compile({}, opts), InvalidArgument);
  // a gather runs on an eager kernel in the JIT; an AOT object has no kernels to call
  auto g = function([](Tensor x, Tensor i) { return gather(x, i); });
  ConcreteFunction gc = g.get_concrete_function(constant({1.0f, 2.0f}), constant({0}));
  try {
    aot::compile({entry("g", gc, {Shape{2}, Shape{1}})}, opts);
    FAIL("expected FailedPrecondition");
  } catch (const FailedPrecondition& e) {
    CHECK(std::string(e.what()).find("gather (float32)") != std::string::npos);
  }
}
