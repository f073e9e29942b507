// Whole-file reads and atomic file writes (write a temporary file beside the target, flush it to
// disk, rename it over the target), shared by checkpoints and saved models.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::io {

/// Reads the whole file at `path`. Throws NotFound when it does not exist, InvalidArgument when
/// it is a directory or cannot be opened, DataLoss when reading fails part way or the file is
/// larger than `max_bytes`. Messages start with "[component] ".
std::string read_file(const std::string& path, std::string_view component,
                      uint64_t max_bytes = uint64_t(1) << 40);

/// Writes `data` to `path` atomically: the bytes go to a temporary file in the same directory,
/// which is flushed to disk (fsync) and renamed over `path`, and the directory is synced. A
/// reader sees either the old file or the complete new one, never a mix, even when the process
/// dies mid-write (a crash can leave a `<path>.tmp-*` file behind; it is never read). Throws
/// NotFound when the directory does not exist, InvalidArgument when `path` is a directory or the
/// temporary file cannot be created, DataLoss when a write, sync or rename fails (the old file
/// is kept and the temporary file removed).
void write_file_atomic(const std::string& path, std::string_view data, std::string_view component);

namespace testing {
/// Simulates a crash in the next atomic writes: after `bytes` bytes of a temporary file are
/// written, the write stops and throws DataLoss("simulated crash") without cleaning up, as a
/// process killed at that point would leave things. `std::nullopt` turns it off. For tests.
void crash_writes_after(std::optional<uint64_t> bytes);
}  // namespace testing

}  // namespace kiln::io
