// The text `operator<<` writes for a value (tests that pin printed forms).
#pragma once

#include <sstream>
#include <string>

namespace kiln::testing {

template <class T>
std::string str(const T& x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

}  // namespace kiln::testing
