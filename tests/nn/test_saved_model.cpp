// Saved functions: the walkthrough's round trip (save a module's traced signatures, load them
// without the C++ class, same results, no new traces), Keras models with a symbolic batch dim,
// `describe`, and corrupt or missing files as typed errors.
#include <catch2/catch.hpp>

#include "tests/support/temp_dir.h"

#include <kiln/kiln.h>
#include <atomic>
#include <filesystem>
#include <fstream>

#include "runtime/file_io.h"
#ifdef KILN_WITH_LLVM
#include "compiler/aot/aot.h"
#include "compiler/backend/cpu/codegen.h"
#endif

using namespace kiln;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

struct TempDir : testing::TempDir {
  TempDir() : testing::TempDir("kiln_saved") {}
  std::string sub(const std::string& name) const { return file(name); }
};

// The walkthrough's two-layer module of hand-written dense modules.
struct DenseModuleImpl : nn::Module {
  Variable w, b;
  DenseModuleImpl(int64_t in, int64_t out, uint64_t seed) {
    w = register_variable("w", random::normal({in, out}, seed), true);
    b = register_variable("b", zeros({out}), true);
  }
  Tensor operator()(const Tensor& x) const { return relu(matmul(x, w) + b); }
};
KILN_MODULE(DenseModule);

struct MySequentialModuleImpl : nn::Module {
  DenseModule dense_1 = register_module("dense_1", DenseModule(3, 3, 1));
  DenseModule dense_2 = register_module("dense_2", DenseModule(3, 2, 2));
  MySequentialModuleImpl() : nn::Module("my_sequential_module") {}
  Tensor operator()(const Tensor& x) const { return dense_2(dense_1(x)); }
};
KILN_MODULE(MySequentialModule);

std::vector<float> flat(const Tensor& t) { return t.to_vector<float>(); }

}  // namespace

TEST_CASE("the walkthrough's saved function round trip", "[nn][saved_model]") {
  TempDir dir;
  MySequentialModule my_model;
  auto call = function([m = my_model](Tensor x) { return m(x); }, {.name = "__call__", .arg_names = {"x"}});
  Tensor a = constant({{2.0f, 2.0f, 2.0f}});
  Tensor b = constant({{{2.0f, 2.0f, 2.0f}, {2.0f, 2.0f, 2.0f}}});
  Tensor ra = call(a), rb = call(b);
  REQUIRE(call.tracing_count() == 2);
  saved_model::Signatures sigs;
  int i = 0;
  for (auto& cf : call.concrete_functions()) sigs.emplace_back("call_" + std::to_string(i++), cf);
  std::string path = dir.sub("the_saved_model");
  saved_model::save(my_model, path, sigs);
  CHECK(fs::exists(path + "/manifest.json"));
  CHECK(fs::exists(path + "/variables.safetensors"));
  CHECK(fs::exists(path + "/signatures/call_0.kir"));

  saved_model::LoadedModel new_model = saved_model::load(path);
  CHECK(new_model.signature_keys() == std::vector<std::string>{"call_0", "call_1"});
  CHECK(new_model.module_type() == "MySequentialModule");
  CHECK(flat(new_model({a})[0]) == flat(ra));
  CHECK(flat(new_model({b})[0]) == flat(rb));
  CHECK(new_model.variables().size() == 4);
  CHECK(new_model.variables()[0].first == "dense_1/w");
  // the loaded variables are new: changing the original does not change the loaded model
  my_model->dense_1->b.assign(ones({3}));
  CHECK(flat(new_model({a})[0]) == flat(ra));
  // a new signature cannot be traced
  CHECK_THROWS_AS(new_model({constant({{2.0f, 2.0f}})}), InvalidArgument);
  CHECK_THROWS_WITH(new_model({constant({{2.0f, 2.0f}})}),
                    Contains("[saved_model]") && Contains("cannot trace new signatures") &&
                        Contains("float32 Tensor, shape=(1, 2)") && Contains("call_0(x)"));
  CHECK_THROWS_AS(new_model.signature("serve"), NotFound);
  // a loaded signature is differentiable (a tape records it as one call op); with a
  // symbolic batch dim this hits the tracer gap pinned in test_tracer_gaps.cpp
  {
    GradientTape tape;
    Tensor loss = reduce_sum(square(new_model({a})[0]));
    std::vector<Source> sources;
    for (auto& v : new_model.trainable_variables()) sources.emplace_back(v);
    std::vector<Tensor> grads = tape.gradient(loss, sources);
    REQUIRE(grads.size() == 4);
    for (auto& g : grads) CHECK(g.defined());
  }
}

TEST_CASE("a Keras model saved with a symbolic batch dim serves any batch size", "[nn][saved_model]") {
  TempDir dir;
  nn::clear_session();
  auto model = nn::Sequential({nn::Dense(8, "relu"), nn::Dense(3)});
  model->compile({.optimizer = "adam", .loss = nn::losses::SparseCategoricalCrossentropy(true)});
  Tensor x = random::normal({20, 4}, 5);
  Tensor y = cast(random::uniform({20}, 6, 0.0, 3.0), int32);
  model->fit(x, y, {.epochs = 2, .batch_size = 8, .verbose = 0, .seed = 1});
  auto serve = function([model](Tensor x) { return model(x); }, {.name = "serve", .arg_names = {"x"}});
  ConcreteFunction cf = serve.get_concrete_function(TensorSpec({-1, 4}, float32));
  saved_model::save(model, dir.sub("m"), {{"serve", cf}});
  auto loaded = saved_model::load(dir.sub("m"));
  for (int64_t n : {1, 5, 20}) {
    Tensor xs = x.index({Slice(0, n)});
    CHECK(flat(loaded.call("serve", std::vector<Tensor>{xs})[0]) == flat(model->predict(xs)));
  }
  CHECK(loaded.trainable_variables().size() == 4);
  std::string text = saved_model::describe(dir.sub("m"));
  CHECK_THAT(text, Contains("Sequential 'sequential'") && Contains("serve(x)") &&
                       Contains("x: float32 Tensor, shape=(None, 4)") && Contains("dense/kernel    float32 (4, 8)") &&
                       Contains("total: 67 parameters") && Contains("kiln.ir 1"));
}

TEST_CASE("saved model errors are typed", "[nn][saved_model][errors]") {
  TempDir dir;
  MySequentialModule m;
  auto f = function([m](Tensor x) { return m(x); });
  ConcreteFunction cf = f.get_concrete_function(TensorSpec({1, 3}, float32));
  CHECK_THROWS_AS(saved_model::save(m, dir.sub("a"), {}), InvalidArgument);
  CHECK_THROWS_AS(saved_model::save(m, dir.sub("a"), {{"../evil", cf}}), InvalidArgument);
  CHECK_THROWS_AS(saved_model::save(m, dir.sub("a"), {{"s", cf}, {"s", cf}}), InvalidArgument);
  CHECK_THROWS_AS(saved_model::load(dir.sub("missing")), NotFound);

  std::string path = dir.sub("ok");
  saved_model::save(m, path, {{"s", cf}});
  auto copy_to = [&](const std::string& name) {
    std::string p = dir.sub(name);
    fs::copy(path, p, fs::copy_options::recursive);
    return p;
  };
  auto rewrite = [](const std::string& file, const std::function<std::string(std::string)>& edit) {
    std::string b = io::read_file(file, "test");
    std::ofstream(file, std::ios::binary | std::ios::trunc) << edit(b);
  };
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    size_t at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
  };
  {
    std::string p = copy_to("v2");
    rewrite(p + "/manifest.json", [&](std::string s) { return replace(s, "\"version\": 1", "\"version\": 2"); });
    CHECK_THROWS_AS(saved_model::load(p), Unimplemented);
  }
  {
    std::string p = copy_to("badjson");
    rewrite(p + "/manifest.json", [](std::string s) { return s.substr(0, s.size() / 2); });
    CHECK_THROWS_AS(saved_model::load(p), DataLoss);
  }
  {
    std::string p = copy_to("badkey");
    rewrite(p + "/manifest.json", [&](std::string s) { return replace(s, "\"dense_1/w\"", "\"nope\""); });
    CHECK_THROWS_AS(saved_model::load(p), DataLoss);
  }
  {
    std::string p = copy_to("badir");
    rewrite(p + "/signatures/s.kir", [](std::string s) { return s.substr(0, s.size() / 2); });
    CHECK_THROWS_WITH(saved_model::load(p), Contains("[saved_model]") && Contains("not a valid graph"));
  }
  {
    std::string p = copy_to("badvars");
    rewrite(p + "/variables.safetensors", [](std::string s) { return s.substr(0, s.size() - 3); });
    CHECK_THROWS_AS(saved_model::load(p), DataLoss);
  }
  {
    std::string p = copy_to("nograph");
    fs::remove(p + "/signatures/s.kir");
    CHECK_THROWS_AS(saved_model::load(p), NotFound);
  }
  {
    // truncating the manifest at any length is a typed error
    std::string full = io::read_file(path + "/manifest.json", "test");
    std::string p = copy_to("cut");
    for (size_t len = 0; len < full.size(); len += 13) {
      std::ofstream(p + "/manifest.json", std::ios::binary | std::ios::trunc) << full.substr(0, len);
      INFO("length " << len);
      CHECK_THROWS_AS(saved_model::load(p), DataLoss);
    }
  }
}

#ifdef KILN_WITH_LLVM
// What `kiln aot` does with a saved model, checked without a C++ compiler: the object's entry
// points are linked into this process and called with the raw convention (inputs, then the
// variables in slot order; results: the outputs).
std::vector<float> run_aot(const ConcreteFunction& cf, const std::string& symbol, const std::string& object,
                           const Tensor& x, int64_t out_elements) {
  Ref<backend::cpu::NativeCode> code = backend::cpu::load_object(object, symbol);
  auto entry = reinterpret_cast<int32_t (*)(void* const*, void* const*, void*)>(reinterpret_cast<void*>(code->entry));
  std::vector<Tensor> keep{x};
  std::vector<void*> args{x.mutable_raw_data()};
  for (const auto& slot : cf.graph().variables) {
    keep.push_back(slot.var.lock()->value());
    args.push_back(keep.back().mutable_raw_data());
  }
  std::vector<float> out(static_cast<size_t>(out_elements));
  void* results[] = {out.data()};
  std::vector<float> work(1 << 16);
  REQUIRE(entry(args.data(), results, work.data()) == 0);
  return out;
}

TEST_CASE("saved models compile ahead of time to the JIT's results", "[nn][saved_model][aot]") {
  TempDir dir;
  // the walkthrough's module, one signature per traced shape
  MySequentialModule my_model;
  auto call = function([m = my_model](Tensor x) { return m(x); }, {.name = "__call__", .arg_names = {"x"}});
  Tensor a = constant({{2.0f, -1.0f, 0.5f}});
  call(a);
  saved_model::save(my_model, dir.sub("module"), {{"call", call.concrete_functions().at(0)}});
  // a Keras model with a symbolic batch dim, compiled for two batch sizes
  nn::clear_session();
  auto model = nn::Sequential({nn::Dense(8, "relu"), nn::Dense(3)});
  auto serve = function([model](Tensor x) { return model(x); }, {.name = "serve", .arg_names = {"x"}});
  Tensor x = random::normal({5, 4}, 9);
  model(x);
  saved_model::save(model, dir.sub("keras"), {{"serve", serve.get_concrete_function(TensorSpec({-1, 4}, float32))}});

  saved_model::LoadedModel m1 = saved_model::load(dir.sub("module"));
  ConcreteFunction c1 = m1.signature("call");
  aot::Artifact a1 = aot::compile({{"call", c1.state()->optimized, {"x"}, {}, {Shape{1, 3}}}}, {.name = "module"});
  CHECK(run_aot(c1, "module_call_0", a1.object, a, 2) == flat(m1({a})[0]));

  saved_model::LoadedModel m2 = saved_model::load(dir.sub("keras"));
  ConcreteFunction c2 = m2.signature("serve");
  aot::Artifact a2 = aot::compile({{"serve", c2.state()->optimized, {"x"}, {}, {Shape{1, 4}}},
                                   {"serve", c2.state()->optimized, {"x"}, {}, {Shape{5, 4}}}},
                                  {.name = "keras"});
  Tensor x1 = x.index({Slice(0, 1)});
  std::vector<float> jit1 = flat(m2({x1})[0]), jit5 = flat(m2({x})[0]);
  std::vector<float> aot1 = run_aot(c2, "keras_serve_0", a2.object, x1, 3),
                     aot5 = run_aot(c2, "keras_serve_1", a2.object, x, 15);
  for (size_t i = 0; i < jit1.size(); ++i) CHECK(aot1[i] == Approx(jit1[i]).epsilon(1e-6));
  for (size_t i = 0; i < jit5.size(); ++i) CHECK(aot5[i] == Approx(jit5[i]).epsilon(1e-6));
}
#endif
