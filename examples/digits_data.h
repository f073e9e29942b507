// The handwritten digits data set (examples/data/digits.csv.gz, from Debian's python3-sklearn):
// reading the gzip CSV and the seeded 80/20 split that examples/digits and bench/fit.cpp share.
#pragma once

#include <kiln/kiln.h>
#include <zlib.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::digits {

/// Reads a gzip file with zlib (the whole file: it is small). NotFound when it cannot be opened,
/// DataLoss when it is not valid gzip.
inline std::string read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail<NotFound>("digits", "cannot open '", path, "' (run scripts/kiln.sh fetch-digits)");
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, size_t(n));
  int err = 0;
  std::string msg = n < 0 ? gzerror(f, &err) : "";
  gzclose(f);
  if (n < 0) fail<DataLoss>("digits", "'", path, "' is not a valid gzip file: ", msg);
  return out;
}

/// The examples: 8x8 images as 64 pixel values scaled from 0..16 to 0..1, and labels 0-9.
struct Digits {
  std::vector<float> x;  // [n, 64]
  std::vector<int32_t> y;
};

/// Parses the CSV: one example per line, 64 pixel values then the label. DataLoss for a line that
/// is not 65 integers with a label 0-9.
inline Digits parse(const std::string& csv) {
  Digits d;
  size_t line = 0, at = 0;
  while (at < csv.size()) {
    size_t end = csv.find('\n', at);
    if (end == std::string::npos) end = csv.size();
    std::string_view row(csv.data() + at, end - at);
    at = end + 1;
    ++line;
    if (row.empty()) continue;
    std::vector<int> v;
    size_t p = 0;
    while (p <= row.size()) {
      size_t q = row.find(',', p);
      if (q == std::string_view::npos) q = row.size();
      v.push_back(std::stoi(std::string(row.substr(p, q - p))));
      p = q + 1;
    }
    if (v.size() != 65 || v[64] < 0 || v[64] > 9)
      fail<DataLoss>("digits", "line ", line, " has ", v.size(), " values (expected 64 pixels and a label 0-9)");
    for (int i = 0; i < 64; ++i) d.x.push_back(float(v[size_t(i)]) / 16.0f);
    d.y.push_back(v[64]);
  }
  return d;
}

/// The rows of `idx` as tensors: x [n, 64] float32, y [n] int32.
inline std::pair<Tensor, Tensor> take(const Digits& d, const std::vector<size_t>& idx) {
  std::vector<float> x;
  std::vector<int32_t> y;
  for (size_t i : idx) {
    x.insert(x.end(), d.x.begin() + std::ptrdiff_t(64 * i), d.x.begin() + std::ptrdiff_t(64 * i + 64));
    y.push_back(d.y[i]);
  }
  int64_t n = int64_t(idx.size());
  return {constant(x, Shape{n, 64}), constant(y, Shape{n})};
}

/// A seeded 80/20 split (Fisher-Yates with a fixed generator: the same on every platform):
/// {x_train, y_train, x_test, y_test}.
inline std::array<Tensor, 4> split(const Digits& d) {
  std::vector<size_t> order(d.y.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 gen(0);
  for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[size_t(gen() % (i + 1))]);
  size_t n_train = order.size() * 4 / 5;
  auto [x_train, y_train] = take(d, {order.begin(), order.begin() + std::ptrdiff_t(n_train)});
  auto [x_test, y_test] = take(d, {order.begin() + std::ptrdiff_t(n_train), order.end()});
  return {x_train, y_train, x_test, y_test};
}

}  // namespace kiln::digits
