// The `kiln` command: `kiln bench` (eager versus graph timings), `kiln graph` (a function's IR
// or Graphviz DOT, or an IR text file checked and redrawn), `kiln inspect` (a saved model),
// `kiln aot` (a saved model compiled ahead of time).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/timing.h"
#include "compiler/ir/dot.h"
#include "compiler/ir/parser.h"
#include "kiln/kiln.h"
#include "tools/aot_command.h"
#include "tools/bench_gpu.h"
#include "tools/bench_suite.h"

namespace {

using kiln::tools::Workload;

int usage(int rc) {
  std::fprintf(rc ? stderr : stdout,
               "usage: kiln bench [--json] [--threads N] [--only NAME]\n"
               "       kiln bench --gpu [--quick] [--json FILE]   (GPU:0, traced and eager; docs/gpu.md)\n"
               "       kiln graph [--dot] [--traced] NAME     (NAME: a bench workload)\n"
               "       kiln graph [--dot] FILE.kir            (check an IR text file and print it)\n"
               "       kiln inspect DIR                       (a saved model's signatures, variables and graphs)\n"
               "       kiln aot DIR -o OUT [--name IDENT] [--signature NAME[:SHAPES]]... [--onednn] [--weights-file]\n"
               "                                              (signatures as OUT.o and OUT.h; SHAPES: 32x64;32)\n");
  return rc;
}

int bench(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "--gpu") return kiln::tools::bench_gpu({args.begin() + 1, args.end()});
  bool json = false;
  std::string only;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json")
      json = true;
    else if (args[i] == "--threads" && i + 1 < args.size())
      kiln::set_num_threads(std::stoi(args[++i]));
    else if (args[i] == "--only" && i + 1 < args.size())
      only = args[++i];
    else
      return usage(2);
  }
  struct Row {
    std::string name, description;
    double eager_ns = 0, interp_ns = 0, native_ns = 0, reference_ns = 0;
    bool agree = false;
  };
  std::vector<Row> rows;
  for (const auto& w : kiln::tools::make_suite()) {
    if (!only.empty() && w->name != only) continue;
    Row r{w->name, w->description};
    r.agree = w->agree();
    r.eager_ns = kiln::bench::time_ns(w->eager, 5, 1e7);
    r.interp_ns = kiln::bench::time_ns(w->interpreted, 5, 1e7);
    r.native_ns = kiln::bench::time_ns(w->graph, 5, 1e7);
    if (w->reference) r.reference_ns = kiln::bench::time_ns(w->reference, 5, 1e7);
    rows.push_back(r);
  }
  // the interpreter's cost per node beyond its kernel: node_overhead's interpreted time per
  // node minus one direct kernel call (with its output allocation) on the same scalar
  double kernel_ns = 0, node_ns = 0;
  for (const Row& r : rows)
    if (r.name == "node_overhead") {
      const kiln::ops::OpDef& def = kiln::ops::op_def(kiln::ops::OpId::Add);
      kiln::Tensor x = kiln::constant(1e-30f);
      kiln::Tensor in[2] = {x, x};
      kiln::ops::TypeList types{{kiln::DType::Float32, kiln::Shape{}}};
      kiln::ops::Attrs attrs;
      kernel_ns = kiln::bench::time_ns(
          [&] {
            kiln::ops::TensorList out(1);
            kiln::ops::KernelContext ctx{def, attrs, in, types, out};
            def.cpu_kernel(ctx);
            kiln::bench::keep(out);
          },
          5, 1e7);
      node_ns = r.interp_ns / 100;
    }
  if (json) {
    std::printf("{\"threads\": %d, \"results\": [", kiln::get_num_threads());
    for (size_t i = 0; i < rows.size(); ++i)
      std::printf(
          "%s\n  {\"name\": \"%s\", \"eager_ns\": %.1f, \"interpreter_ns\": %.1f, \"native_ns\": %.1f, "
          "\"reference_ns\": %.1f, \"agree\": %s}",
          i ? "," : "", rows[i].name.c_str(), rows[i].eager_ns, rows[i].interp_ns, rows[i].native_ns,
          rows[i].reference_ns, rows[i].agree ? "true" : "false");
    std::printf("\n]");
    if (node_ns > 0) std::printf(", \"node_ns\": %.1f, \"kernel_ns\": %.1f", node_ns, kernel_ns);
    std::printf("}\n");
  } else {
    std::printf(
        "kiln bench: eager, interpreted graph and native graph (CPU backend), %d thread(s), median per call\n\n",
        kiln::get_num_threads());
    std::printf("%-18s %11s %11s %11s %11s %9s %9s  %s\n", "workload", "eager", "interpreter", "native", "hand loop",
                "vs eager", "vs loop", "agree");
    for (const Row& r : rows) {
      std::string ref = r.reference_ns > 0 ? kiln::bench::format_ns(r.reference_ns) : "-";
      char vs_ref[32] = "-";
      if (r.reference_ns > 0) std::snprintf(vs_ref, sizeof vs_ref, "%.2fx", r.reference_ns / r.native_ns);
      std::printf("%-18s %11s %11s %11s %11s %8.2fx %9s  %s\n", r.name.c_str(),
                  kiln::bench::format_ns(r.eager_ns).c_str(), kiln::bench::format_ns(r.interp_ns).c_str(),
                  kiln::bench::format_ns(r.native_ns).c_str(), ref.c_str(), r.eager_ns / r.native_ns, vs_ref,
                  r.agree ? "yes" : "NO");
    }
    std::printf("\n");
    for (const Row& r : rows) std::printf("  %-18s %s\n", r.name.c_str(), r.description.c_str());
    std::printf(
        "  (vs eager, vs loop: how many times faster the native graph runs; LibTorch and oneDNN\n"
        "   comparisons: build/release/bench/bench_cpu_backend)\n");
    if (node_ns > 0)
      std::printf("\ninterpreted node: %.1f ns, of which the add kernel (called directly) %.1f ns: %.1f ns overhead\n",
                  node_ns, kernel_ns, node_ns - kernel_ns);
  }
  for (const Row& r : rows)
    if (!r.agree) return 1;
  return 0;
}

int graph(const std::vector<std::string>& args) {
  bool dot = false, traced = false;
  std::string what;
  for (const auto& a : args) {
    if (a == "--dot")
      dot = true;
    else if (a == "--traced")
      traced = true;
    else if (what.empty())
      what = a;
    else
      return usage(2);
  }
  if (what.empty()) return usage(2);
  if (what.size() > 4 && what.substr(what.size() - 4) == ".kir") {
    std::ifstream in(what, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "kiln graph: cannot read %s\n", what.c_str());
      return 1;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto g = kiln::ir::parse_graph(ss.str());
    std::cout << (dot ? kiln::ir::to_dot(*g) : g->to_string());
    return 0;
  }
  for (const auto& w : kiln::tools::make_suite())
    if (w->name == what) {
      kiln::ConcreteFunction cf = w->concrete();
      const kiln::ir::Graph& g = traced ? cf.traced_graph() : cf.graph();
      std::cout << (dot ? kiln::ir::to_dot(g) : g.to_string());
      return 0;
    }
  std::fprintf(stderr, "kiln graph: no workload named '%s' (try: kiln bench)\n", what.c_str());
  return 1;
}

// Loads the saved model (so everything listed has been checked) and prints it.
int inspect(const std::vector<std::string>& args) {
  if (args.size() != 1) return usage(2);
  std::cout << kiln::saved_model::describe(args[0]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(2);
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (cmd == "bench") return bench(args);
    if (cmd == "graph") return graph(args);
    if (cmd == "inspect") return inspect(args);
    if (cmd == "aot") return kiln::tools::aot_command(args);
    if (cmd == "--help" || cmd == "-h" || cmd == "help") return usage(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln %s: %s\n", cmd.c_str(), e.what());
    return 1;
  }
  return usage(2);
}
