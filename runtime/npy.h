// NumPy .npy reading and writing (format versions 1.0, 2.0 and 3.0, NEP 1), in memory and on disk.
// Input is treated as hostile: every size is checked before it is used to read or allocate.
#pragma once

#include <string>
#include <string_view>

#include "runtime/tensor.h"

namespace kiln::npy {

/// Serializes a tensor to the bytes NumPy's `np.save` writes for the same array: magic
/// "\x93NUMPY", version 1.0 (2.0 only when the header exceeds 65535 bytes), then the header
/// dict `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces (with
/// NumPy's spare room for growing the first axis) and ended by '\n' so the data starts at a
/// multiple of 64 bytes, then the elements in C order, little-endian.
///
/// dtypes map to descrs as NumPy spells them: bool '|b1', int8 '|i1', int16..int64 '<i2'..'<i8',
/// uint8 '|u1', uint16..uint64 '<u2'..'<u8', float16 '<f2', float32 '<f4', float64 '<f8',
/// complex64 '<c8', complex128 '<c16'. Empty and 0-d tensors are fine.
///
/// Throws Unimplemented for bfloat16 (NumPy has no bfloat16 dtype, and writing raw '<V2' would
/// lose the type, so Kiln refuses rather than write a file that reads back as something else)
/// and for string tensors; FailedPrecondition for an undefined or symbolic tensor;
/// InvalidArgument for a tensor that is not on the CPU.
std::string encode(const Tensor& tensor);

/// Parses .npy bytes (exactly one array, as `encode` or `np.save` writes them) into a new CPU
/// tensor that owns a copy of the data.
///
/// Accepted: versions 1.0, 2.0 and 3.0; the descrs listed at `encode` with byte order '<', '>'
/// (byte-swapped on read), '=' or '|' (native) or none, plus '?' for bool; header keys in any
/// order, Python-2 `3L` dims, any whitespace NumPy's literal parser allows; fortran_order True
/// (the data is transposed into row-major order). Bool bytes other than 0 and 1 read as true,
/// as NumPy does. Every error message starts with "[npy] " and names the problem.
///
/// Throws DataLoss when the bytes are not a well-formed .npy file: truncated or bad magic, a
/// header length past the end, a header that is not ASCII or not a dict literal with exactly
/// the keys 'descr', 'fortran_order' and 'shape', a shape that is not a tuple of non-negative
/// integers or whose element count (or product of nonzero dims) overflows int64, data shorter
/// than the shape needs, or bytes left after the data (trailing bytes are refused: np.save never
/// writes them, so they mean a wrong shape or a damaged file). Throws Unimplemented for a
/// well-formed file Kiln cannot represent: another format version, or a descr outside the list
/// above (object '|O', strings, structured, datetime, float128...).
Tensor decode(std::string_view bytes);

/// Writes `encode(tensor)` to `path` (created or truncated), streaming the data without an
/// extra copy. Throws what `encode` throws; NotFound when the parent directory does not exist;
/// InvalidArgument when `path` cannot be opened for writing (a directory, no permission);
/// DataLoss when writing fails part way (the partial file is removed).
void save(const std::string& path, const Tensor& tensor);

/// Reads a .npy file with the checks of `decode`, reading the data straight into the new
/// tensor; messages name `path`. Throws NotFound when `path` does not exist, InvalidArgument
/// when it is a directory or cannot be read, DataLoss/Unimplemented as `decode`.
Tensor load(const std::string& path);

}  // namespace kiln::npy

namespace kiln {

/// `npy::save`: writes `tensor` to `path` as a NumPy .npy file.
inline void save_npy(const std::string& path, const Tensor& tensor) { npy::save(path, tensor); }
/// `npy::load`: reads a NumPy .npy file into a CPU tensor.
inline Tensor load_npy(const std::string& path) { return npy::load(path); }

}  // namespace kiln
