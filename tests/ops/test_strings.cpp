// String tensors: storage, printing as TensorFlow prints them, the walkthrough's string section,
// every string op, and typed errors for string inputs to numeric ops.
#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "ops/dispatch.h"
#include "ops/ops.h"
#include "ops/strings.h"
#include "ops/variable.h"
#include "runtime/npy.h"
#include "runtime/printing.h"
#include "runtime/string_tensor.h"
#include "tests/support/text.h"

using namespace kiln;
using Strings = std::vector<std::string>;

using kiln::testing::str;

TEST_CASE("string tensors print as TensorFlow prints them", "[strings]") {
  Tensor scalar_string_tensor = constant("Gray wolf");
  CHECK(scalar_string_tensor.dtype() == string);
  CHECK(str(scalar_string_tensor) == "kiln.Tensor(b'Gray wolf', shape=(), dtype=string)");
  Tensor tensor_of_strings = constant({"Gray wolf", "Quick brown fox", "Lazy dog"});
  CHECK(str(tensor_of_strings) ==
        "kiln.Tensor([b'Gray wolf' b'Quick brown fox' b'Lazy dog'], shape=(3,), dtype=string)");
  CHECK(str(constant("🥳👍")) ==
        "kiln.Tensor(b'\\xf0\\x9f\\xa5\\xb3\\xf0\\x9f\\x91\\x8d', shape=(), dtype=string)");
  // Python's bytes repr: quotes, backslashes and control bytes
  CHECK(bytes_repr("it's") == "b\"it's\"");
  CHECK(bytes_repr("say \"it's\"") == "b'say \"it\\'s\"'");
  CHECK(bytes_repr(std::string("a\\b\t\n\r\x01\x7f", 8)) == "b'a\\\\b\\t\\n\\r\\x01\\x7f'");
  CHECK(bytes_repr("") == "b''");
  Tensor m = constant({{"a", "bb"}, {"", "d"}});
  CHECK(str(m) == "kiln.Tensor(\n[[b'a' b'bb']\n [b'' b'd']], shape=(2, 2), dtype=string)");
  CHECK(numpy_repr(m) == "array([[b'a', b'bb'],\n       [b'', b'd']], dtype=object)");
  CHECK(str(constant(NestedList{}, string)) == "kiln.Tensor([], shape=(0,), dtype=string)");
}

TEST_CASE("string tensors hold their bytes", "[strings]") {
  Tensor t = constant({"Gray wolf", "", std::string("nul\0byte", 8)});
  CHECK(t.shape() == Shape{3});
  CHECK(t.to_vector<std::string>() == Strings{"Gray wolf", "", std::string("nul\0byte", 8)});
  CHECK(constant("x").item<std::string>() == "x");
  CHECK(string_at(t, 0) == "Gray wolf");
  CHECK_THROWS_AS(string_at(t, 3), OutOfRange);
  CHECK_THROWS_AS(t.to_vector<float>(), InvalidArgument);
  CHECK_THROWS_AS(constant({1, 2}).to_vector<std::string>(), InvalidArgument);
  std::vector<std::string> v{"a", "b", "c", "d"};
  Tensor made = make_string_tensor({2, 2}, v);
  CHECK(made.to_vector<std::string>() == v);
  CHECK_THROWS_AS(make_string_tensor({3}, v), InvalidArgument);
  CHECK_THROWS_AS(Tensor::empty({2}, string), InvalidArgument);
  CHECK_THROWS_WITH(constant({NestedList("a"), NestedList(1)}), Catch::Contains("mixes strings"));
  CHECK_THROWS_WITH(constant({"a"}, float32), Catch::Contains("to_number"));
  CHECK_THROWS_AS(constant({1}, string), InvalidArgument);
}

TEST_CASE("the walkthrough's string section", "[strings][walkthrough]") {
  Tensor scalar_string_tensor = constant("Gray wolf");
  Tensor tensor_of_strings = constant({"Gray wolf", "Quick brown fox", "Lazy dog"});
  CHECK(str(strings::split(scalar_string_tensor, " ")) == "kiln.Tensor([b'Gray' b'wolf'], shape=(2,), dtype=string)");
  CHECK(str(strings::split(tensor_of_strings)) ==
        "<kiln.RaggedTensor [[b'Gray', b'wolf'], [b'Quick', b'brown', b'fox'], [b'Lazy', b'dog']]>");
  Tensor text = constant("1 10 100");
  CHECK(str(strings::to_number(strings::split(text, " "))) ==
        "kiln.Tensor([  1.  10. 100.], shape=(3,), dtype=float32)");
  Tensor byte_strings = strings::bytes_split(constant("Duck"));
  Tensor byte_ints = io::decode_raw(constant("Duck"), uint8);
  CHECK(str(byte_strings) == "kiln.Tensor([b'D' b'u' b'c' b'k'], shape=(4,), dtype=string)");
  CHECK(str(byte_ints) == "kiln.Tensor([ 68 117  99 107], shape=(4,), dtype=uint8)");
  Tensor unicode_bytes = constant("アヒル 🦆");
  Tensor unicode_char_bytes = strings::unicode_split(unicode_bytes, "UTF-8");
  Tensor unicode_values = strings::unicode_decode(unicode_bytes, "UTF-8");
  CHECK(str(unicode_bytes) ==
        "kiln.Tensor(b'\\xe3\\x82\\xa2\\xe3\\x83\\x92\\xe3\\x83\\xab \\xf0\\x9f\\xa6\\x86', shape=(), dtype=string)");
  CHECK(str(unicode_char_bytes) ==
        "kiln.Tensor([b'\\xe3\\x82\\xa2' b'\\xe3\\x83\\x92' b'\\xe3\\x83\\xab' b' ' b'\\xf0\\x9f\\xa6\\x86'], "
        "shape=(5,), dtype=string)");
  CHECK(str(unicode_values) == "kiln.Tensor([ 12450  12498  12523     32 129414], shape=(5,), dtype=int32)");
  CHECK(strings::unicode_encode(unicode_values).item<std::string>() == "アヒル 🦆");
}

TEST_CASE("strings::split follows Python's str.split", "[strings]") {
  auto parts = [](const char* s, std::optional<std::string> sep = std::nullopt, int64_t maxsplit = -1) {
    return Tensor(strings::split(constant(s), sep, maxsplit)).to_vector<std::string>();
  };
  CHECK(parts("  a \t b\n c  ") == Strings{"a", "b", "c"});
  CHECK(parts("") == Strings{});
  CHECK(parts("   ") == Strings{});
  CHECK(parts("a,,b", ",") == Strings{"a", "", "b"});
  CHECK(parts("", ",") == Strings{""});
  CHECK(parts("a<>b<>c", "<>") == Strings{"a", "b", "c"});
  CHECK(parts("a b c d", std::nullopt, 2) == Strings{"a", "b", "c d"});
  CHECK(parts("a,b,c", ",", 1) == Strings{"a", "b,c"});
  CHECK(parts("a,b", ",", 0) == Strings{"a,b"});
  RaggedTensor r = strings::split(constant({"a b", "", "c"}));
  CHECK(r.row_splits().to_vector<int64_t>() == std::vector<int64_t>{0, 2, 2, 3});
  CHECK_THROWS_WITH(strings::split(constant({{"a"}})), Catch::Contains("shape (1, 1)"));
  CHECK_THROWS_WITH(strings::split(constant({1})), Catch::Contains("string tensor"));
  // a ragged result is not a dense tensor, and the other way round
  CHECK_THROWS_AS(Tensor(strings::split(constant({"a"}))), InvalidArgument);
  CHECK_THROWS_AS(RaggedTensor(strings::split(constant("a"))), InvalidArgument);
}

TEST_CASE("strings::to_number parses numbers and names text that is not one", "[strings]") {
  CHECK(strings::to_number(constant({"1.5", " -2 ", "+3e2", "inf"})).to_vector<float>() ==
        std::vector<float>{1.5f, -2.f, 300.f, INFINITY});
  CHECK(strings::to_number(constant({"7", "-9"}), int32).to_vector<int32_t>() == std::vector<int32_t>{7, -9});
  CHECK(strings::to_number(constant({"9007199254740993"}), int64).to_vector<int64_t>() ==
        std::vector<int64_t>{9007199254740993});
  CHECK(strings::to_number(constant({"0.1"}), float64).to_vector<double>() == std::vector<double>{0.1});
  CHECK(strings::to_number(constant({"1e50", "-1e50", "1e-50"})).to_vector<float>() ==
        std::vector<float>{INFINITY, -INFINITY, 0.f});
  CHECK_THROWS_MATCHES(strings::to_number(constant({"1", "abc"})), InvalidArgument,
                       Catch::Matchers::Message("[string_to_number] cannot convert b'abc' at [1] to float32: it is "
                                                "not a number"));
  CHECK_THROWS_WITH(strings::to_number(constant("3000000000"), int32), Catch::Contains("b'3000000000'"));
  CHECK_THROWS_WITH(strings::to_number(constant("1.5"), int32), Catch::Contains("b'1.5'"));
  CHECK_THROWS_WITH(strings::to_number(constant(""), float32), Catch::Contains("b''"));
  CHECK_THROWS_WITH(strings::to_number(constant("1"), uint8), Catch::Contains("out_type"));
}

TEST_CASE("length, join, substr, lower and upper", "[strings]") {
  Tensor t = constant({"Hello", "アヒル", ""});
  CHECK(strings::length(t).to_vector<int32_t>() == std::vector<int32_t>{5, 9, 0});
  CHECK(strings::length(t, "UTF8_CHAR").to_vector<int32_t>() == std::vector<int32_t>{5, 3, 0});
  CHECK_THROWS_WITH(strings::length(t, "WORD"), Catch::Contains("'WORD'"));
  CHECK(strings::join({constant({"a", "b"}), constant("x"), constant({"1", "2"})}, "-").to_vector<std::string>() ==
        Strings{"a-x-1", "b-x-2"});
  CHECK(strings::join({constant({{"a"}, {"b"}}), constant({"1", "2"})}).shape() == Shape{2, 2});
  CHECK_THROWS_WITH(strings::join({constant({"a", "b"}), constant({"1", "2", "3"})}), Catch::Contains("[2]"));
  CHECK_THROWS_AS(strings::join({}), InvalidArgument);
  CHECK(strings::substr(constant({"Hello", "World"}), 1, 3).to_vector<std::string>() == Strings{"ell", "orl"});
  CHECK(strings::substr(constant("Hello"), -3, 10).item<std::string>() == "llo");
  CHECK(strings::substr(constant("アヒル"), 1, 1, "UTF8_CHAR").item<std::string>() == "ヒ");
  CHECK(strings::substr(constant("abc"), 3, 1).item<std::string>() == "");
  CHECK_THROWS_WITH(strings::substr(constant({"abc", "ab"}), 3, 1), Catch::Contains("b'ab' at [1]"));
  CHECK_THROWS_WITH(strings::substr(constant("abc"), 0, -1), Catch::Contains("-1"));
  CHECK(strings::lower(constant("MiXeD 1!")).item<std::string>() == "mixed 1!");
  CHECK(strings::upper(constant({"MiXeD", "é"})).to_vector<std::string>() == Strings{"MIXED", "é"});
}

TEST_CASE("decode_raw reinterprets bytes", "[strings]") {
  Tensor le = io::decode_raw(constant({std::string("\x01\x00\x02\x00", 4), std::string("\xff\xff\x00\x01", 4)}), int16);
  CHECK(le.shape() == Shape{2, 2});
  CHECK(le.to_vector<int16_t>() == std::vector<int16_t>{1, 2, -1, 256});
  Tensor be = io::decode_raw(constant(std::string("\x01\x00", 2)), int16, false);
  CHECK(be.to_vector<int16_t>() == std::vector<int16_t>{256});
  CHECK(io::decode_raw(constant(std::string("\x00\x02", 2)), bool_).to_vector<bool>() ==
        std::vector<bool>{false, true});
  CHECK(io::decode_raw(constant(NestedList{}, string), float32).shape() == Shape{0, 0});
  CHECK_THROWS_WITH(io::decode_raw(constant("abc"), int32), Catch::Contains("not a multiple of 4"));
  CHECK_THROWS_WITH(io::decode_raw(constant({"ab", "abc"}), uint8), Catch::Contains("element at [1] has 3 bytes"));
  CHECK_THROWS_WITH(io::decode_raw(constant("ab"), string), Catch::Contains("out_type"));
}

TEST_CASE("UTF-8: invalid input is replaced, ignored or rejected", "[strings]") {
  const std::string bad = std::string("a\xff") + "b\xe3\x82" + "c\xed\xa0\x80";  // bad byte, cut sequence, surrogate
  Tensor t = constant(bad);
  CHECK(Tensor(strings::unicode_decode(t)).to_vector<int32_t>() ==
        std::vector<int32_t>{'a', 0xFFFD, 'b', 0xFFFD, 'c', 0xFFFD, 0xFFFD, 0xFFFD});
  CHECK(Tensor(strings::unicode_decode(t, "UTF-8", "ignore")).to_vector<int32_t>() ==
        std::vector<int32_t>{'a', 'b', 'c'});
  CHECK(Tensor(strings::unicode_decode(t, "UTF-8", "replace", '?')).to_vector<int32_t>() ==
        std::vector<int32_t>{'a', '?', 'b', '?', 'c', '?', '?', '?'});
  CHECK_THROWS_MATCHES(strings::unicode_decode(t, "UTF-8", "strict"), InvalidArgument,
                       Catch::Matchers::Message("[unicode_decode] invalid UTF-8 at byte 1 of b'a\\xffb\\xe3\\x82c\\xed"
                                                "\\xa0\\x80' (errors='strict'; use errors='replace' or 'ignore' to "
                                                "accept it)"));
  CHECK_THROWS_WITH(strings::unicode_split(constant({"ok", "\xc0\xaf"}), "UTF-8", "strict"),
                    Catch::Contains("byte 0 of b'\\xc0\\xaf' at [1]"));
  CHECK(Tensor(strings::unicode_split(constant("a\xff"))).to_vector<std::string>() == Strings{"a", "\xef\xbf\xbd"});
  CHECK(strings::length(constant("a\xff\xfe"), "UTF8_CHAR").item<int32_t>() == 3);
  CHECK_THROWS_WITH(strings::unicode_decode(t, "UTF-16"), Catch::Contains("'UTF-16'"));
  CHECK_THROWS_WITH(strings::unicode_decode(t, "UTF-8", "loud"), Catch::Contains("'loud'"));
  RaggedTensor rows = strings::unicode_decode(constant({"hé", "", "🦆"}));
  CHECK(rows.to_string() == "<kiln.RaggedTensor [[104, 233], [], [129414]]>");
  CHECK(strings::unicode_encode(rows).to_vector<std::string>() == Strings{"hé", "", "🦆"});
  CHECK(strings::unicode_encode(constant({{104, 105}, {0x110000, -1}})).to_vector<std::string>() ==
        Strings{"hi", "\xef\xbf\xbd\xef\xbf\xbd"});
  CHECK(strings::unicode_encode(constant({0xD800, 65}), "UTF-8", "ignore").item<std::string>() == "A");
  CHECK_THROWS_WITH(strings::unicode_encode(constant({65, 0xD800}), "UTF-8", "strict"),
                    Catch::Contains("code point 55296"));
  CHECK_THROWS_WITH(strings::unicode_encode(constant({65.f})), Catch::Contains("int32"));
}

TEST_CASE("numeric ops reject string tensors with a typed error", "[strings]") {
  Tensor s = constant({"1", "2"});
  CHECK_THROWS_MATCHES(cast(s, float32), InvalidArgument,
                       Catch::Matchers::Message("[cast] cannot cast a string tensor to a number; parse the text with "
                                                "kiln::strings::to_number"));
  CHECK_THROWS_WITH(add(s, s), Catch::StartsWith("[add] input 0 has dtype string"));
  CHECK_THROWS_WITH(reduce_sum(s), Catch::StartsWith("[reduce_sum]"));
  CHECK_THROWS_WITH(matmul(s, s), Catch::StartsWith("[matmul]"));
  CHECK_THROWS_WITH(pad(s, {{1, 1}}), Catch::StartsWith("[pad]"));
  CHECK_THROWS_WITH(fill({2}, constant("x")), Catch::StartsWith("[fill]"));
  CHECK_THROWS_WITH(unsorted_segment_sum(s, constant({0, 0}), 1), Catch::StartsWith("[unsorted_segment_sum]"));
  CHECK_THROWS_AS(zeros({2}, string), InvalidArgument);
  CHECK_THROWS_WITH(eye(2, 2, string), Catch::StartsWith("[eye]"));
  CHECK_THROWS_WITH(Variable(s), Catch::Contains("string"));
  CHECK_THROWS_WITH(npy::save("/tmp/kiln_never_written.npy", s), Catch::Contains("string"));
  for (const ops::OpDef& def : ops::all_ops()) {
    if (def.has(ops::kStrings) || def.has(ops::kStringsByIndex) || def.num_inputs == 0) continue;
    std::vector<Tensor> in(size_t(def.num_inputs < 0 ? 2 : def.num_inputs), s);
    INFO("op " << def.name);
    CHECK_THROWS_AS(ops::apply(def.id, {}, in), InvalidArgument);
  }
}

TEST_CASE("data movement ops carry strings", "[strings]") {
  Tensor m = constant({{"a", "b", "c"}, {"d", "e", "f"}});
  CHECK(reshape(m, {3, 2}).to_vector<std::string>() == Strings{"a", "b", "c", "d", "e", "f"});
  CHECK(transpose(m).to_vector<std::string>() == Strings{"a", "d", "b", "e", "c", "f"});
  CHECK(concat({m, m}, 1).shape() == Shape{2, 6});
  CHECK(concat({m, constant({{"x", "y", "z"}})}, 0).to_vector<std::string>().back() == "z");
  CHECK(gather(m, constant({2, 0}), 1).to_vector<std::string>() == Strings{"c", "a", "f", "d"});
  CHECK(m.index({1, Slice(None, None, -1)}).to_vector<std::string>() == Strings{"f", "e", "d"});
  CHECK(reverse(m, {0}).to_vector<std::string>()[0] == "d");
  CHECK(tile(constant({"a"}), {3}).to_vector<std::string>() == Strings{"a", "a", "a"});
  CHECK(broadcast_to(constant("q"), {2}).to_vector<std::string>() == Strings{"q", "q"});
  CHECK(expand_dims(m, 0).shape() == Shape{1, 2, 3});
  CHECK(squeeze(expand_dims(m, 0)).to_vector<std::string>() == m.to_vector<std::string>());
  CHECK(stack({constant("a"), constant("b")}).to_vector<std::string>() == Strings{"a", "b"});
  CHECK(split(m, 3, 1)[2].to_vector<std::string>() == Strings{"c", "f"});
  CHECK(where(constant({true, false}), constant({"y", "y"}), constant({"n", "n"})).to_vector<std::string>() ==
        Strings{"y", "n"});
  CHECK(shape_of(m).to_vector<int32_t>() == std::vector<int32_t>{2, 3});
  CHECK(stop_gradient(m).to_vector<std::string>() == m.to_vector<std::string>());
  CHECK_THROWS_WITH(concat({m, constant({{1, 2, 3}})}, 0), Catch::StartsWith("[concat]"));
  CHECK_THROWS_WITH(gather(m, constant({5})), Catch::StartsWith("[gather]"));
}
