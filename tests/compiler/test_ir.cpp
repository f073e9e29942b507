// Tests of the typed IR: printer/parser round trips, hostile text, verifier failures and DOT output.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>

#include "compiler/ir/dot.h"
#include "compiler/ir/ir.h"
#include "compiler/ir/parser.h"
#include "compiler/ir/verifier.h"
#include "kiln/kiln.h"

using namespace kiln;
using namespace kiln::ir;

namespace {

const ops::OpDef& def(std::string_view name) { return ops::op_def(name); }

// print(parse(print(g))) == print(g), with equal structural hashes.
void check_round_trip(const Graph& g) {
  std::string text = g.to_string();
  INFO(text);
  auto parsed = parse_graph(text);
  CHECK(parsed->to_string() == text);
  CHECK(parsed->structural_hash() == g.structural_hash());
}

// Parses hand-written text, then checks that the printed form is a fixed point.
std::unique_ptr<Graph> check_text(const std::string& text) {
  INFO(text);
  auto g = parse_graph(text);
  std::string printed = g->to_string();
  INFO(printed);
  auto again = parse_graph(printed);
  CHECK(again->to_string() == printed);
  CHECK(again->structural_hash() == g->structural_hash());
  return g;
}

// The exact error message parse_graph gives for `text`, which must be an InvalidArgument.
std::string parse_error(const std::string& text) {
  try {
    parse_graph(text);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "<parsed>";
}

std::string verify_error(const Graph& g) {
  try {
    verify(g);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "<valid>";
}

std::unique_ptr<Graph> make_mse() {
  auto g = std::make_unique<Graph>("get_mse");
  Value* t = g->add_input({int32, {5}}, "y_true");
  Value* p = g->add_input({int32, {5}}, "y_pred");
  Node* d = g->append_op(def("subtract"), {}, {t, p}, {{int32, {5}}});
  Node* two = g->append_constant(scalar<int32_t>(2));
  Node* sq = g->append_op(def("pow"), {}, {d->output(), two->output()}, {{int32, {5}}});
  Node* m = g->append_op(def("reduce_mean"), {{"axes", std::vector<int64_t>{0}}, {"keepdims", false}}, {sq->output()},
                         {{int32, {}}});
  m->loc = {"power.cpp", 12};
  g->outputs.push_back(m->output());
  return g;
}

const char* kMseText = R"(kiln.ir 1
graph @get_mse(%y_true: i32[5], %y_pred: i32[5]) {
  %0 = subtract(%y_true, %y_pred) : i32[5]
  %1 = constant : i32[] = 2
  %2 = pow(%0, %1) : i32[5]
  %3 = reduce_mean(%2) {axes = [0], keepdims = false} : i32[] loc("power.cpp":12)
  return %3
}
)";

// Variables, reads, writes and I/O effects.
const char* kStateText = R"(kiln.ir 1
graph @step(%x: f32[3]) vars(@0 w: f32[3] trainable, @1 "step count": i64[] frozen) io {
  %0 = read_variable @0 [!v0] : f32[3]
  %1 = add(%0, %x) : f32[3]
  !2 = assign_variable @0(%1) [!v0]
  %3 = read_variable @0 [!2] : f32[3]
  %4 = read_variable @1 [!v1] : i64[]
  %5 = constant : i64[] = 1
  %6 = add(%4, %5) : i64[]
  !7 = assign_variable @1(%6) [!v1]
  !8 = print(%3, %6) {message = "w =\t\"new\"\n"} [!io]
  %9 = greater(%6, %5) : bool[]
  !10 = assert(%9) {message = "step > 1"} [!8]
  return %3 effects(@0 = !2, @1 = !7, io = !10)
}
)";

// cond and while with captures, symbols and locations.
const char* kControlText = R"(kiln.ir 1
graph @control(%p: bool[], %x: f32[batch, 3], %n: i32[]) symbols(batch) {
  %0 = cond(%p, %x) : f32[batch, 3] loc("ctl.cpp":3) {
    graph @then(%x: f32[b, 3]) symbols(b) {
      %0 = negative(%x) : f32[b, 3]
      return %0
    }
    graph @else(%x: f32[b, 3]) symbols(b) {
      return %x
    }
  }
  %i = constant : i32[] = 0
  %1, %2 = while(%i, %0, %n) : i32[], f32[batch, 3] {
    graph @cond(%i: i32[], %x: f32[?, 3], %n: i32[]) {
      %0 = less(%i, %n) : bool[]
      return %0
    }
    graph @body(%i: i32[], %x: f32[?, 3], %n: i32[]) {
      %one = constant : i32[] = 1
      %0 = add(%i, %one) : i32[]
      %1 = multiply(%x, %x) : f32[?, 3]
      return %0, %1
    }
  }
  return %2, %1
}
)";

}  // namespace

TEST_CASE("the printer writes the documented text form", "[ir]") {
  auto g = make_mse();
  verify(*g);
  CHECK(g->to_string() == kMseText);
  check_round_trip(*g);
  CHECK(parse_graph(kMseText)->structural_hash() == g->structural_hash());
}

TEST_CASE("round trip of graphs built with the Graph API", "[ir]") {
  Graph g("api");
  int64_t b = g.symbol("batch");
  Value* x = g.add_input({float32, {b, 4}}, "x");
  Value* y = g.add_input({float32, {b, 4}});  // unnamed: printed as a number
  int w = g.add_variable({}, "dense/kernel:0", {float32, {4, 2}}, true);
  Node* sum = g.append_op(def("add"), {}, {x, y}, {{float32, {b, 4}}});
  sum->output()->name = "x";  // a taken name falls back to a number
  Node* rd = g.append(NodeKind::ReadVariable, {}, {{float32, {4, 2}}});
  rd->var = w;
  rd->effect_in = g.variables[0].token_in;
  Node* mm = g.append_op(def("matmul"), {{"transpose_a", false}, {"transpose_b", false}}, {sum->output(), rd->output()},
                         {{float32, {b, 2}}});
  mm->output()->name = "logits";
  Node* parts = g.append_op(def("split"), {{"axis", int64_t{1}}, {"num", int64_t{2}}}, {mm->output()},
                            {{float32, {b, 1}}, {float32, {b, 1}}});
  Node* upd = g.append(NodeKind::AssignVariable, {rd->output()}, {});
  upd->var = w;
  g.variables[0].token_out = g.add_effect(upd, g.variables[0].token_in);
  g.outputs = {parts->output(1), parts->output(0)};
  verify(g);
  std::string text = g.to_string();
  CHECK(text.find("graph @api(%x: f32[batch, 4], %0: f32[batch, 4]) symbols(batch) vars(@0 \"dense/kernel:0\": "
                  "f32[4, 2] trainable)") != std::string::npos);
  CHECK(text.find("%1 = add(%x, %0) : f32[batch, 4]") != std::string::npos);
  CHECK(text.find("%logits = matmul(%1, %2) {transpose_a = false, transpose_b = false} : f32[batch, 2]") !=
        std::string::npos);
  CHECK(text.find("%3, %4 = split(%logits) {axis = 1, num = 2} : f32[batch, 1], f32[batch, 1]") != std::string::npos);
  CHECK(text.find("!5 = assign_variable @0(%2) [!v0]") != std::string::npos);
  CHECK(text.find("return %4, %3 effects(@0 = !5)") != std::string::npos);
  check_round_trip(g);
  check_round_trip(*g.clone());
  auto parsed = parse_graph(text);
  CHECK(parsed->variables[0].name == "dense/kernel:0");
  CHECK(parsed->variables[0].trainable);
  CHECK(parsed->variables[0].var.expired());
  CHECK(parsed->inputs[0]->name == "x");
  CHECK(parsed->inputs[1]->name.empty());
}

TEST_CASE("constants of every dtype round trip exactly", "[ir]") {
  auto g = check_text(R"(kiln.ir 1
graph @consts() {
  %b = constant : bool[3] = [true, false, true]
  %i8 = constant : i8[2] = [-128, 127]
  %i16 = constant : i16[2] = [-32768, 32767]
  %i32 = constant : i32[2] = [-2147483648, 2147483647]
  %i64 = constant : i64[2] = [-9223372036854775808, 9223372036854775807]
  %u8 = constant : u8[2] = [0, 255]
  %u16 = constant : u16[] = 65535
  %u32 = constant : u32[1] = [4294967295]
  %u64 = constant : u64[2] = [0, 18446744073709551615]
  %f16 = constant : f16[4] = [0.1, -65504, inf, 6e-08]
  %bf16 = constant : bf16[3] = [0.1, 3.389531e+38, -inf]
  %f32 = constant : f32[2, 3] = [0.1, -0, 1e-45, 3.4028235e+38, inf, nan]
  %f64 = constant : f64[4] = [0.1, 5e-324, 1.7976931348623157e+308, -inf]
  %c64 = constant : c64[2] = [(1, -2.5), (inf, nan)]
  %c128 = constant : c128[] = (0.1, -1e-300)
  %empty = constant : f32[0, 3] = []
  return %b, %i8, %i16, %i32, %i64, %u8, %u16, %u32, %u64, %f16, %bf16, %f32, %f64, %c64, %c128, %empty
}
)");
  auto value = [&](size_t i) { return g->outputs[i]->producer->constant; };
  CHECK(value(0).to_vector<bool>() == std::vector<bool>{true, false, true});
  CHECK(value(4).to_vector<int64_t>() ==
        std::vector<int64_t>{std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()});
  CHECK(value(8).to_vector<uint64_t>()[1] == std::numeric_limits<uint64_t>::max());
  CHECK(float(value(9).to_vector<Half>()[1]) == -65504.0f);
  CHECK(float(value(9).to_vector<Half>()[3]) > 0.0f);  // the smallest half subnormal
  auto f = value(11).to_vector<float>();
  CHECK(f[0] == 0.1f);
  CHECK(std::signbit(f[1]));
  CHECK(f[2] == std::numeric_limits<float>::denorm_min());
  CHECK(f[3] == std::numeric_limits<float>::max());
  CHECK(std::isinf(f[4]));
  CHECK(std::isnan(f[5]));
  auto d = value(12).to_vector<double>();
  CHECK(d[1] == std::numeric_limits<double>::denorm_min());
  CHECK(d[2] == std::numeric_limits<double>::max());
  CHECK(value(14).item<complex128_t>() == complex128_t(0.1, -1e-300));
  CHECK(value(15).shape() == Shape{0, 3});
  std::string text = g->to_string();
  CHECK(text.find("%f32 = constant : f32[2, 3] = [0.1, -0, 1e-45, 3.4028235e+38, inf, nan]") != std::string::npos);
  CHECK(text.find("%u16 = constant : u16[] = 65535") != std::string::npos);

  // Every float32 bit pattern class prints in the shortest form that reads back exactly.
  Graph r("random");
  std::vector<float> xs;
  std::vector<double> ys;
  uint32_t s = 12345;
  for (int i = 0; i < 500; ++i) {
    s = s * 1664525u + 1013904223u;
    float x;
    std::memcpy(&x, &s, sizeof x);
    if (!std::isnan(x)) xs.push_back(x);
    uint64_t t = (uint64_t{s} << 32) ^ (s * 2654435761u);
    double y;
    std::memcpy(&y, &t, sizeof y);
    if (!std::isnan(y)) ys.push_back(y);
  }
  r.outputs.push_back(r.append_constant(constant(xs, Shape{int64_t(xs.size())}))->output());
  r.outputs.push_back(r.append_constant(constant(ys, Shape{int64_t(ys.size())}))->output());
  check_round_trip(r);
}

TEST_CASE("variables, prints and asserts thread their tokens", "[ir]") {
  auto g = check_text(kStateText);
  REQUIRE(g->variables.size() == 2);
  CHECK(g->variables[1].name == "step count");
  CHECK_FALSE(g->variables[1].trainable);
  CHECK(g->variables[0].token_out != g->variables[0].token_in);
  CHECK(g->io_out->producer->is_op(ops::OpId::Assert));
  CHECK(g->nodes[8]->attrs.get_string("message") == "w =\t\"new\"\n");
  std::string text = g->to_string();
  CHECK(text == kStateText);
  check_round_trip(*g->clone());
}

TEST_CASE("symbols, cond and while subgraphs, locations", "[ir]") {
  auto g = check_text(kControlText);
  CHECK(g->to_string() == kControlText);
  CHECK(g->symbols == std::vector<std::string>{"batch"});
  CHECK(g->inputs[1]->type.shape.dim(0) == symbol_dim(0));
  Node* c = g->nodes[0].get();
  CHECK(c->kind == NodeKind::Cond);
  CHECK(c->loc.file == "ctl.cpp");
  CHECK(c->loc.line == 3);
  REQUIRE(c->subgraphs.size() == 2);
  CHECK(c->subgraphs[0]->name == "then");
  CHECK(c->subgraphs[1]->outputs[0] == c->subgraphs[1]->inputs[0]);
  CHECK(g->nodes[2]->kind == NodeKind::While);
  check_round_trip(*g->clone());
}

TEST_CASE("traced graphs verify and round trip", "[ir]") {
  Variable v(constant({1.0f, 2.0f}), "v");
  Variable steps(constant(int64_t{0}), "steps", /*trainable=*/false);
  auto f = function([&](Tensor x, Tensor n) {
    Tensor y = cond(
        reduce_sum(x) > 0.0f, [&] { return x * 2.0f; }, [&] { return -x; });
    std::vector<Tensor> r = while_loop([&](std::span<const Tensor> s) { return s[0] < n; },
                                       [](std::span<const Tensor> s) {
                                         return std::vector<Tensor>{s[0] + 1, s[1] + s[1]};
                                       },
                                       {constant(0), y});
    v.assign_add(r[1]);
    steps.assign_add(constant(int64_t{1}));
    print("v =", {v.read_value()});
    return v.read_value() + x;
  });
  std::ostringstream out;
  std::streambuf* old = std::cout.rdbuf(out.rdbuf());
  ConcreteFunction cf = f.get_concrete_function(constant({1.0f, -3.0f}), constant(2));
  std::cout.rdbuf(old);
  for (const Graph* g : {&cf.traced_graph(), &cf.graph()}) {
    verify(*g);
    check_round_trip(*g);
  }
}

TEST_CASE("hand-written text: comments, spacing, names and empty graphs", "[ir]") {
  auto g = check_text("// a comment\nkiln.ir 1 graph @\"odd name\"() { return }");
  CHECK(g->name == "odd name");
  CHECK(g->to_string() == "kiln.ir 1\ngraph @\"odd name\"() {\n  return\n}\n");
  // Numbers in the text are just labels: printing renumbers in definition order.
  auto h = check_text(R"(kiln.ir 1
graph @f(%7: f32[2]) {   // parameters may be unnamed
  %42 = exp(%7) : f32[2]
  %a.b = log(%42) : f32[2]
  return %a.b, %42
})");
  CHECK(
      h->to_string() ==
      "kiln.ir 1\ngraph @f(%0: f32[2]) {\n  %1 = exp(%0) : f32[2]\n  %a.b = log(%1) : f32[2]\n  return %a.b, %1\n}\n");
  // Zero-input ops, dtype attributes (long or short names), float attributes.
  auto r = check_text(R"(kiln.ir 1
graph @r() {
  %0 = range() {start = 0, limit = 2.5, delta = 0.5, dtype = f32} : f32[5]
  %1 = cast(%0) {dtype = int64} : i64[5]
  return %1
})");
  CHECK(r->nodes[0]->attrs.get_type("dtype") == float32);
  CHECK(r->nodes[0]->attrs.get_float("limit") == 2.5);
  CHECK(r->to_string().find("{start = 0, limit = 2.5, delta = 0.5, dtype = float32}") != std::string::npos);
}

TEST_CASE("hostile text is an InvalidArgument pointing at the line and column", "[ir]") {
  const std::string head = "kiln.ir 1\ngraph @g(%x: f32[2]) {\n";
  CHECK(parse_error("kiln.ir 2\ngraph @g() { return }") ==
        "[ir.parse] line 1, column 9: unsupported IR version 2 (this Kiln reads version 1)");
  CHECK(parse_error("kiln.ir 99999999999999999999999999\n") ==
        "[ir.parse] line 1, column 9: unsupported IR version 99999999999999999999999999 (this Kiln reads version 1)");
  CHECK(parse_error("graph @g() { return }") == "[ir.parse] line 1, column 1: expected 'kiln.ir', got 'graph'");
  CHECK(parse_error("") == "[ir.parse] line 1, column 1: expected 'kiln.ir', got end of text");
  CHECK(parse_error(head + "  %0 = exp(%y) : f32[2]\n  return %0\n}") ==
        "[ir.parse] line 3, column 12: undefined value %y");
  CHECK(parse_error(head + "  %x = exp(%x) : f32[2]\n  return %x\n}") ==
        "[ir.parse] line 3, column 3: redefinition of %x");
  CHECK(parse_error(head + "  %0 = frobnicate(%x) : f32[2]\n  return %0\n}") ==
        "[ir.parse] line 3, column 8: unknown op 'frobnicate'");
  CHECK(parse_error(head + "  %0 = reduce_sum(%x) {axes = [0], keepdims = false, bogus = 1} : f32[]\n  return %0\n}") ==
        "[ir.parse] line 3, column 54: op 'reduce_sum' has no attribute 'bogus'");
  CHECK(parse_error(head + "  %0 = reduce_sum(%x) {axes = [0], keepdims = 3} : f32[]\n  return %0\n}") ==
        "[ir.parse] line 3, column 47: attribute 'keepdims' needs true or false, got '3'");
  CHECK(parse_error(head + "  %0 = reduce_sum(%x) {axes = [0], axes = [0]} : f32[]\n  return %0\n}") ==
        "[ir.parse] line 3, column 36: attribute 'axes' given twice");
  CHECK(parse_error(head + "  %0 = constant : f32[2, 2] = [1, 2, 3]\n  return %0\n}") ==
        "[ir.parse] line 3, column 31: constant of type f32[2, 2] needs 4 elements, got 3");
  CHECK(parse_error(head + "  %0 = constant : f32[1] = [1, 2]\n  return %0\n}") ==
        "[ir.parse] line 3, column 32: constant of type f32[1] has more than 1 elements");
  CHECK(parse_error(head + "  %0 = constant : f32[1000000000000000] = [1]\n  return %0\n}") ==
        "[ir.parse] line 3, column 43: constant of type f32[1000000000000000] needs 1000000000000000 elements, got 1");
  CHECK(parse_error(head + "  %0 = constant : f32[9223372036854775807, 2] = []\n  return %0\n}") ==
        "[ir.parse] line 3, column 19: the element count of f32[9223372036854775807, 2] overflows int64");
  CHECK(parse_error(head + "  %0 = constant : f32[99999999999999999999] = []\n  return %0\n}") ==
        "[ir.parse] line 3, column 23: invalid dim '99999999999999999999' (a dim is a size >= 0, '?' or a symbol "
        "name)");
  CHECK(parse_error(head + "  %0 = constant : i8[] = 300\n  return %0\n}") ==
        "[ir.parse] line 3, column 26: integer 300 is out of range for i8");
  CHECK(parse_error(head + "  %0 = constant : u8[] = -1\n  return %0\n}") ==
        "[ir.parse] line 3, column 26: integer -1 is out of range for u8");
  CHECK(parse_error(head + "  %0 = constant : f32[] = 1e999\n  return %0\n}") ==
        "[ir.parse] line 3, column 27: number 1e999 is out of range for f32");
  CHECK(parse_error(head + "  %0 = constant : f16[] = 70000\n  return %0\n}") ==
        "[ir.parse] line 3, column 27: number is out of range for f16");
  CHECK(parse_error(head + "  %0 = constant : f32[] = 1.2.3\n  return %0\n}") ==
        "[ir.parse] line 3, column 27: invalid f32 number '1.2.3'");
  CHECK(parse_error(head + "  %0 = constant : str[] = \"a\"\n  return %0\n}") ==
        "[ir.parse] line 3, column 19: string constants are not supported by the text form yet");
  CHECK(parse_error(head + "  !0 = print(%x) {message = \"abc}\n  return\n}") ==
        "[ir.parse] line 3, column 29: unterminated string (a string cannot span lines; write \\n)");
  CHECK(parse_error(head + "  !0 = print(%x) {message = \"a\\q\"} [!io]\n  return\n}") ==
        "[ir.parse] line 3, column 31: unknown escape '\\q' in string");
  CHECK(parse_error(head + "  %0 = exp(%x) : f32[2]\n  return %0\n") ==
        "[ir.parse] line 5, column 1: expected '}' to close the graph body, got end of text");
  CHECK(parse_error(head + "  %0 = exp(%x) : q32[2]\n  return %0\n}") ==
        "[ir.parse] line 3, column 18: unknown dtype 'q32' (expected f16, bf16, f32, f64, i8..i64, u8..u64, bool, "
        "c64, c128)");
  CHECK(parse_error(head + "  %0 = exp(%x) : f32[n]\n  return %0\n}") ==
        "[ir.parse] line 3, column 22: unknown symbol 'n' (declare it in the graph's symbols(...) clause)");
  CHECK(parse_error(head + "  %0 = exp(%x) : f32[2]\n  return %0\n}" + std::string(1, '\0')) ==
        "[ir.parse] line 5, column 2: unexpected character '\\x00'");
  CHECK(parse_error(head + "  !0 = print(!x) {message = \"\"}\n  return\n}") ==
        "[ir.parse] line 3, column 14: token !x used as a data input");
  CHECK(parse_error(head + "  %0 = read_variable @3 : f32[2]\n  return %0\n}") ==
        "[ir.parse] line 3, column 22: no variable '@3' (the graph has 0)");
  CHECK(parse_error(head + "  return %x effects(io = !x)\n}") ==
        "[ir.parse] line 3, column 21: the graph has no I/O token (declare 'io' after the parameters)");
  CHECK(parse_error(head + "  %0 = call(%x) {function = object(\"f\")} : f32[2]\n  return %0\n}") ==
        "[ir.parse] line 3, column 29: attribute 'function' holds a C++ object (such as a call's function), which "
        "the text form cannot express");
  CHECK(parse_error(head + "  %0, %1 = exp(%x) : f32[2]\n  return %0\n}") ==
        "[ir.parse] line 3, column 22: node has 2 data results but 1 types");
  CHECK(parse_error(head + "  %0 = exp(%x) : f32[2] = 1\n  return %0\n}") ==
        "[ir.parse] line 3, column 25: only constants have a value after their type");

  // Verification failures point at the offending node's line.
  CHECK(parse_error(head + "  %0 = exp(%x) : f32[3]\n  return %0\n}") ==
        "[ir.parse] line 3, column 3: graph 'g', node %0 (exp): output 0 has type f32[3] but exp infers f32[2] from "
        "(f32[2])");
  CHECK(parse_error(head + "  %0 = add(%x) : f32[2]\n  return %0\n}") ==
        "[ir.parse] line 3, column 3: graph 'g', node %0 (add): add takes 2 inputs, got 1");
  CHECK(parse_error(head + "  %0 = reduce_sum(%x) {keepdims = false} : f32[]\n  return %0\n}") ==
        "[ir.parse] line 3, column 3: graph 'g', node %0 (reduce_sum): missing required attribute 'axes'");
  CHECK(parse_error("kiln.ir 1\ngraph @g() io {\n  %0 = constant : bool[] = true\n  !1 = assert(%0) {message = \"m\"} "
                    "[!io]\n  return\n}") ==
        "[ir.parse] line 5, column 3: graph 'g': the final I/O token is !io but the I/O chain ends at !1");

  CHECK(parse_error("kiln.ir 1\ngraph @g() {\n  %0 = eye() {num_rows = 9223372036854775807, num_columns = 2, dtype = "
                    "float32} : f32[?, ?]\n  return %0\n}") ==
        "[ir.parse] line 3, column 3: graph 'g', node %0 (eye): the op rejects its input types (): [eye] the element "
            "count of shape [9223372036854775807, 2] overflows int64");
  std::string bad_branch = kControlText;
  bad_branch.replace(bad_branch.find("negative(%x) : f32[b, 3]"), 24, "negative(%x) : f32[b, 4]");
  CHECK(parse_error(bad_branch) ==
        "[ir.parse] line 5, column 7: graph 'then', node %0 (negative): output 0 has type f32[b, 4] but negative "
        "infers f32[?, 3] from (f32[b, 3])");

  // Subgraphs nest through recursion, which is bounded.
  std::string deep = "kiln.ir 1\ngraph @g(%p: bool[]) {\n";
  for (int i = 0; i < 40; ++i) deep += "cond(%p, %p) {\ngraph @t(%p: bool[]) {\n";
  CHECK(parse_error(deep) == "[ir.parse] line 68, column 1: subgraphs nested deeper than 32 levels");
}

TEST_CASE("every truncation and byte flip of valid text parses or throws InvalidArgument", "[ir]") {
  for (const char* text : {kMseText, kStateText, kControlText}) {
    std::string s = text;
    for (size_t n = 0; n <= s.size(); ++n) {
      try {
        parse_graph(std::string_view(s).substr(0, n));
      } catch (const InvalidArgument&) {
      }
    }
    for (size_t i = 0; i < s.size(); ++i) {
      for (char c : {'\0', '[', '{', '(', '"', '%', '!', '9', '-', 'e', ',', '\\'}) {
        std::string t = s;
        t[i] = c;
        try {
          parse_graph(t);
        } catch (const InvalidArgument&) {
        }
      }
    }
  }
}

TEST_CASE("the verifier names the node and the broken invariant", "[ir]") {
  SECTION("use before definition") {
    auto g = make_mse();
    std::swap(g->nodes[0], g->nodes[2]);
    CHECK(verify_error(*g) == "[ir.verify] graph 'get_mse', node %0 (pow): input 0 (%2) is used before its definition");
  }
  SECTION("a value of another graph") {
    auto g = make_mse();
    Graph other;
    Value* foreign = other.add_input({int32, {5}}, "z");
    g->nodes[0]->inputs[1] = foreign;
    CHECK(verify_error(*g) ==
          "[ir.verify] graph 'get_mse', node %0 (subtract): input 1 is not a value of graph "
          "'get_mse'");
  }
  SECTION("wrong output type") {
    auto g = make_mse();
    g->nodes[2]->outputs[0]->type = {float32, {5}};
    CHECK(verify_error(*g) ==
          "[ir.verify] graph 'get_mse', node %2 (pow): output 0 has type f32[5] but pow infers "
          "i32[5] from (i32[5], i32[])");
  }
  SECTION("unknown and symbolic dims are compatible") {
    auto g = make_mse();
    g->inputs[0]->type.shape = Shape{kUnknownDim};
    g->nodes[0]->outputs[0]->type.shape = Shape{g->symbol("n")};
    verify(*g);
  }
  SECTION("bad variable index") {
    Graph g("v");
    g.add_variable({}, "w", {float32, {2}}, true);
    Node* rd = g.append(NodeKind::ReadVariable, {}, {{float32, {2}}});
    rd->var = 3;
    rd->effect_in = g.variables[0].token_in;
    CHECK(verify_error(g) ==
          "[ir.verify] graph 'v', node %0 (read_variable): variable index 3 is out of range (the graph has 1 "
          "variables)");
  }
  SECTION("wrong token chain") {
    Graph g("v");
    g.add_variable({}, "a", {float32, {2}}, true);
    g.add_variable({}, "b", {float32, {2}}, true);
    Node* rd = g.append(NodeKind::ReadVariable, {}, {{float32, {2}}});
    rd->var = 0;
    rd->effect_in = g.variables[1].token_in;
    CHECK(verify_error(g) ==
          "[ir.verify] graph 'v', node %0 (read_variable): it uses variable @0 but its effect token !v1 is on variable "
          "@1's chain");
  }
  SECTION("forked token chain and stale final token") {
    Graph g("v");
    g.add_variable({}, "a", {float32, {2}}, true);
    Value* x = g.add_input({float32, {2}}, "x");
    Node* w1 = g.append(NodeKind::AssignVariable, {x}, {});
    w1->var = 0;
    Value* t1 = g.add_effect(w1, g.variables[0].token_in);
    g.variables[0].token_out = t1;
    verify(g);
    Node* w2 = g.append(NodeKind::AssignVariable, {x}, {});
    w2->var = 0;
    Value* t2 = g.add_effect(w2, t1);
    CHECK(verify_error(g) == "[ir.verify] graph 'v': the final token of variable @0 is !0 but its chain ends at !1");
    g.variables[0].token_out = t2;
    verify(g);
    w2->effect_in = g.variables[0].token_in;  // both writes after the entry token: a fork
    CHECK(verify_error(g) ==
          "[ir.verify] graph 'v', node !1 (assign_variable): its effect token !v0 is not the "
          "latest token of variable @0's chain (!0 is)");
  }
  SECTION("print without the I/O token") {
    Graph g("p");
    Value* x = g.add_input({float32, {2}}, "x");
    g.append_op(def("print"), {{"message", std::string("x")}}, {x}, {});
    CHECK(verify_error(g) ==
          "[ir.verify] graph 'p', node #0 (print): print is an I/O effect and must thread the I/O "
          "token");
  }
  SECTION("cond branch signature") {
    auto g = parse_graph(kControlText);
    g->nodes[0]->subgraphs[1]->outputs.clear();
    CHECK(verify_error(*g) ==
          "[ir.verify] graph 'control', node %0 (cond): its else subgraph returns 0 values, "
          "expected 1");
    auto h = parse_graph(kControlText);
    h->nodes[2]->subgraphs[0]->outputs[0] = h->nodes[2]->subgraphs[0]->inputs[0];
    CHECK(verify_error(*h) ==
          "[ir.verify] graph 'control', node %1 (while): its cond subgraph's result 0 has type "
          "i32[], expected bool[]");
  }
  SECTION("constant type and undeclared symbol") {
    auto g = make_mse();
    g->nodes[1]->outputs[0]->type = {int32, {1}};
    CHECK(verify_error(*g) ==
          "[ir.verify] graph 'get_mse', node %1 (constant): its output type i32[1] differs from "
          "its value's type i32[]");
    auto h = make_mse();
    h->inputs[0]->type.shape = Shape{symbol_dim(4)};
    CHECK(verify_error(*h) ==
          "[ir.verify] graph 'get_mse': parameter %y_true has an undeclared symbol dim -6 (the "
          "graph has 0 symbols)");
  }
  SECTION("element count overflow") {
    Graph g("big");
    g.add_input({float32, {int64_t{1} << 40, int64_t{1} << 40}}, "x");
    CHECK(verify_error(g) ==
          "[ir.verify] graph 'big': parameter %x has type f32[1099511627776, 1099511627776], whose "
          "element count overflows int64");
  }
}

TEST_CASE("DOT output", "[ir]") {
  auto g = parse_graph(kStateText);
  std::string dot = to_dot(*g);
  CHECK(dot.rfind("digraph \"step\" {", 0) == 0);
  CHECK(dot.find("g0_in0 [shape=ellipse, label=\"%x\\nf32[3]\"];") != std::string::npos);
  CHECK(dot.find("g0_n1 [label=\"%1 = add\\nf32[3]\"];") != std::string::npos);
  CHECK(dot.find("g0_v0 -> g0_n0 [style=dashed];") != std::string::npos);
  CHECK(dot.find("g0_n0 -> g0_n1;") != std::string::npos);
  CHECK(dot.find(R"(g0_n8 [label="!8 = print\n{message = \"w =\\t\\\"new\\\"\\n\"}", style=bold];)") !=
        std::string::npos);  // the attribute's text form, escaped once more for DOT
  auto c = parse_graph(kControlText);
  std::string cdot = to_dot(*c);
  CHECK(cdot.find("subgraph cluster_1 {") != std::string::npos);
  CHECK(cdot.find("g0_n0 -> g1_return [style=dotted, arrowhead=none, lhead=cluster_1];") != std::string::npos);
  CHECK(cdot.find("label=\"%2\"") != std::string::npos);  // edges from multi-output nodes are labeled
  size_t open = 0, close = 0;
  for (const std::string* s : {&dot, &cdot}) {
    bool in_string = false;
    for (size_t i = 0; i < s->size(); ++i) {
      char ch = (*s)[i];
      if (ch == '\\') {
        ++i;
      } else if (ch == '"') {
        in_string = !in_string;
      } else if (!in_string) {
        open += ch == '{';
        close += ch == '}';
      }
    }
    CHECK_FALSE(in_string);
  }
  CHECK(open == close);
}

TEST_CASE("uniform constants print once as splat and parse back", "[ir]") {
  ir::Graph g("splat");
  ir::Node* c = g.append_constant(fill({3, 2}, constant(0.5f)));
  g.outputs.push_back(c->output());
  std::string text = g.to_string();
  CHECK(text.find("splat(0.5)") != std::string::npos);
  auto back = ir::parse_graph(text);
  CHECK(back->to_string() == text);
  CHECK(back->nodes[0]->constant.to_vector<float>() == std::vector<float>(6, 0.5f));
  CHECK_THROWS_WITH(ir::parse_graph("kiln.ir 1\ngraph @g() {\n  %0 = constant : f32[100000, 100000] = splat(1)\n  "
                                    "return %0\n}\n"),
                    Catch::Contains("more than the parser expands"));
}
