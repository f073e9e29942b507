// The "kiln" spdlog logger; writes to stderr so program output stays clean.
#include "runtime/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>
#include <string>

namespace kiln::logging {

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> lg = [] {
    auto l = spdlog::stderr_color_mt("kiln");
    l->set_pattern("[%H:%M:%S.%e] [kiln] [%l] %v");
    spdlog::level::level_enum lvl = spdlog::level::warn;
    if (const char* env = std::getenv("KILN_LOG_LEVEL")) lvl = spdlog::level::from_str(env);
    l->set_level(lvl);
    return l;
  }();
  return *lg;
}

void set_level(spdlog::level::level_enum level) { logger().set_level(level); }

}  // namespace kiln::logging
