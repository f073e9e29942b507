// NumPy .npy I/O: round trips of every dtype, byte-exact agreement with np.save, big-endian and
// Fortran-order input, format versions, hostile inputs, and the file wrappers.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "runtime/errors.h"
#include "runtime/npy.h"

using namespace kiln;

namespace {

std::string bytes_of(const Tensor& t) { return std::string(static_cast<const char*>(t.raw_data()), t.nbytes()); }

// The 10-byte version 1.0 preamble for a header of `header_len` bytes.
std::string v1_prefix(size_t header_len) {
  std::string p("\x93NUMPY\x01\x00", 8);
  p += static_cast<char>(header_len & 0xff);
  p += static_cast<char>(header_len >> 8);
  return p;
}

// `dict` padded with spaces to `header_len` bytes, the last one '\n', as np.save pads.
std::string padded(const std::string& dict, size_t header_len) {
  std::string h = dict;
  h.append(header_len - 1 - dict.size(), ' ');
  h += '\n';
  return h;
}

// A version-1.0 file with an unpadded header: fine for reading, and short to write by hand.
std::string v1_file(const std::string& dict, const std::string& data = "") {
  return v1_prefix(dict.size() + 1) + dict + "\n" + data;
}

template <class T>
std::string le_bytes(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out.append(reinterpret_cast<const char*>(&v), sizeof(T));
  return out;
}

Tensor random_values(const Shape& s, DType d, uint64_t seed) {
  if (d == bool_) return cast(random::uniform(s, seed, 0, 2, int32), bool_);
  if (is_complex(d)) return cast(random::uniform(s, seed, -10, 10, float64), d);
  if (is_unsigned_integer(d)) return random::uniform(s, seed, 0, 250, d);
  if (is_signed_integer(d)) return random::uniform(s, seed, -120, 120, d);
  return random::uniform(s, seed, -10, 10, d);
}

// Arbitrary bit patterns (NaN payloads, full 64-bit integers, complex imaginary parts).
Tensor random_bits(const Shape& s, DType d, uint64_t seed) {
  Tensor t = Tensor::empty(s, d);
  std::mt19937_64 rng(seed);
  auto* p = static_cast<unsigned char*>(t.mutable_raw_data());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>(d == bool_ ? rng() & 1 : rng());
  return t;
}

void check_same(const Tensor& a, const Tensor& b) {
  REQUIRE(a.dtype() == b.dtype());
  REQUIRE(a.shape() == b.shape());
  CHECK(bytes_of(a) == bytes_of(b));
}

const std::vector<DType> kNpyDTypes = {bool_,  int8,   int16,   int32,   int64,   uint8,     uint16,
                                       uint32, uint64, float16, float32, float64, complex64, complex128};

enum class Kind { DataLoss, Unimplemented };

struct BadCase {
  const char* name;
  std::string bytes;
  Kind kind;
  const char* fragment;  // a part of the message after "[npy] "
};

void check_bad(const BadCase& c) {
  INFO("case: " << c.name);
  try {
    npy::decode(c.bytes);
    FAIL("decode accepted the input");
  } catch (const Error& e) {
    std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.rfind("[npy] ", 0) == 0);
    CHECK(msg.find(c.fragment) != std::string::npos);
    if (c.kind == Kind::DataLoss) CHECK(dynamic_cast<const DataLoss*>(&e) != nullptr);
    if (c.kind == Kind::Unimplemented) CHECK(dynamic_cast<const Unimplemented*>(&e) != nullptr);
  }
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / (std::string("kiln_npy_test_") + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace

TEST_CASE("npy round trips every dtype and shape", "[npy]") {
  const std::vector<Shape> shapes = {Shape{}, Shape{0}, Shape{7}, Shape{3, 4}, Shape{3, 0, 2}, Shape{2, 3, 5}};
  uint64_t seed = 1;
  for (DType d : kNpyDTypes) {
    for (const Shape& s : shapes) {
      INFO(dtype_name(d) << " " << s.to_string());
      for (const Tensor& t : {random_values(s, d, seed), random_bits(s, d, seed)}) {
        std::string bytes = npy::encode(t);
        // version 1.0, data aligned to 64 bytes, header ended by '\n'
        REQUIRE(bytes.size() >= 128);
        CHECK(bytes[6] == 1);
        size_t header_len = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
        CHECK((10 + header_len) % 64 == 0);
        CHECK(bytes[9 + header_len] == '\n');
        CHECK(bytes.size() == 10 + header_len + t.nbytes());
        check_same(npy::decode(bytes), t);
      }
      ++seed;
    }
  }
}

TEST_CASE("npy encode matches np.save byte for byte", "[npy]") {
  // np.save(f, np.arange(6, dtype='<i4').reshape(2, 3))
  std::string dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }";
  REQUIRE(dict.size() == 59);
  std::string expected = v1_prefix(118) + padded(dict, 118) + le_bytes<int32_t>({0, 1, 2, 3, 4, 5});
  REQUIRE(expected.size() == 128 + 24);
  Tensor t = npy::decode(expected);
  CHECK(t.dtype() == int32);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 3, 4, 5});
  CHECK(npy::encode(t) == expected);
  CHECK(npy::encode(constant({{0, 1, 2}, {3, 4, 5}}, int32)) == expected);

  // np.save(f, np.array(1.5)): a 0-d float64 array
  std::string scalar_file =
      v1_prefix(118) + padded("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 118) + le_bytes<double>({1.5});
  CHECK(npy::encode(scalar(1.5)) == scalar_file);
  CHECK(npy::decode(scalar_file).item<double>() == 1.5);

  // np.save(f, np.array([True, False, True]))
  std::string bools = v1_prefix(118) + padded("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", 118) +
                      std::string("\x01\x00\x01", 3);
  CHECK(npy::encode(constant({true, false, true})) == bools);

  // An empty complex64 array of shape (3, 0, 2).
  std::string empty_c = v1_prefix(118) + padded("{'descr': '<c8', 'fortran_order': False, 'shape': (3, 0, 2), }", 118);
  CHECK(npy::encode(Tensor::empty(Shape{3, 0, 2}, complex64)) == empty_c);
  check_same(npy::decode(empty_c), Tensor::empty(Shape{3, 0, 2}, complex64));

  // NumPy >= 1.24 leaves 21 - len(str(shape[0])) spare spaces before padding; with 16 axes that
  // pushes the header from 118 to 182 bytes.
  Shape ones;
  for (int i = 0; i < 16; ++i) ones.push_back(1);
  std::string dict16 =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), }";
  std::string expected16 = v1_prefix(182) + padded(dict16, 182) + le_bytes<float>({2.0f});
  CHECK(npy::encode(reshape(scalar(2.0f), ones)) == expected16);
}

TEST_CASE("npy reads every descr spelling and byte order", "[npy]") {
  const std::string tail = "'fortran_order': False, 'shape': (2,), }";
  // big-endian data is byte-swapped
  Tensor t = npy::decode(v1_file("{'descr': '>i4', " + tail, std::string("\x00\x00\x01\x02\xff\xff\xff\xfe", 8)));
  CHECK(t.to_vector<int32_t>() == std::vector<int32_t>{258, -2});
  t = npy::decode(v1_file("{'descr': '>f8', " + tail, std::string("\x3f\xf0\0\0\0\0\0\0\xc0\0\0\0\0\0\0\0", 16)));
  CHECK(t.to_vector<double>() == std::vector<double>{1.0, -2.0});
  t = npy::decode(v1_file("{'descr': '>c8', " + tail, std::string("\x3f\x80\0\0\x40\0\0\0\0\0\0\0\xbf\x80\0\0", 16)));
  CHECK(t.to_vector<complex64_t>() == std::vector<complex64_t>{{1.0f, 2.0f}, {0.0f, -1.0f}});
  t = npy::decode(v1_file("{'descr': '>f2', " + tail, std::string("\x3c\x00\xc0\x00", 4)));
  CHECK(float(t.to_vector<Half>()[0]) == 1.0f);
  CHECK(float(t.to_vector<Half>()[1]) == -2.0f);
  t = npy::decode(v1_file("{'descr': '>u2', " + tail, std::string("\x01\x00\xff\xfe", 4)));
  CHECK(t.to_vector<uint16_t>() == std::vector<uint16_t>{256, 65534});
  t = npy::decode(v1_file("{'descr': '>i1', " + tail, std::string("\x05\xfb", 2)));
  CHECK(t.to_vector<int8_t>() == std::vector<int8_t>{5, -5});

  // '=', '|' and no order character mean native; '?' is bool
  for (const char* descr : {"'=i4'", "'|i4'", "'i4'", "'<i4'"}) {
    t = npy::decode(v1_file(std::string("{'descr': ") + descr + ", " + tail, le_bytes<int32_t>({7, -7})));
    CHECK(t.to_vector<int32_t>() == std::vector<int32_t>{7, -7});
  }
  // bool bytes other than 0 and 1 read as true, as in NumPy
  t = npy::decode(v1_file("{'descr': '?', 'fortran_order': False, 'shape': (4,), }", std::string("\0\x01\x02\xff", 4)));
  CHECK(t.to_vector<bool>() == std::vector<bool>{false, true, true, true});

  // keys in any order, double quotes, no trailing commas, Python 2 longs, extra whitespace
  t = npy::decode(v1_file("  { \"shape\" : ( 2L ,3 ) ,\n\t'fortran_order':False,'descr':\"<u1\"}  \r\n", "abcdef"));
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.dtype() == uint8);
  CHECK(t.to_vector<uint8_t>()[5] == 'f');
}

TEST_CASE("npy reads Fortran-ordered data into row-major order", "[npy]") {
  Tensor t = npy::decode(
      v1_file("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", le_bytes<int32_t>({0, 3, 1, 4, 2, 5})));
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 3, 4, 5});

  // (2, 3, 4) float64, big-endian: the element at C index (i, j, k) sits at i + 2j + 6k
  std::string data(24 * 8, '\0');
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) {
        double v = i * 12 + j * 4 + k;
        uint64_t bits;
        std::memcpy(&bits, &v, 8);
        bits = __builtin_bswap64(bits);
        std::memcpy(&data[(i + 2 * j + 6 * k) * 8], &bits, 8);
      }
  t = npy::decode(v1_file("{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3, 4), }", data));
  std::vector<double> want(24);
  for (int i = 0; i < 24; ++i) want[i] = i;
  CHECK(t.to_vector<double>() == want);

  // rank <= 1 and empty arrays are the same in both orders
  t = npy::decode(v1_file("{'descr': '<i2', 'fortran_order': True, 'shape': (3,), }", le_bytes<int16_t>({1, 2, 3})));
  CHECK(t.to_vector<int16_t>() == std::vector<int16_t>{1, 2, 3});
  t = npy::decode(v1_file("{'descr': '<i2', 'fortran_order': True, 'shape': (0, 3), }"));
  CHECK(t.shape() == Shape{0, 3});
}

TEST_CASE("npy reads versions 2.0 and 3.0 and writes 2.0 for huge headers", "[npy]") {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  std::string header = padded(dict, 116);  // 12 + 116 = 128
  for (char major : {'\x02', '\x03'}) {
    std::string bytes("\x93NUMPY", 6);
    bytes += major;
    bytes += '\0';
    bytes += std::string("\x74\x00\x00\x00", 4);  // 116
    bytes += header + le_bytes<float>({1.5f, -3.0f});
    Tensor t = npy::decode(bytes);
    CHECK(t.to_vector<float>() == std::vector<float>{1.5f, -3.0f});
  }

  // 30000 axes of size 1 need a header over 65535 bytes: np.save switches to version 2.0
  Shape many;
  for (int i = 0; i < 30000; ++i) many.push_back(1);
  Tensor t = reshape(scalar<int16_t>(42), many);
  std::string bytes = npy::encode(t);
  CHECK(bytes[6] == 2);
  CHECK(bytes[7] == 0);
  uint64_t header_len = 0;
  for (int i = 0; i < 4; ++i) header_len |= uint64_t{static_cast<unsigned char>(bytes[8 + i])} << (8 * i);
  CHECK(header_len > 65535);
  CHECK((12 + header_len) % 64 == 0);
  CHECK(bytes.size() == 12 + header_len + 2);
  check_same(npy::decode(bytes), t);
}

TEST_CASE("npy refuses corrupt and unsupported input with a clear error", "[npy]") {
  const std::string ok_dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }";
  const std::string ok_data = le_bytes<int32_t>({1, 2});
  auto with_version = [&](char major, char minor) {
    std::string b = v1_file(ok_dict, ok_data);
    b[6] = major;
    b[7] = minor;
    return b;
  };
  auto with_header_len = [&](size_t len) {
    std::string b = v1_file(ok_dict, ok_data);
    b[8] = static_cast<char>(len & 0xff);
    b[9] = static_cast<char>(len >> 8);
    return b;
  };
  auto with_shape = [&](const std::string& shape, const std::string& data = "") {
    return v1_file("{'descr': '<i4', 'fortran_order': False, 'shape': " + shape + ", }", data);
  };
  auto with_descr = [&](const std::string& descr) {
    return v1_file("{'descr': " + descr + ", 'fortran_order': False, 'shape': (2,), }", ok_data);
  };
  const BadCase cases[] = {
      {"empty input", "", Kind::DataLoss, "truncated"},
      {"truncated magic", std::string("\x93NUM", 4), Kind::DataLoss, "truncated"},
      {"bad magic", std::string("\x89PNG\r\n\x1a\n\0\0\0\0", 12), Kind::DataLoss, "bad magic"},
      {"text file", "hello world, this is not npy", Kind::DataLoss, "bad magic"},
      {"no version", std::string("\x93NUMPY\x01", 7), Kind::DataLoss, "truncated"},
      {"no header length", std::string("\x93NUMPY\x01\x00\x10", 9), Kind::DataLoss, "truncated"},
      {"version 9", with_version('\x09', '\0'), Kind::Unimplemented, "version 9.0"},
      {"version 1.1", with_version('\x01', '\x01'), Kind::Unimplemented, "version 1.1"},
      {"header length past the end", with_header_len(5000), Kind::DataLoss, "goes past the end"},
      {"v2 header length 4 GiB", std::string("\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14), Kind::DataLoss,
       "goes past the end"},
      {"header not a dict", v1_file("[1, 2]"), Kind::DataLoss, "not a dict literal"},
      {"header dict not closed", v1_file("{'descr': '<i4'"), Kind::DataLoss, "not closed"},
      {"text after the dict", v1_file(ok_dict + " x", ok_data), Kind::DataLoss, "after the header dict"},
      {"unterminated string", v1_file("{'descr: 1}"), Kind::DataLoss, "unterminated string"},
      {"missing key", v1_file("{'descr': '<i4', 'fortran_order': False}", ok_data), Kind::DataLoss, "no 'shape' key"},
      {"extra key", v1_file("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), 'x': 1}", ok_data), Kind::DataLoss,
       "unexpected key 'x'"},
      {"duplicate key", v1_file("{'descr': '<i4', 'descr': '<i4', 'fortran_order': False, 'shape': (2,)}", ok_data),
       Kind::DataLoss, "duplicate key 'descr'"},
      {"object descr", with_descr("'|O'"), Kind::Unimplemented, "object arrays"},
      {"string descr", with_descr("'<U4'"), Kind::Unimplemented, "string arrays"},
      {"unknown descr", with_descr("'<q7'"), Kind::Unimplemented, "unsupported descr '<q7'"},
      {"structured descr", with_descr("[('a', '<i4')]"), Kind::Unimplemented, "structured"},
      {"descr not a string", with_descr("5"), Kind::DataLoss, "expected a quoted string for 'descr'"},
      {"negative dim", with_shape("(2, -3)"), Kind::DataLoss, "negative dimension -3"},
      {"non-integer dim", with_shape("(2.5,)"), Kind::DataLoss, "must be integers, got '2.5'"},
      {"bool dim", with_shape("(True,)"), Kind::DataLoss, "must be integers"},
      {"shape is a list", with_shape("[2]"), Kind::DataLoss, "must be a tuple"},
      {"shape is an int", with_shape("(2)", ok_data), Kind::DataLoss, "must be a tuple"},
      {"dim beyond int64", with_shape("(99999999999999999999,)"), Kind::DataLoss, "too large for int64"},
      {"element count overflow", with_shape("(4294967296, 4294967296)"), Kind::DataLoss, "overflows int64"},
      {"overflow beside a zero", with_shape("(0, 4294967296, 4294967296)"), Kind::DataLoss, "overflows int64"},
      {"data too short", v1_file(ok_dict, ok_data.substr(0, 5)), Kind::DataLoss, "needs 8 bytes but only 5"},
      {"huge shape, no data", with_shape("(1099511627776,)"), Kind::DataLoss, "truncated data"},
      {"trailing bytes", v1_file(ok_dict, ok_data + "xyz"), Kind::DataLoss, "3 trailing bytes"},
      {"non-ASCII header", v1_file("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), '\xc3\xa9': 1}", ok_data),
       Kind::DataLoss, "not ASCII: byte \\xc3"},
      {"NUL in header",
       v1_file("{'descr': '<i4'," + std::string(1, '\0') + " 'fortran_order': False, 'shape': (2,), }", ok_data),
       Kind::DataLoss, "control byte \\x00"},
      {"fortran_order of the wrong type", v1_file("{'descr': '<i4', 'fortran_order': 0, 'shape': (2,), }", ok_data),
       Kind::DataLoss, "'fortran_order' must be True or False, got '0'"},
  };
  STATIC_REQUIRE(std::size(cases) >= 12);
  for (const BadCase& c : cases) check_bad(c);
}

TEST_CASE("npy decode survives every truncation and byte flip", "[npy]") {
  Tensor t = constant({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, float64);
  std::string good = npy::encode(t);
  for (size_t n = 0; n < good.size(); ++n) CHECK_THROWS_AS(npy::decode(good.substr(0, n)), DataLoss);
  // any change to the preamble or header either still parses or throws a kiln::Error
  std::mt19937 rng(7);
  for (size_t i = 0; i < 128; ++i) {
    for (int v : {0, 0x20, 0x7f, 0xff, static_cast<int>(rng() & 0xff)}) {
      std::string b = good;
      b[i] = static_cast<char>(v);
      try {
        Tensor r = npy::decode(b);
        CHECK(r.nbytes() <= b.size());
      } catch (const Error& e) {
        CHECK(std::string(e.what()).rfind("[npy] ", 0) == 0);
      }
    }
  }
}

TEST_CASE("npy refuses tensors it cannot write", "[npy]") {
  CHECK_THROWS_AS(npy::encode(Tensor()), FailedPrecondition);
  Tensor bf = Tensor::empty(Shape{2}, bfloat16);
  CHECK_THROWS_AS(npy::encode(bf), Unimplemented);
  CHECK_THROWS_WITH(npy::encode(bf), Catch::Contains("[npy] cannot write dtype bfloat16"));
}

TEST_CASE("npy files: save and load, with errors naming the path", "[npy]") {
  TempDir dir;
  std::string path = dir.file("x.npy");
  for (DType d : kNpyDTypes) {
    Tensor t = random_values(Shape{4, 5}, d, 99);
    save_npy(path, t);
    check_same(load_npy(path), t);
  }
  // the file holds exactly what encode produces
  Tensor t = constant({{0, 1, 2}, {3, 4, 5}}, int32);
  npy::save(path, t);
  std::ifstream f(path, std::ios::binary);
  std::string on_disk((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  CHECK(on_disk == npy::encode(t));

  // empty and 0-d tensors
  save_npy(path, Tensor::empty(Shape{3, 0, 2}, float32));
  check_same(load_npy(path), Tensor::empty(Shape{3, 0, 2}, float32));
  save_npy(path, scalar<int64_t>(-5));
  CHECK(load_npy(path).item<int64_t>() == -5);

  // a tiny unpadded header, so the first read already holds part of the data
  {
    std::ofstream o(path, std::ios::binary | std::ios::trunc);
    std::string b = v1_file("{'descr':'|u1','fortran_order':False,'shape':(3,)}", "xyz");
    o.write(b.data(), static_cast<std::streamsize>(b.size()));
  }
  CHECK(load_npy(path).to_vector<uint8_t>() == std::vector<uint8_t>{'x', 'y', 'z'});

  CHECK_THROWS_AS(load_npy(dir.file("missing.npy")), NotFound);
  CHECK_THROWS_WITH(load_npy(dir.file("missing.npy")), Catch::StartsWith("[npy] ") && Catch::Contains("missing.npy"));
  CHECK_THROWS_AS(load_npy(dir.path.string()), InvalidArgument);
  CHECK_THROWS_AS(save_npy(dir.file("no/such/dir/x.npy"), t), NotFound);
  CHECK_THROWS_AS(save_npy(dir.path.string(), t), InvalidArgument);

  {
    std::ofstream o(path, std::ios::binary | std::ios::trunc);
    std::string b = npy::encode(t);
    b.pop_back();
    o.write(b.data(), static_cast<std::streamsize>(b.size()));
  }
  CHECK_THROWS_AS(load_npy(path), DataLoss);
  CHECK_THROWS_WITH(load_npy(path), Catch::StartsWith("[npy] file '" + path + "': truncated data"));
}
