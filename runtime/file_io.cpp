// Whole-file reads and atomic writes (temporary file + fsync + rename + directory fsync).
#include "runtime/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "runtime/errors.h"

namespace kiln::io {

namespace {
std::atomic<int64_t> g_crash_after{-1};
std::atomic<uint64_t> g_counter{0};

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

namespace testing {
void crash_writes_after(std::optional<uint64_t> bytes) { g_crash_after = bytes ? int64_t(*bytes) : -1; }
}  // namespace testing

std::string read_file(const std::string& path, std::string_view component, uint64_t max_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) fail<NotFound>(component, "no such file: '", path, "'");
  if (st.type() == fs::file_type::directory)
    fail<InvalidArgument>(component, "cannot read '", path, "': it is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail<InvalidArgument>(component, "cannot open '", path, "' for reading: ", std::strerror(errno));
  f.seekg(0, std::ios::end);
  std::streamoff end = f.tellg();
  f.seekg(0, std::ios::beg);
  if (end < 0 || !f) fail<InvalidArgument>(component, "cannot read '", path, "': its size is unknown");
  if (uint64_t(end) > max_bytes)
    fail<DataLoss>(component, "file '", path, "' has ", end, " bytes, more than the ", max_bytes, " allowed");
  std::string data(size_t(end), '\0');
  f.read(data.data(), std::streamsize(data.size()));
  if (size_t(f.gcount()) != data.size())
    fail<DataLoss>(component, "reading '", path, "' failed after ", f.gcount(), " of ", data.size(), " bytes");
  return data;
}

void write_file_atomic(const std::string& path, std::string_view data, std::string_view component) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path target(path);
  fs::path dir = target.parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec))
    fail<NotFound>(component, "cannot write '", path, "': directory '", dir.string(), "' does not exist");
  if (fs::is_directory(target, ec)) fail<InvalidArgument>(component, "cannot write '", path, "': it is a directory");
  // unique per process and call, so concurrent writers never share a temporary file
  std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(g_counter++);
  Fd f;
  f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (f.fd < 0) fail<InvalidArgument>(component, "cannot create '", tmp, "': ", std::strerror(errno));
  auto give_up = [&](const char* what, int err) {
    ::close(f.fd);
    f.fd = -1;
    fs::remove(tmp, ec);
    fail<DataLoss>(component, what, " '", tmp, "' (for '", path, "') failed: ", std::strerror(err),
                   "; the previous file is unchanged");
  };
  int64_t crash_after = g_crash_after.load();
  size_t done = 0;
  while (done < data.size()) {
    size_t n = std::min<size_t>(data.size() - done, size_t(1) << 30);
    if (crash_after >= 0) {
      if (uint64_t(crash_after) <= done) fail<DataLoss>(component, "simulated crash while writing '", path, "'");
      n = std::min<size_t>(n, size_t(crash_after) - done);
    }
    ssize_t w = ::write(f.fd, data.data() + done, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      give_up("writing", errno);
    }
    done += size_t(w);
  }
  if (crash_after >= 0 && uint64_t(crash_after) <= done)
    fail<DataLoss>(component, "simulated crash while writing '", path, "'");
  if (::fsync(f.fd) != 0) give_up("syncing", errno);
  if (::close(f.fd) != 0) {
    f.fd = -1;
    give_up("closing", errno);
  }
  f.fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    fs::remove(tmp, ec);
    fail<DataLoss>(component, "renaming '", tmp, "' to '", path, "' failed: ", std::strerror(err),
                   "; the previous file is unchanged");
  }
  // the rename is durable only once the directory entry is on disk
  Fd d;
  d.fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.fd >= 0) ::fsync(d.fd);
}

}  // namespace kiln::io
