// Kiln's exception hierarchy, mirroring TensorFlow's error codes (DESIGN.md §6).
// Messages start with the op or component in brackets and name the offending values.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace kiln {

/// Base of every error Kiln throws. `what()` is "[component] message".
class Error : public std::runtime_error {
 public:
  Error(std::string_view component, std::string_view message)
      : std::runtime_error(compose(component, message)), component_(component) {}
  /// The op or component that raised the error, e.g. "reshape".
  const std::string& component() const noexcept { return component_; }
  /// The error's type name, as TensorFlow spells it ("InvalidArgumentError", ...).
  virtual const char* type_name() const noexcept { return "Error"; }

 private:
  static std::string compose(std::string_view component, std::string_view message) {
    std::string s;
    s.reserve(component.size() + message.size() + 3);
    s += '[';
    s += component;
    s += "] ";
    s += message;
    return s;
  }
  std::string component_;
};

#define KILN_DEFINE_ERROR(Name, TypeName)                                \
  class Name : public Error {                                            \
   public:                                                               \
    using Error::Error;                                                  \
    const char* type_name() const noexcept override { return TypeName; } \
  };

/// A caller passed a value the operation cannot accept (bad shape, dtype, axis, index...).
KILN_DEFINE_ERROR(InvalidArgument, "InvalidArgumentError")
/// A named thing (file, variable, signature) does not exist.
KILN_DEFINE_ERROR(NotFound, "NotFoundError")
/// The system is not in a state the operation needs (e.g. a non-persistent tape used twice).
KILN_DEFINE_ERROR(FailedPrecondition, "FailedPreconditionError")
/// An index or value lies outside the valid range.
KILN_DEFINE_ERROR(OutOfRange, "OutOfRangeError")
/// The operation is not supported for these arguments (dtype, device).
KILN_DEFINE_ERROR(Unimplemented, "UnimplementedError")
/// Memory (or another resource) ran out, e.g. an output too large for this machine.
KILN_DEFINE_ERROR(ResourceExhausted, "ResourceExhaustedError")
/// A file or buffer is corrupt or truncated.
KILN_DEFINE_ERROR(DataLoss, "DataLossError")
/// A bug in Kiln itself; user input never causes this.
KILN_DEFINE_ERROR(Internal, "InternalError")
/// No gradient rule is registered for an op.
KILN_DEFINE_ERROR(LookupError, "LookupError")

#undef KILN_DEFINE_ERROR

namespace detail {
template <class... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

/// Throws `Err(component, str_cat(args...))`.
template <class Err, class... Args>
[[noreturn]] void fail(std::string_view component, Args&&... args) {
  throw Err(component, detail::str_cat(std::forward<Args>(args)...));
}

}  // namespace kiln

/// Internal invariant check: a failure is a Kiln bug and throws kiln::Internal.
#define KILN_CHECK(cond, component, ...)                                                               \
  do {                                                                                                 \
    if (!(cond)) ::kiln::fail<::kiln::Internal>(component, "check failed: " #cond " ", ##__VA_ARGS__); \
  } while (0)
