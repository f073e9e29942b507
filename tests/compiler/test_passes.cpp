// Tests of the graph passes and the pass pipeline, written as IR text: the structure after one
// pass, and the same numbers before and after it.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <spdlog/sinks/ringbuffer_sink.h>

#include "compiler/backend/executable.h"
#include "compiler/ir/parser.h"
#include "compiler/ir/verifier.h"
#include "compiler/passes/pass.h"
#include "ops/dispatch.h"
#include "ops/ops.h"
#include "runtime/logging.h"

using namespace kiln;
using kiln::ir::Graph;

namespace {

// What running a graph observed: its outputs, the final variable values and the I/O ops run.
struct Run {
  std::vector<Tensor> outputs;
  std::vector<Tensor> variables;
  std::vector<std::string> io;  // "print <message>" / "assert <message>", in order
};

// A small reference evaluator: runs Op, Constant and variable nodes one by one on the eager
// kernels, in node order (so it is strict: every node runs, needed or not). Prints and asserts
// are recorded instead of run, to keep the test output clean. Control flow is not needed here.
Run evaluate(const Graph& g, const std::vector<Tensor>& args, std::vector<Tensor> variables = {}) {
  REQUIRE(args.size() == g.inputs.size());
  REQUIRE(variables.size() == g.variables.size());
  std::unordered_map<const ir::Value*, Tensor> env;
  for (size_t i = 0; i < args.size(); ++i) env[g.inputs[i]] = args[i];
  Run run;
  for (auto& node : g.nodes) {
    const ir::Node& n = *node;
    switch (n.kind) {
      case ir::NodeKind::Constant:
        env[n.output(0)] = n.constant;
        break;
      case ir::NodeKind::ReadVariable:
        env[n.output(0)] = variables[size_t(n.var)];
        break;
      case ir::NodeKind::AssignVariable:
        variables[size_t(n.var)] = env.at(n.inputs[0]);
        break;
      case ir::NodeKind::Op: {
        if (n.def->has(ops::kIO)) {
          run.io.push_back(std::string(n.def->name) + " " + n.attrs.get_string("message"));
          break;
        }
        std::vector<Tensor> ins;
        for (ir::Value* v : n.inputs) ins.push_back(env.at(v));
        ops::TypeList types = n.def->infer(*n.def, n.attrs, ins);
        ops::TensorList outs = ops::execute_eager(*n.def, n.attrs, ins, types);
        for (size_t i = 0; i < outs.size(); ++i) env[n.output(i)] = outs[i];
        break;
      }
      default:
        FAIL("the test evaluator does not run " << n.name());
    }
  }
  for (ir::Value* o : g.outputs) run.outputs.push_back(env.at(o));
  run.variables = std::move(variables);
  return run;
}

// Bit-exact equality of two tensors (dtype, shape and bytes).
bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
}

void check_same_run(const Run& a, const Run& b) {
  REQUIRE(a.outputs.size() == b.outputs.size());
  for (size_t i = 0; i < a.outputs.size(); ++i) {
    INFO("output " << i << ": " << a.outputs[i].to_string() << " vs " << b.outputs[i].to_string());
    CHECK(same_tensor(a.outputs[i], b.outputs[i]));
  }
  REQUIRE(a.variables.size() == b.variables.size());
  for (size_t i = 0; i < a.variables.size(); ++i) {
    INFO("variable " << i << ": " << a.variables[i].to_string() << " vs " << b.variables[i].to_string());
    CHECK(same_tensor(a.variables[i], b.variables[i]));
  }
  CHECK(a.io == b.io);
}

// Number of nodes of each op name ("add", "constant", "read_variable", ...).
std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> m;
  for (auto& n : g.nodes) ++m[std::string(n->name())];
  return m;
}

int count(const Graph& g, const std::string& op) {
  auto m = op_counts(g);
  auto it = m.find(op);
  return it == m.end() ? 0 : it->second;
}

std::unique_ptr<ir::Pass> make_pass(const std::string& name) {
  if (name == "prune") return ir::make_prune_pass();
  if (name == "constant-folding") return ir::make_constant_folding_pass();
  if (name == "cse") return ir::make_cse_pass();
  if (name == "simplify") return ir::make_simplify_pass();
  if (name == "dce") return ir::make_dce_pass();
  FAIL("no pass " << name);
  return nullptr;
}

// Parses `text`, runs pass `name` once on it, verifies the result and checks that it computes
// what the original computes on `args` and `vars`. Returns the transformed graph.
std::unique_ptr<Graph> run_pass(const std::string& name, const std::string& text, const std::vector<Tensor>& args,
                                const std::vector<Tensor>& vars = {}, bool* changed = nullptr) {
  auto before = ir::parse_graph(text);
  auto after = ir::parse_graph(text);
  bool c = make_pass(name)->run(*after, ir::PassContext{});
  if (changed) *changed = c;
  INFO("after " << name << ":\n" << after->to_string());
  ir::verify(*after);
  check_same_run(evaluate(*before, args, vars), evaluate(*after, args, vars));
  return after;
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    had_ = std::getenv(name) != nullptr;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_)
      ::setenv(name_, old_.c_str(), 1);
    else
      ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

// Routes Kiln's log to a ring buffer (and nowhere else) at `level` for one scope.
class CapturedLog {
 public:
  explicit CapturedLog(spdlog::level::level_enum level)
      : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64)),
        saved_(logging::logger().sinks()),
        old_level_(logging::logger().level()) {
    logging::logger().sinks() = {sink_};
    logging::set_level(level);
  }
  ~CapturedLog() {
    logging::set_level(old_level_);
    logging::logger().sinks() = saved_;
  }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string text() const {
    std::string all;
    for (auto& line : sink_->last_formatted()) all += line;
    return all;
  }
  size_t lines() const { return sink_->last_formatted().size(); }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::vector<spdlog::sink_ptr> saved_;
  spdlog::level::level_enum old_level_;
};

Tensor f32(std::vector<float> v, Shape s) { return constant(v, s); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// prune

TEST_CASE("prune drops an unused gather with a bad index: graphs are non-strict", "[passes][prune]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[3]) {
  %idx = constant : i32[1] = [7]
  %bad = gather(%x, %idx) {axis = 0, batch_dims = 0} : f32[1]
  %y = multiply(%x, %x) : f32[3]
  return %y
}
)";
  Tensor x = f32({1, 2, 3}, {3});
  auto before = ir::parse_graph(text);
  // run strictly, node by node, the gather fails as it does in eager code
  CHECK_THROWS_AS(evaluate(*before, {x}), InvalidArgument);
  auto g = ir::parse_graph(text);
  CHECK(ir::make_prune_pass()->run(*g, {}));
  ir::verify(*g);
  CHECK(op_counts(*g) == std::map<std::string, int>{{"multiply", 1}});
  Run r = evaluate(*g, {x});
  CHECK(r.outputs[0].to_vector<float>() == std::vector<float>{1, 4, 9});
  // nothing left to prune
  CHECK_FALSE(ir::make_prune_pass()->run(*g, {}));
}

TEST_CASE("prune keeps variable writes and prints, drops unused reads", "[passes][prune]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[3]) vars(@0 v: f32[3] trainable) io {
  %r = read_variable @0 [!v0] : f32[3]
  %s = add(%r, %x) : f32[3]
  !1 = assign_variable @0(%s) [!v0]
  !2 = print(%x) {message = "x is"} [!io]
  %unused = multiply(%x, %x) : f32[3]
  %r2 = read_variable @0 [!1] : f32[3]
  %unused2 = negative(%r2) : f32[3]
  return %x effects(@0 = !1, io = !2)
}
)";
  auto g = run_pass("prune", text, {f32({1, 2, 3}, {3})}, {f32({10, 20, 30}, {3})});
  CHECK(op_counts(*g) ==
        std::map<std::string, int>{{"read_variable", 1}, {"add", 1}, {"assign_variable", 1}, {"print", 1}});
  Run r = evaluate(*g, {f32({1, 2, 3}, {3})}, {f32({10, 20, 30}, {3})});
  CHECK(r.variables[0].to_vector<float>() == std::vector<float>{11, 22, 33});
  CHECK(r.io == std::vector<std::string>{"print x is"});
}

TEST_CASE("prune keeps an assert without outputs and what it reads", "[passes][prune]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[2]) io {
  %zero = constant : f32[] = 0
  %ok = greater(%x, %zero) : bool[2]
  !1 = assert(%ok) {message = "x must be positive"} [!io]
  %dead = greater_equal(%x, %zero) : bool[2]
  return %x effects(io = !1)
}
)";
  auto g = run_pass("prune", text, {f32({1, 2}, {2})});
  CHECK(op_counts(*g) == std::map<std::string, int>{{"constant", 1}, {"greater", 1}, {"assert", 1}});
}

TEST_CASE("prune removes an unused random op and keeps a used one", "[passes][prune]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[2]) {
  %a = random_normal() {shape = [2], dtype = float32, seed = 1, offset = 0, mean = 0, stddev = 1} : f32[2]
  %b = random_normal() {shape = [2], dtype = float32, seed = 2, offset = 0, mean = 0, stddev = 1} : f32[2]
  %y = add(%x, %a) : f32[2]
  return %y
}
)";
  auto g = run_pass("prune", text, {f32({1, 2}, {2})});
  CHECK(count(*g, "random_normal") == 1);
}

// ---------------------------------------------------------------------------------------------
// constant folding

TEST_CASE("constant folding evaluates constant subexpressions", "[passes][constant-folding]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[2]) {
  %a = constant : f32[2] = [1, 2]
  %b = constant : f32[2] = [3, 4]
  %c = add(%a, %b) : f32[2]
  %d = multiply(%c, %c) : f32[2]
  %e = multiply(%d, %x) : f32[2]
  %n = range() {start = 0, limit = 4, delta = 1, dtype = int32} : i32[4]
  %s = shape_of(%x) {out_type = int64} : i64[1]
  return %e, %n, %s
}
)";
  bool changed = false;
  auto g = run_pass("constant-folding", text, {f32({1, -1}, {2})}, {}, &changed);
  CHECK(changed);
  CHECK(op_counts(*g) == std::map<std::string, int>{{"constant", 3}, {"multiply", 1}});
  Run r = evaluate(*g, {f32({1, -1}, {2})});
  CHECK(r.outputs[0].to_vector<float>() == std::vector<float>{16, -36});
  CHECK(r.outputs[1].to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 3});
  CHECK(r.outputs[2].to_vector<int64_t>() == std::vector<int64_t>{2});
  CHECK_FALSE(ir::make_constant_folding_pass()->run(*g, {}));
}

TEST_CASE("constant folding leaves ops whose kernel fails for run time", "[passes][constant-folding]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[3]) {
  %src = constant : f32[3] = [1, 2, 3]
  %idx = constant : i32[1] = [7]
  %bad = gather(%src, %idx) {axis = 0, batch_dims = 0} : f32[1]
  %z = constant : i32[2] = [1, 0]
  %q = floordiv(%z, %z) : i32[2]
  return %bad, %q
}
)";
  auto g = ir::parse_graph(text);
  // folding must not throw: the error belongs to the run, and only if the node is needed
  CHECK_FALSE(ir::make_constant_folding_pass()->run(*g, {}));
  CHECK(count(*g, "gather") == 1);
  CHECK(count(*g, "floordiv") == 1);
  CHECK_THROWS_AS(evaluate(*g, {f32({1, 2, 3}, {3})}), InvalidArgument);
}

TEST_CASE("constant folding skips random ops, effects and large results", "[passes][constant-folding]") {
  const std::string text = R"(kiln.ir 1
graph @f() vars(@0 v: f32[2] trainable) {
  %a = random_uniform() {shape = [2], dtype = float32, seed = 1, offset = 0, minval = 0, maxval = 1} : f32[2]
  %one = constant : f32[] = 1
  %big = broadcast_to(%one) {shape = [300, 300]} : f32[300, 300]
  %small = broadcast_to(%one) {shape = [2]} : f32[2]
  %r = read_variable @0 [!v0] : f32[2]
  %s = add(%r, %small) : f32[2]
  %t = add(%s, %a) : f32[2]
  return %t, %big
}
)";
  auto g = run_pass("constant-folding", text, {}, {f32({5, 6}, {2})});
  CHECK(count(*g, "random_uniform") == 1);
  CHECK(count(*g, "read_variable") == 1);
  CHECK(count(*g, "broadcast_to") == 1);  // the 90000-element one stays an op
  CHECK(count(*g, "add") == 2);
}

// ---------------------------------------------------------------------------------------------
// cse

TEST_CASE("cse merges equal constants and the ops computed from them", "[passes][cse]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[2]) {
  %a = constant : f32[2] = [1, 2]
  %b = constant : f32[2] = [1, 2]
  %c = constant : f32[2] = [1, 3]
  %z1 = constant : f32[] = 0
  %z2 = constant : f32[] = -0
  %p = add(%x, %a) : f32[2]
  %q = add(%x, %b) : f32[2]
  %r = add(%x, %c) : f32[2]
  %t1 = transpose(%p) {perm = [0]} : f32[2]
  %t2 = transpose(%q) {perm = [0]} : f32[2]
  %s = add(%t1, %t2) : f32[2]
  %u = add(%s, %r) : f32[2]
  %v = add(%z1, %z2) : f32[]
  return %u, %v
}
)";
  auto g = run_pass("cse", text, {f32({5, 7}, {2})});
  // a = b merge (so p = q, t1 = t2); c differs; 0 and -0 have different bytes
  CHECK(op_counts(*g) == std::map<std::string, int>{{"constant", 4}, {"add", 5}, {"transpose", 1}});
}

TEST_CASE("cse never merges random ops", "[passes][cse]") {
  const std::string text = R"(kiln.ir 1
graph @f() {
  %a = random_normal() {shape = [3], dtype = float32, seed = 1, offset = 0, mean = 0, stddev = 1} : f32[3]
  %b = random_normal() {shape = [3], dtype = float32, seed = 1, offset = 0, mean = 0, stddev = 1} : f32[3]
  %c = subtract(%a, %b) : f32[3]
  return %c
}
)";
  auto g = ir::parse_graph(text);
  CHECK_FALSE(ir::make_cse_pass()->run(*g, {}));
  CHECK(count(*g, "random_normal") == 2);
}

TEST_CASE("cse merges reads of a variable only between the same writes", "[passes][cse]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[2]) vars(@0 v: f32[2] trainable) {
  %r1 = read_variable @0 [!v0] : f32[2]
  %r2 = read_variable @0 [!v0] : f32[2]
  !1 = assign_variable @0(%x) [!v0]
  %r3 = read_variable @0 [!1] : f32[2]
  %a = add(%r1, %r2) : f32[2]
  %b = add(%a, %r3) : f32[2]
  return %b effects(@0 = !1)
}
)";
  auto g = run_pass("cse", text, {f32({1, 2}, {2})}, {f32({10, 20}, {2})});
  // r1 and r2 merge; r3 reads after the assign and stays
  CHECK(count(*g, "read_variable") == 2);
  CHECK(count(*g, "assign_variable") == 1);
  Run r = evaluate(*g, {f32({1, 2}, {2})}, {f32({10, 20}, {2})});
  CHECK(r.outputs[0].to_vector<float>() == std::vector<float>{21, 42});
}

TEST_CASE("cse keeps nodes that differ in attributes or output type", "[passes][cse]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[2, 3]) {
  %a = reduce_sum(%x) {axes = [0], keepdims = false} : f32[3]
  %b = reduce_sum(%x) {axes = [1], keepdims = false} : f32[2]
  %c = cast(%x) {dtype = float64} : f64[2, 3]
  %d = cast(%x) {dtype = int32} : i32[2, 3]
  return %a, %b, %c, %d
}
)";
  auto g = ir::parse_graph(text);
  CHECK_FALSE(ir::make_cse_pass()->run(*g, {}));
}

// ---------------------------------------------------------------------------------------------
// simplify

TEST_CASE("simplify removes arithmetic identities", "[passes][simplify]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[2, 3], %i: i32[3]) {
  %one = constant : f32[] = 1
  %ones = constant : f32[1, 3] = [1, 1, 1]
  %zero = constant : f32[3] = [0, 0, 0]
  %nzero = constant : f32[] = -0
  %izero = constant : i32[] = 0
  %ione = constant : i32[3] = [1, 1, 1]
  %a = multiply(%x, %one) : f32[2, 3]
  %b = multiply(%ones, %a) : f32[2, 3]
  %c = add(%b, %zero) : f32[2, 3]
  %d = add(%nzero, %c) : f32[2, 3]
  %e = subtract(%d, %zero) : f32[2, 3]
  %f = divide(%e, %ones) : f32[2, 3]
  %g = add(%i, %izero) : i32[3]
  %h = multiply(%ione, %g) : i32[3]
  return %f, %h
}
)";
  // no -0.0 in x: x + 0 is +0.0 for it, and simplify returns x (docs/passes.md)
  Tensor x = f32({1, -2, 3.5f, 0, -1e-30f, 1e30f}, {2, 3});
  Tensor i = constant({4, -5, 6});
  auto g = run_pass("simplify", text, {x, i});
  // only the constants remain, unused (dce removes them)
  for (auto& n : g->nodes) CHECK(n->kind == ir::NodeKind::Constant);
  CHECK(g->outputs[0] == g->inputs[0]);
  CHECK(g->outputs[1] == g->inputs[1]);
}

TEST_CASE("simplify does not fire when broadcasting changes the type", "[passes][simplify]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[3], %y: f32[1], %u: f32[n], %i: i32[3]) symbols(n) {
  %zeros23 = constant : f32[2, 3] = [0, 0, 0, 0, 0, 0]
  %ones3 = constant : f32[3] = [1, 1, 1]
  %ione = constant : i32[] = 1
  %a = add(%x, %zeros23) : f32[2, 3]
  %b = multiply(%y, %ones3) : f32[3]
  %c = multiply(%u, %ones3) : f32[3]
  %d = subtract(%zeros23, %x) : f32[2, 3]
  %e = divide(%i, %ione) : f64[3]
  return %a, %b, %c, %d, %e
}
)";
  auto g = ir::parse_graph(text);
  CHECK_FALSE(ir::make_simplify_pass()->run(*g, {}));
  CHECK(g->nodes.size() == 8);
}

TEST_CASE("simplify turns sum_to_like with known shapes into its input or a reduce_sum", "[passes][simplify]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[4, 3], %b: f32[3], %c: f32[4, 1], %r: f32[1, 3], %u: f32[n, 3], %y: f32[2, 4, 3]) symbols(n) {
  %same = sum_to_like(%x, %x) : f32[4, 3]
  %lead = sum_to_like(%x, %b) : f32[3]
  %ones = sum_to_like(%x, %c) : f32[4, 1]
  %rows = sum_to_like(%x, %r) : f32[1, 3]
  %mixed = sum_to_like(%y, %r) : f32[1, 3]
  %unknown = sum_to_like(%u, %b) : f32[3]
  return %same, %lead, %ones, %rows, %mixed, %unknown
}
)";
  std::vector<float> v(12), w(6), y(24);
  for (size_t k = 0; k < v.size(); ++k) v[k] = float(k) - 5.5f;
  for (size_t k = 0; k < w.size(); ++k) w[k] = float(k * k);
  for (size_t k = 0; k < y.size(); ++k) y[k] = float(k % 7) * 0.5f;
  auto g = run_pass("simplify", text,
                    {f32(v, {4, 3}), f32({1, 2, 3}, {3}), f32({1, 2, 3, 4}, {4, 1}), f32({1, 2, 3}, {1, 3}),
                     f32(w, {2, 3}), f32(y, {2, 4, 3})});
  // same -> x; lead, ones and rows -> reduce_sum; mixed (a leading axis and a size-1 axis) and
  // the unknown batch dim stay
  CHECK(g->outputs[0] == g->inputs[0]);
  CHECK(op_counts(*g) == std::map<std::string, int>{{"reduce_sum", 3}, {"sum_to_like", 2}});
  for (auto& n : g->nodes)
    if (std::string(n->name()) == "reduce_sum") CHECK(n->inputs.size() == 1);
}

TEST_CASE("simplify composes transposes", "[passes][simplify]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[2, 3, 4]) {
  %a = transpose(%x) {perm = [1, 2, 0]} : f32[3, 4, 2]
  %b = transpose(%a) {perm = [2, 0, 1]} : f32[2, 3, 4]
  %c = transpose(%b) {perm = [2, 1, 0]} : f32[4, 3, 2]
  %d = transpose(%c) {perm = [0, 2, 1]} : f32[4, 2, 3]
  %e = transpose(%x) {perm = [0, 1, -1]} : f32[2, 3, 4]
  return %d, %e
}
)";
  std::vector<float> v(24);
  for (size_t k = 0; k < v.size(); ++k) v[k] = float(k);
  auto g = run_pass("simplify", text, {f32(v, {2, 3, 4})});
  // b = x; d = transpose(x, [2, 0, 1]); e = x
  REQUIRE(op_counts(*g) == std::map<std::string, int>{{"transpose", 1}});
  CHECK(g->nodes[0]->inputs[0] == g->inputs[0]);
  CHECK(g->nodes[0]->attrs.get_ints("perm") == std::vector<int64_t>{2, 0, 1});
  CHECK(g->outputs[1] == g->inputs[0]);
}

TEST_CASE("simplify collapses reshape chains and no-op shape ops", "[passes][simplify]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[2, 6], %y: f32[n, 4]) symbols(n) {
  %a = reshape(%x) {shape = [3, 4]} : f32[3, 4]
  %b = reshape(%a) {shape = [12]} : f32[12]
  %c = expand_dims(%b) {axis = 0} : f32[1, 12]
  %d = reshape(%x) {shape = [2, -1]} : f32[2, 6]
  %e = cast(%d) {dtype = float32} : f32[2, 6]
  %f = broadcast_to(%e) {shape = [2, 6]} : f32[2, 6]
  %g = negative(%f) : f32[2, 6]
  %h = negative(%g) : f32[2, 6]
  %p = reshape(%y) {shape = [-1, 2, 2]} : f32[?, 2, 2]
  %q = reshape(%p) {shape = [-1, 4]} : f32[?, 4]
  %s = expand_dims(%y) {axis = 1} : f32[n, 1, 4]
  %t = squeeze(%s) {axes = [1]} : f32[n, 4]
  return %c, %h, %q, %t
}
)";
  std::vector<float> v(12), w(12);
  for (size_t k = 0; k < v.size(); ++k) v[k] = float(k), w[k] = float(100 + k);
  auto g = run_pass("simplify", text, {f32(v, {2, 6}), f32(w, {3, 4})});
  // c = reshape(x, [1, 12]); h = x; q = reshape(y, [-1, 4]); t = y
  CHECK(op_counts(*g) == std::map<std::string, int>{{"reshape", 2}});
  CHECK(g->outputs[1] == g->inputs[0]);
  CHECK(g->outputs[3] == g->inputs[1]);
  for (auto& n : g->nodes) CHECK((n->inputs[0] == g->inputs[0] || n->inputs[0] == g->inputs[1]));
}

TEST_CASE("simplify drops a reshape to the input's own shape with an unknown dim", "[passes][simplify]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[?, 6]) {
  %a = reshape(%x) {shape = [-1, 6]} : f32[?, 6]
  %b = reshape(%x) {shape = [-1, 3]} : f32[?, 3]
  return %a, %b
}
)";
  std::vector<float> v(12);
  for (size_t k = 0; k < v.size(); ++k) v[k] = float(k);
  auto g = run_pass("simplify", text, {f32(v, {2, 6})});
  CHECK(op_counts(*g) == std::map<std::string, int>{{"reshape", 1}});
  CHECK(g->outputs[0] == g->inputs[0]);
}

TEST_CASE("simplify keeps squeezes of unknown dims, whose failure belongs to run time", "[passes][simplify]") {
  const std::string text = R"(kiln.ir 1
graph @f(%y: f32[n, 4]) symbols(n) {
  %s = squeeze(%y) {axes = [0]} : f32[4]
  %t = expand_dims(%s) {axis = 0} : f32[1, 4]
  return %t
}
)";
  auto g = ir::parse_graph(text);
  CHECK_FALSE(ir::make_simplify_pass()->run(*g, {}));
}

// ---------------------------------------------------------------------------------------------
// dce

TEST_CASE("dce removes unused effect-free nodes to a fixed point", "[passes][dce]") {
  const std::string text = R"(kiln.ir 1
graph @f(%x: f32[2]) vars(@0 v: f32[2] trainable) io {
  %a = exp(%x) : f32[2]
  %b = log(%a) : f32[2]
  %c = negative(%b) : f32[2]
  %r = read_variable @0 [!v0] : f32[2]
  !1 = assign_variable @0(%x) [!v0]
  !2 = print() {message = "hello"} [!io]
  %y = add(%x, %x) : f32[2]
  return %y effects(@0 = !1, io = !2)
}
)";
  auto g = run_pass("dce", text, {f32({1, 2}, {2})}, {f32({3, 4}, {2})});
  CHECK(op_counts(*g) == std::map<std::string, int>{{"assign_variable", 1}, {"print", 1}, {"add", 1}});
}

// ---------------------------------------------------------------------------------------------
// control flow: every pass works inside cond and while subgraphs

namespace {
const char* kCondText = R"(kiln.ir 1
graph @f(%p: bool[], %x: f32[2]) {
  %r = cond(%p, %x) : f32[2] {
    graph @then(%a: f32[2]) {
      %one = constant : f32[] = 1
      %uno = constant : f32[] = 1
      %dead = exp(%a) : f32[2]
      %b = multiply(%a, %one) : f32[2]
      %c = multiply(%a, %uno) : f32[2]
      %d = add(%b, %c) : f32[2]
      return %d
    }
    graph @else(%a: f32[2]) {
      %k = constant : f32[2] = [1, 2]
      %m = constant : f32[2] = [3, 4]
      %s = add(%k, %m) : f32[2]
      %t = add(%a, %s) : f32[2]
      return %t
    }
  }
  %unused = cond(%p, %x) : f32[2] {
    graph @then(%a: f32[2]) {
      return %a
    }
    graph @else(%a: f32[2]) {
      %n = negative(%a) : f32[2]
      return %n
    }
  }
  return %r
}
)";
}  // namespace

TEST_CASE("passes work inside cond subgraphs", "[passes][control]") {
  auto pruned = ir::parse_graph(kCondText);
  CHECK(ir::make_prune_pass()->run(*pruned, {}));
  ir::verify(*pruned);
  REQUIRE(pruned->nodes.size() == 1);
  CHECK(count(*pruned->nodes[0]->subgraphs[0], "exp") == 0);
  CHECK(pruned->nodes[0]->subgraphs[0]->nodes.size() == 5);

  auto dce = ir::parse_graph(kCondText);
  CHECK(ir::make_dce_pass()->run(*dce, {}));
  ir::verify(*dce);
  CHECK(dce->to_string() == pruned->to_string());

  auto folded = ir::parse_graph(kCondText);
  CHECK(ir::make_constant_folding_pass()->run(*folded, {}));
  ir::verify(*folded);
  CHECK(op_counts(*folded->nodes[0]->subgraphs[1]) == std::map<std::string, int>{{"constant", 1}, {"add", 1}});

  auto merged = ir::parse_graph(kCondText);
  CHECK(ir::make_cse_pass()->run(*merged, {}));
  ir::verify(*merged);
  CHECK(op_counts(*merged->nodes[0]->subgraphs[0]) ==
        std::map<std::string, int>{{"constant", 1}, {"exp", 1}, {"multiply", 1}, {"add", 1}});
  CHECK(merged->nodes.size() == 2);  // the two conds have different subgraphs, and cse never merges control flow

  auto simple = ir::parse_graph(kCondText);
  CHECK(ir::make_simplify_pass()->run(*simple, {}));
  ir::verify(*simple);
  CHECK(count(*simple->nodes[0]->subgraphs[0], "multiply") == 0);
}

// ---------------------------------------------------------------------------------------------
// the pipeline

namespace {

// A broken pass: it changes an output type so that the verifier must object.
class BreakTypesPass final : public ir::Pass {
 public:
  std::string_view name() const override { return "break-types"; }
  bool run(Graph& g, const ir::PassContext&) override {
    g.nodes.back()->outputs[0]->type.dtype = DType::Float64;
    return true;
  }
};

const char* kPipelineText = R"(kiln.ir 1
graph @f(%x: f32[2]) {
  %one = constant : f32[] = 1
  %two = constant : f32[] = 2
  %k = subtract(%two, %one) : f32[]
  %a = multiply(%x, %k) : f32[2]
  %b = multiply(%x, %k) : f32[2]
  %unused = exp(%x) : f32[2]
  %c = add(%a, %b) : f32[2]
  return %c
}
)";

}  // namespace

TEST_CASE("the default pipeline optimizes and keeps the numbers", "[passes][pipeline]") {
  auto before = ir::parse_graph(kPipelineText);
  auto g = ir::parse_graph(kPipelineText);
  CHECK(ir::default_pipeline().run(*g, {"f"}));
  INFO(g->to_string());
  // k folds to 1, x * 1 is x: c = add(x, x)
  CHECK(op_counts(*g) == std::map<std::string, int>{{"add", 1}});
  Tensor x = f32({3, -4}, {2});
  check_same_run(evaluate(*before, {x}), evaluate(*g, {x}));
  CHECK_FALSE(ir::default_pipeline().run(*g, {"f"}));

  // the interpreter backend agrees with the reference evaluator on the optimized graph
  Run expected = evaluate(*before, {x});
  auto exe = backend::make_interpreter(std::shared_ptr<const Graph>(std::move(g)));
  ops::TensorList got = exe->run(std::span<const Tensor>(&x, 1));
  REQUIRE(got.size() == 1);
  CHECK(same_tensor(got[0], expected.outputs[0]));
}

TEST_CASE("the pipeline logs each pass's time at debug level", "[passes][pipeline]") {
  std::string all;
  {
    CapturedLog log(spdlog::level::debug);
    auto g = ir::parse_graph(kPipelineText);
    ir::default_pipeline().run(*g, {"timed"});
    all = log.text();
  }
  for (const char* pass : {"prune", "constant-folding", "simplify", "cse", "dce"})
    CHECK_THAT(all, Catch::Contains(std::string("timed: ") + pass + " took"));
}

TEST_CASE("KILN_DISABLE_PASSES skips the named passes", "[passes][pipeline]") {
  ScopedEnv env("KILN_DISABLE_PASSES", "simplify, cse,dce");
  auto g = ir::parse_graph(kPipelineText);
  CHECK(ir::default_pipeline().run(*g, {"f"}));
  // prune removed exp and folding made k a constant; the rest stayed
  CHECK(op_counts(*g) == std::map<std::string, int>{{"constant", 1}, {"multiply", 2}, {"add", 1}});

  ScopedEnv all("KILN_DISABLE_PASSES", "prune,constant-folding,simplify,cse,dce");
  auto h = ir::parse_graph(kPipelineText);
  CHECK_FALSE(ir::default_pipeline().run(*h, {"f"}));
  CHECK(h->to_string() == ir::parse_graph(kPipelineText)->to_string());
}

TEST_CASE("KILN_DUMP_IR writes the graph before and after each pass", "[passes][pipeline]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("kiln_dump_test_" + std::to_string(std::random_device{}()));
  fs::remove_all(dir);
  {
    ScopedEnv env("KILN_DUMP_IR", (dir / "nested").string());
    auto g = ir::parse_graph(kPipelineText);
    ir::default_pipeline().run(*g, {"my fn"});
  }
  fs::path sub = dir / "nested";
  REQUIRE(fs::is_directory(sub));
  CHECK(fs::exists(sub / "my_fn.00.input.kir"));
  CHECK(fs::exists(sub / "my_fn.01.prune.kir"));
  CHECK(fs::exists(sub / "my_fn.02.constant-folding.kir"));
  // each dump is valid IR text
  for (auto& e : fs::directory_iterator(sub)) {
    std::ifstream in(e.path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    INFO(e.path().string());
    CHECK_NOTHROW(ir::parse_graph(text));
  }
  fs::remove_all(dir);

  // an unwritable dump directory is one warning, not an error
  ScopedEnv bad("KILN_DUMP_IR", "/proc/kiln-cannot-write-here");
  CapturedLog log(spdlog::level::warn);
  auto g = ir::parse_graph(kPipelineText);
  CHECK_NOTHROW(ir::default_pipeline().run(*g, {"f"}));
  CHECK(log.lines() == 1);
  CHECK_THAT(log.text(), Catch::Contains("KILN_DUMP_IR: cannot write /proc/kiln-cannot-write-here/f.00.input.kir"));
}

TEST_CASE("the pipeline verifies after each changing pass and names the pass", "[passes][pipeline]") {
  ir::PassPipeline p;
  p.add(ir::make_prune_pass()).add(std::make_unique<BreakTypesPass>());
  auto g = ir::parse_graph(kPipelineText);
  try {
    p.run(*g, {"f"});
    FAIL("expected Internal");
  } catch (const Internal& e) {
    CHECK(std::string(e.what()).rfind("[pass break-types] ", 0) == 0);
    CHECK_THAT(e.what(), Catch::Contains("[ir.verify]"));
  }
  // a disabled broken pass does no harm
  ScopedEnv env("KILN_DISABLE_PASSES", "break-types");
  auto h = ir::parse_graph(kPipelineText);
  CHECK(p.run(*h, {"f"}));
  ir::verify(*h);
}
