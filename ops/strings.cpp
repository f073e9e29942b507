// Public string op functions: wrappers over ops::apply that turn (values, row_splits) results into
// a vector (scalar input) or a RaggedTensor (vector input).
#include "ops/strings.h"

#include "ops/dispatch.h"

namespace kiln::strings {
namespace {

using ops::apply;
using ops::apply1;
using ops::Attrs;
using ops::OpId;

TensorOrRagged ragged_result(const Tensor& input, ops::OpId id, const Attrs& attrs) {
  ops::TensorList out = apply(id, attrs, std::span<const Tensor>(&input, 1));
  if (input.ndim() == 0) return out[0];
  return RaggedTensor::from_row_splits(std::move(out[0]), std::move(out[1]));
}

}  // namespace

TensorOrRagged split(const Tensor& input, std::optional<std::string> sep, int64_t maxsplit) {
  return ragged_result(input, OpId::StringSplit, Attrs{{"sep", sep.value_or("")}, {"maxsplit", maxsplit}});
}

Tensor to_number(const Tensor& input, DType out_type) {
  return apply1(OpId::StringToNumber, {input}, Attrs{{"out_type", out_type}});
}

TensorOrRagged bytes_split(const Tensor& input) { return ragged_result(input, OpId::StringBytesSplit, {}); }

Tensor length(const Tensor& input, const std::string& unit) {
  return apply1(OpId::StringLength, {input}, Attrs{{"unit", unit}});
}

Tensor join(const std::vector<Tensor>& inputs, const std::string& separator) {
  return apply1(OpId::StringJoin, Attrs{{"separator", separator}}, inputs);
}

Tensor substr(const Tensor& input, int64_t pos, int64_t len, const std::string& unit) {
  return apply1(OpId::StringSubstr, {input}, Attrs{{"pos", pos}, {"len", len}, {"unit", unit}});
}

Tensor lower(const Tensor& input) { return apply1(OpId::StringLower, {input}); }
Tensor upper(const Tensor& input) { return apply1(OpId::StringUpper, {input}); }

TensorOrRagged unicode_split(const Tensor& input, const std::string& input_encoding, const std::string& errors,
                             int64_t replacement_char) {
  return ragged_result(
      input, OpId::UnicodeSplit,
      Attrs{{"input_encoding", input_encoding}, {"errors", errors}, {"replacement_char", replacement_char}});
}

TensorOrRagged unicode_decode(const Tensor& input, const std::string& input_encoding, const std::string& errors,
                              int64_t replacement_char) {
  return ragged_result(
      input, OpId::UnicodeDecode,
      Attrs{{"input_encoding", input_encoding}, {"errors", errors}, {"replacement_char", replacement_char}});
}

Tensor unicode_encode(const RaggedTensor& codepoints, const std::string& output_encoding, const std::string& errors,
                      int64_t replacement_char) {
  if (!codepoints.defined()) fail<InvalidArgument>("unicode_encode", "the code points are undefined");
  return apply1(
      OpId::UnicodeEncode, {codepoints.values(), codepoints.row_splits()},
      Attrs{{"output_encoding", output_encoding}, {"errors", errors}, {"replacement_char", replacement_char}});
}

Tensor unicode_encode(const Tensor& codepoints, const std::string& output_encoding, const std::string& errors,
                      int64_t replacement_char) {
  if (!codepoints.defined()) fail<InvalidArgument>("unicode_encode", "the code points are undefined");
  if (codepoints.ndim() != 1 && codepoints.ndim() != 2)
    fail<InvalidArgument>("unicode_encode", "code points must be a vector or a matrix, got shape ",
                          codepoints.shape().to_string());
  // dense rows are a ragged tensor whose rows all have the same length
  const bool vector = codepoints.ndim() == 1;
  const int64_t rows = vector ? 1 : codepoints.shape().dim(0);
  const int64_t cols = codepoints.shape().dim(vector ? 0 : 1);
  Tensor splits = range(int64_t{0}, rows * cols + 1, cols == 0 ? 1 : cols, int64);
  if (cols == 0) splits = zeros({rows + 1}, int64);
  Tensor flat = reshape(codepoints, {rows * cols});
  Tensor out = unicode_encode(RaggedTensor::from_row_splits(flat, splits), output_encoding, errors, replacement_char);
  return vector ? reshape(out, {}) : out;
}

}  // namespace kiln::strings

namespace kiln::io {

Tensor decode_raw(const Tensor& bytes, DType out_type, bool little_endian) {
  return ops::apply1(ops::OpId::DecodeRaw, {bytes},
                     ops::Attrs{{"out_type", out_type}, {"little_endian", little_endian}});
}

}  // namespace kiln::io
