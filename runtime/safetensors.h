// safetensors reading and writing (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
// then the data. Input is treated as hostile: every size is checked against the file before use.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/tensor.h"

namespace kiln::safetensors {

/// The header's free-form `__metadata__` (string keys and values only, as the format requires).
using Metadata = std::map<std::string, std::string>;

/// The largest header Kiln reads (the reference implementation's limit, 100 MB).
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

/// A decoded file: the tensors in file order (sorted by name, as Kiln writes them) and metadata.
struct Contents {
  std::vector<std::pair<std::string, Tensor>> tensors;
  Metadata metadata;
  /// The tensor named `name`, or null.
  const Tensor* find(std::string_view name) const;
};

/// One tensor's entry in a header, without its data.
struct TensorInfo {
  std::string name;
  DType dtype = float32;
  Shape shape;
};

/// Serializes tensors as a safetensors file: a JSON header with the tensors sorted by name (and
/// `__metadata__` when `metadata` is not empty), padded with spaces to a multiple of 8 bytes,
/// then each tensor's bytes in that order, contiguous. dtypes map to BOOL, U8, I8, U16, I16,
/// U32, I32, U64, I64, F16, BF16, F32, F64.
///
/// Throws InvalidArgument for an empty or duplicate name, a tensor not on the CPU, or the
/// reserved name "__metadata__"; Unimplemented for complex or string tensors (the format has
/// no such dtypes); FailedPrecondition for an undefined or symbolic tensor.
std::string encode(const std::vector<std::pair<std::string, Tensor>>& tensors, const Metadata& metadata = {});

/// Parses a safetensors file (from Kiln, Python's safetensors, or anything that follows the
/// format) into CPU tensors that own copies of the data.
///
/// Throws DataLoss, with a message starting "[safetensors] " that names the problem, when the
/// bytes are not a well-formed file: shorter than 8 bytes, a header length past the end or over
/// kMaxHeaderBytes, a header that is not a JSON object of entries {"dtype", "shape",
/// "data_offsets"} (each exactly once, no other keys), a shape with negative or non-integer
/// dims or an element count overflowing int64, offsets that do not match the dtype and shape,
/// that overlap or leave gaps, or that do not end exactly at the end of the file, metadata that
/// is not string to string. Unimplemented for a dtype Kiln does not have (F8_E4M3...).
Contents decode(std::string_view bytes);

/// The header's entries (sorted by name) and metadata, with the checks of `decode` except that
/// the data is not copied.
std::pair<std::vector<TensorInfo>, Metadata> decode_header(std::string_view bytes);

/// Writes `encode(tensors, metadata)` to `path` atomically (io::write_file_atomic).
void save(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
          const Metadata& metadata = {});

/// Reads and decodes the file at `path`. Throws NotFound for a missing file and what `decode`
/// throws (messages name `path`).
Contents load(const std::string& path);

/// The safetensors name of a dtype ("F32"); Unimplemented when the format has none.
std::string_view dtype_code(DType d);

}  // namespace kiln::safetensors
