// PassPipeline::run (verification, IR dumps, disabled passes, timing) and the pipelines Kiln
// uses. The default pipeline below is the table of contents of graph optimization.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "compiler/ir/verifier.h"
#include "compiler/passes/pass.h"
#include "runtime/errors.h"
#include "runtime/logging.h"

namespace kiln::ir {
namespace {

// Pass names listed in KILN_DISABLE_PASSES ("cse,dce"; spaces around names are ignored).
std::vector<std::string> disabled_passes() {
  std::vector<std::string> names;
  const char* env = std::getenv("KILN_DISABLE_PASSES");
  if (!env) return names;
  std::string_view s(env);
  while (!s.empty()) {
    size_t comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) names.emplace_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return names;
}

bool is_disabled(const std::vector<std::string>& disabled, std::string_view name) {
  for (auto& d : disabled)
    if (d == name) return true;
  return false;
}

// A function name made safe for a file name (traced names may hold '<', ':' or '/').
std::string file_stem(std::string_view name) {
  std::string s;
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    s += ok ? c : '_';
  }
  return s.empty() ? "graph" : s;
}

// Writes `<dir>/<function>.<NN>.<stage>.kir`; returns false if it could not. Dumps are a
// debugging aid: failing to write one is a warning, never an error of the compilation.
bool dump(const std::string& dir, const PassContext& ctx, size_t step, std::string_view stage, const Graph& g) {
  char nn[16];
  std::snprintf(nn, sizeof nn, "%02zu", step);
  std::filesystem::path path =
      std::filesystem::path(dir) / (file_stem(ctx.function_name) + "." + nn + "." + std::string(stage) + ".kir");
  try {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (out) out << g.to_string() << std::flush;
    if (out) return true;
    logging::warn("[passes] KILN_DUMP_IR: cannot write {}; no more dumps for '{}'", path.string(), ctx.function_name);
  } catch (const std::exception& e) {
    logging::warn("[passes] KILN_DUMP_IR: cannot write {} ({}); no more dumps for '{}'", path.string(), e.what(),
                  ctx.function_name);
  }
  return false;
}

}  // namespace

PassPipeline& PassPipeline::add(std::unique_ptr<Pass> pass) {
  passes_.push_back(std::move(pass));
  return *this;
}

bool PassPipeline::run(Graph& g, const PassContext& ctx) const {
  const std::vector<std::string> disabled = disabled_passes();
  const char* dump_env = std::getenv("KILN_DUMP_IR");
  std::string dump_dir = dump_env ? dump_env : "";
  // one warning per run is enough when the directory is unwritable
  if (!dump_dir.empty() && !dump(dump_dir, ctx, 0, "input", g)) dump_dir.clear();

  bool changed = false;
  for (size_t i = 0; i < passes_.size(); ++i) {
    Pass& pass = *passes_[i];
    const std::string name(pass.name());
    if (is_disabled(disabled, name)) {
      logging::debug("[passes] {}: {} skipped (KILN_DISABLE_PASSES)", ctx.function_name, name);
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    bool pass_changed = false;
    try {
      pass_changed = pass.run(g, ctx);
    } catch (const std::exception& e) {
      // a pass must not fail on a valid graph; whatever it threw is Kiln's bug
      fail<Internal>("pass " + name, "failed on '", ctx.function_name, "': ", e.what());
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    logging::debug("[passes] {}: {} took {:.3f} ms ({}, {} nodes)", ctx.function_name, name, ms,
                   pass_changed ? "changed" : "unchanged", g.nodes.size());
    if (!pass_changed) continue;
    changed = true;
    if (!dump_dir.empty() && !dump(dump_dir, ctx, i + 1, name, g)) dump_dir.clear();
    try {
      verify(g);
    } catch (const std::exception& e) {
      fail<Internal>("pass " + name, "left an invalid graph for '", ctx.function_name, "': ", e.what());
    }
  }
  return changed;
}

const PassPipeline& default_pipeline() {
  // prune first: later passes then only see what is needed. Folding before simplify lets
  // simplify see the constants folding makes (x * (2 - 1)); cse after both merges what they
  // made equal; dce sweeps what cse and simplify left behind.
  static const PassPipeline pipeline = [] {
    PassPipeline p;
    p.add(make_prune_pass())
        .add(make_constant_folding_pass())
        .add(make_simplify_pass())
        .add(make_cse_pass())
        .add(make_dce_pass());
    return p;
  }();
  return pipeline;
}

}  // namespace kiln::ir
