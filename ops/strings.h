// String ops (kiln::strings, kiln::io): byte-string tensors split, parsed, measured, joined, cut,
// case-mapped, reinterpreted as numbers, and converted to and from Unicode code points.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "ops/ragged.h"

namespace kiln::strings {

/// Splits each string at `sep` (Python's str.split: with no separator, runs of ASCII whitespace
/// separate and empty parts are dropped; an explicit separator keeps empty parts). At most
/// `maxsplit` splits per string when it is >= 0. A scalar gives a vector of parts; a vector gives
/// a RaggedTensor with one row per string. Higher ranks and non-string inputs throw
/// InvalidArgument.
TensorOrRagged split(const Tensor& input, std::optional<std::string> sep = std::nullopt, int64_t maxsplit = -1);

/// Parses each string as a number of `out_type` (float32, float64, int32 or int64); leading and
/// trailing whitespace is allowed. Text that is not a number (or an integer outside the type)
/// throws InvalidArgument naming the text.
Tensor to_number(const Tensor& input, DType out_type = float32);

/// The bytes of each string as one-byte strings: a vector for a scalar, a RaggedTensor for a vector.
TensorOrRagged bytes_split(const Tensor& input);

/// The length of each string (int32), in bytes (`unit` "BYTE") or UTF-8 characters ("UTF8_CHAR",
/// an invalid byte sequence counting as one character).
Tensor length(const Tensor& input, const std::string& unit = "BYTE");

/// Elementwise concatenation of string tensors (broadcast together), with `separator` between them.
Tensor join(const std::vector<Tensor>& inputs, const std::string& separator = "");

/// The substring of each string from `pos` (negative counts from the end) of at most `len`
/// units (bytes, or UTF-8 characters with `unit` "UTF8_CHAR"). A `pos` beyond a string's length
/// throws InvalidArgument naming the string; a negative `len` throws.
Tensor substr(const Tensor& input, int64_t pos, int64_t len, const std::string& unit = "BYTE");

/// ASCII lower and upper case; other bytes are kept.
Tensor lower(const Tensor& input);
Tensor upper(const Tensor& input);

/// Splits UTF-8 strings into characters (each a string of its bytes). `errors` says what an
/// invalid byte sequence becomes: "replace" (U+FFFD, TensorFlow's default), "ignore" (dropped)
/// or "strict" (InvalidArgument naming the byte offset). A scalar gives a vector, a vector a
/// RaggedTensor. Only "UTF-8" is supported as `input_encoding`.
TensorOrRagged unicode_split(const Tensor& input, const std::string& input_encoding = "UTF-8",
                             const std::string& errors = "replace", int64_t replacement_char = 0xFFFD);

/// Decodes UTF-8 strings to int32 code points, with `errors` as in unicode_split: a vector for a
/// scalar, a RaggedTensor for a vector.
TensorOrRagged unicode_decode(const Tensor& input, const std::string& input_encoding = "UTF-8",
                              const std::string& errors = "replace", int64_t replacement_char = 0xFFFD);

/// Encodes int32 code points as UTF-8: a vector gives a scalar string, a matrix one string per
/// row, a RaggedTensor one string per row. Invalid code points (negative, surrogates, above
/// U+10FFFF) become `replacement_char` with errors "replace", are dropped with "ignore" and
/// throw InvalidArgument with "strict".
Tensor unicode_encode(const Tensor& codepoints, const std::string& output_encoding = "UTF-8",
                      const std::string& errors = "replace", int64_t replacement_char = 0xFFFD);
Tensor unicode_encode(const RaggedTensor& codepoints, const std::string& output_encoding = "UTF-8",
                      const std::string& errors = "replace", int64_t replacement_char = 0xFFFD);

}  // namespace kiln::strings

namespace kiln::io {

/// Reinterprets the bytes of each string as numbers of `out_type` (little-endian unless
/// `little_endian` is false): input shape S gives S + [bytes / element size]. Every string must
/// have the same length, a multiple of the element size; otherwise InvalidArgument.
Tensor decode_raw(const Tensor& bytes, DType out_type, bool little_endian = true);

}  // namespace kiln::io
