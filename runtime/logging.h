// Logging through spdlog. The level comes from KILN_LOG_LEVEL (trace, debug, info, warn, error,
// off; default warn) the first time Kiln logs.
#pragma once

#include <spdlog/spdlog.h>

namespace kiln::logging {

/// Kiln's logger ("kiln"), created on first use.
spdlog::logger& logger();
/// Sets the level at run time (overrides KILN_LOG_LEVEL).
void set_level(spdlog::level::level_enum level);

template <class... A>
void debug(spdlog::format_string_t<A...> fmt, A&&... a) {
  logger().debug(fmt, std::forward<A>(a)...);
}
template <class... A>
void info(spdlog::format_string_t<A...> fmt, A&&... a) {
  logger().info(fmt, std::forward<A>(a)...);
}
template <class... A>
void warn(spdlog::format_string_t<A...> fmt, A&&... a) {
  logger().warn(fmt, std::forward<A>(a)...);
}

}  // namespace kiln::logging
