// Attribute storage and printing.
#include "ops/attrs.h"

#include <sstream>

#include "runtime/errors.h"

namespace kiln::ops {

Attrs& Attrs::set(std::string_view name, AttrValue v) {
  for (auto& [n, old] : items_)
    if (n == name) {
      old = std::move(v);
      return *this;
    }
  items_.emplace_back(name, std::move(v));
  return *this;
}

template <class T>
const T& Attrs::get(std::string_view name) const {
  const AttrValue* v = find(name);
  if (!v) fail<Internal>("attrs", "missing attribute '", name, "'");
  const T* p = std::get_if<T>(v);
  if (!p) fail<Internal>("attrs", "attribute '", name, "' has another type");
  return *p;
}
template const int64_t& Attrs::get<int64_t>(std::string_view) const;
template const double& Attrs::get<double>(std::string_view) const;
template const bool& Attrs::get<bool>(std::string_view) const;
template const DType& Attrs::get<DType>(std::string_view) const;
template const std::vector<int64_t>& Attrs::get<std::vector<int64_t>>(std::string_view) const;
template const std::string& Attrs::get<std::string>(std::string_view) const;
template const ObjectRef& Attrs::get<ObjectRef>(std::string_view) const;

bool operator==(const Attrs& a, const Attrs& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto& [n, v] = a.at(i);
    const AttrValue* w = b.find(n);
    if (!w || !(*w == v)) return false;
  }
  return true;
}

std::string attr_to_string(const AttrValue& v) {
  std::ostringstream os;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>)
          os << (x ? "true" : "false");
        else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          os << '[';
          for (size_t i = 0; i < x.size(); ++i) os << (i ? ", " : "") << x[i];
          os << ']';
        } else if constexpr (std::is_same_v<T, std::string>) {
          os << '"';
          for (char ch : x) {
            if (ch == '"' || ch == '\\')
              os << '\\' << ch;
            else if (ch == '\n')
              os << "\\n";
            else
              os << ch;
          }
          os << '"';
        }
        else if constexpr (std::is_same_v<T, double>) {
          os.precision(17);
          os << x;
        } else if constexpr (std::is_same_v<T, ObjectRef>)
          os << "<object>";
        else
          os << x;
      },
      v);
  return os.str();
}

}  // namespace kiln::ops
