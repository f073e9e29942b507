// Checkpoints and safetensors: the walkthrough's write/restore/list, restore-on-create, optimizer
// state, and fault tests (truncation, flipped bytes, a missing file, wrong shapes, a crash while
// writing), each a typed error.
#include <catch2/catch.hpp>

#include "tests/support/temp_dir.h"

#include <kiln/kiln.h>
#include <atomic>
#include <filesystem>
#include <fstream>

#include "runtime/file_io.h"

using namespace kiln;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

struct TempDir : testing::TempDir {
  TempDir() : testing::TempDir("kiln_ckpt") {}
};

std::string read_bytes(const std::string& p) { return io::read_file(p, "test"); }
void write_bytes(const std::string& p, const std::string& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(b.data(), std::streamsize(b.size()));
}

nn::Sequential make_model() {
  nn::clear_session();
  random::set_seed(7);  // reproducible weights
  auto m = nn::Sequential({nn::Dense(3, "relu"), nn::Dense(2)});
  m(ones({1, 4}));
  return m;
}

std::vector<float> flat(const Tensor& t) { return t.to_vector<float>(); }

}  // namespace

TEST_CASE("safetensors round-trips every dtype, empty and scalar tensors, with metadata", "[safetensors]") {
  std::vector<std::pair<std::string, Tensor>> ts = {
      {"f32", constant({{1.5f, -2.0f}, {3.0f, 4.0f}})},
      {"i64", cast(constant({1, -2, 3}), int64)},
      {"b", cast(constant({1, 0}), bool_)},
      {"scalar", scalar<double>(2.5)},
      {"empty", zeros({0, 3})},
      {"u8", cast(constant({1, 2, 255}), uint8)},
      {"h", cast(constant({1.0f, 0.5f}), float16)},
  };
  std::string bytes = safetensors::encode(ts, {{"format", "pt"}});
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(bytes[8] == '{');
  safetensors::Contents c = safetensors::decode(bytes);
  CHECK(c.metadata.at("format") == "pt");
  REQUIRE(c.tensors.size() == ts.size());
  for (auto& [name, t] : ts) {
    const Tensor* r = c.find(name);
    REQUIRE(r);
    CHECK(r->dtype() == t.dtype());
    CHECK(r->shape() == t.shape());
    CHECK(std::memcmp(r->raw_data(), t.raw_data(), t.nbytes()) == 0);
  }
  CHECK_THROWS_AS(safetensors::encode({{"c", cast(ones({2}), complex64)}}), Unimplemented);
  CHECK_THROWS_AS(safetensors::encode({{"a", ones({1})}, {"a", ones({1})}}), InvalidArgument);
  CHECK_THROWS_AS(safetensors::encode({{"__metadata__", ones({1})}}), InvalidArgument);
}

TEST_CASE("safetensors reads a file as Python's safetensors writes it", "[safetensors]") {
  // safetensors.numpy.save_file({"a": np.arange(3, dtype=np.float32)}) (hand-made header)
  std::string header = R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += header;
  float data[3] = {0, 1, 2};
  bytes.append(reinterpret_cast<const char*>(data), sizeof(data));
  auto c = safetensors::decode(bytes);
  CHECK(flat(*c.find("a")) == std::vector<float>{0, 1, 2});
}

TEST_CASE("hostile safetensors headers raise DataLoss", "[safetensors][errors]") {
  auto file = [](std::string header, size_t data_bytes, uint64_t n_override = 0) {
    std::string b(8, '\0');
    uint64_t n = n_override ? n_override : header.size();
    std::memcpy(b.data(), &n, 8);
    b += header;
    b.append(data_bytes, '\0');
    return b;
  };
  CHECK_THROWS_AS(safetensors::decode(""), DataLoss);
  CHECK_THROWS_AS(safetensors::decode(file("{}", 0, uint64_t(1) << 62)), DataLoss);
  CHECK_THROWS_AS(safetensors::decode(file("{}", 0, 200'000'000)), DataLoss);
  CHECK_THROWS_AS(safetensors::decode(file("[1]", 0)), DataLoss);
  CHECK_THROWS_AS(safetensors::decode(file("{\"a\":", 0)), DataLoss);
  CHECK_THROWS_AS(safetensors::decode(file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)), DataLoss);
  CHECK_THROWS_AS(safetensors::decode(file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4)), DataLoss);
  CHECK_THROWS_AS(safetensors::decode(file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8)), DataLoss);
  CHECK_THROWS_AS(safetensors::decode(file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)), DataLoss);
  CHECK_THROWS_AS(
      safetensors::decode(file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,8],"data_offsets":[0,4]}})", 4)),
      DataLoss);
  CHECK_THROWS_AS(safetensors::decode(file(R"({"a":{"dtype":"X9","shape":[1],"data_offsets":[0,4]}})", 4)), DataLoss);
  CHECK_THROWS_AS(safetensors::decode(file(R"({"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", 1)),
                  Unimplemented);
  CHECK_THROWS_AS(safetensors::decode(file(R"({"__metadata__":{"a":1}})", 0)), DataLoss);
  CHECK_THROWS_WITH(safetensors::decode(file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                             4)),
                    Contains("[safetensors]") && Contains("overlap"));
}

TEST_CASE("the walkthrough's checkpoint: write, list, restore", "[nn][checkpoint]") {
  TempDir dir;
  auto model = make_model();
  auto opt = std::make_shared<nn::optim::Adam>(0.01);
  opt->build(model->trainable_variables());
  nn::Checkpoint ckpt({{"model", model}, {"optimizer", opt}});
  std::string path = dir.file("my_checkpoint");
  ckpt.write(path);

  std::vector<std::string> keys;
  for (auto& e : nn::list_variables(path)) keys.push_back(e.key);
  CHECK(keys == std::vector<std::string>{
                    "model/dense/bias/.ATTRIBUTES/VARIABLE_VALUE",
                    "model/dense/bias/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
                    "model/dense/bias/.OPTIMIZER_SLOT/optimizer/v/.ATTRIBUTES/VARIABLE_VALUE",
                    "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE",
                    "model/dense/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
                    "model/dense/kernel/.OPTIMIZER_SLOT/optimizer/v/.ATTRIBUTES/VARIABLE_VALUE",
                    "model/dense_1/bias/.ATTRIBUTES/VARIABLE_VALUE",
                    "model/dense_1/bias/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
                    "model/dense_1/bias/.OPTIMIZER_SLOT/optimizer/v/.ATTRIBUTES/VARIABLE_VALUE",
                    "model/dense_1/kernel/.ATTRIBUTES/VARIABLE_VALUE",
                    "model/dense_1/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
                    "model/dense_1/kernel/.OPTIMIZER_SLOT/optimizer/v/.ATTRIBUTES/VARIABLE_VALUE",
                    "optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE",
                    "optimizer/learning_rate/.ATTRIBUTES/VARIABLE_VALUE",
                });
  auto entries = nn::list_variables(path);
  CHECK(entries[3].shape == Shape{4, 3});
  CHECK(entries[3].dtype == float32);

  Tensor before = model(ones({2, 4}));
  auto kernel = model->find_variable("dense/kernel");
  REQUIRE(kernel.defined());
  // ones make every hidden ReLU unit live, so the output must change (zeros could leave it
  // unchanged when the draw had left every unit dead)
  kernel.assign(ones({4, 3}));
  CHECK(flat(model(ones({2, 4}))) != flat(before));
  nn::CheckpointStatus st = ckpt.read(path);
  CHECK(st.restored == 14);
  CHECK(st.deferred == 0);
  st.assert_consumed();
  CHECK(flat(model(ones({2, 4}))) == flat(before));
  CHECK(flat(nn::load_variable(path, "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE")) == flat(kernel.read_value()));
  CHECK_THROWS_AS(nn::load_variable(path, "nope"), NotFound);
}

TEST_CASE("restoring into a model that is not built applies the values when it builds", "[nn][checkpoint]") {
  TempDir dir;
  std::string path = dir.file("ckpt");
  auto trained = make_model();
  auto opt = std::make_shared<nn::optim::SGD>(0.1, nn::optim::SGDOptions{.momentum = 0.9});
  trained->compile({.optimizer = opt, .loss = "mse"});
  trained->fit(ones({8, 4}), zeros({8, 2}), {.epochs = 2, .batch_size = 4, .verbose = 0, .seed = 1});
  nn::Checkpoint({{"model", trained}, {"optimizer", opt}}).write(path);
  Tensor expected = trained(ones({2, 4}));

  nn::clear_session();
  auto fresh = nn::Sequential({nn::Dense(3, "relu"), nn::Dense(2)});  // same layer names, not built
  auto opt2 = std::make_shared<nn::optim::SGD>(0.1, nn::optim::SGDOptions{.momentum = 0.9});
  nn::CheckpointStatus st = nn::Checkpoint({{"model", fresh}, {"optimizer", opt2}}).read(path);
  CHECK(st.deferred == 8);  // 4 weights and their 4 momentum slots
  CHECK(st.restored == 2);  // iterations and the learning rate
  CHECK(fresh->pending_restores() == 8);
  CHECK(flat(fresh(ones({2, 4}))) == flat(expected));
  // the weights exist now; their slot values wait in the optimizer for its first update
  CHECK(fresh->pending_restores() == 0);
  CHECK(opt2->slot_variables().empty());
  CHECK(opt2->iterations().item<int64_t>() == 4);
  opt2->build(fresh->trainable_variables());
  CHECK(opt2->slot_variables().size() == 4);
  for (auto& s : opt2->slot_variables()) {
    bool found = false;
    for (auto& t : opt->slot_variables())
      if (t.owner->name() == s.owner->name()) {
        CHECK(flat(t.variable.read_value()) == flat(s.variable.read_value()));
        found = true;
      }
    CHECK(found);
  }
}

TEST_CASE("a wrong shape on restore is InvalidArgument and changes nothing", "[nn][checkpoint][errors]") {
  TempDir dir;
  std::string path = dir.file("ckpt");
  auto model = make_model();
  nn::Checkpoint({{"model", model}}).write(path);
  nn::clear_session();
  auto other = nn::Sequential({nn::Dense(5, "relu"), nn::Dense(2)});
  other(ones({1, 4}));
  std::vector<float> before = flat(other->find_variable("dense_1/bias").read_value());
  CHECK_THROWS_WITH(nn::Checkpoint({{"model", other}}).read(path),
                    Contains("[checkpoint]") && Contains("model/dense/bias") && Contains("(5,)") && Contains("(3,)"));
  CHECK_THROWS_AS(nn::Checkpoint({{"model", other}}).read(path), InvalidArgument);
  CHECK(flat(other->find_variable("dense_1/bias").read_value()) == before);  // nothing assigned

  // deferred: the mismatch surfaces when the layer builds
  nn::clear_session();
  auto unbuilt = nn::Sequential({nn::Dense(5, "relu"), nn::Dense(2)});
  nn::Checkpoint({{"model", unbuilt}}).read(path);
  CHECK_THROWS_AS(unbuilt(ones({1, 4})), InvalidArgument);
}

TEST_CASE("checkpoint read errors: missing file, version, unused keys", "[nn][checkpoint][errors]") {
  TempDir dir;
  auto model = make_model();
  nn::Checkpoint ckpt({{"model", model}});
  CHECK_THROWS_AS(ckpt.read(dir.file("missing")), NotFound);
  CHECK_THROWS_AS(nn::list_variables(dir.file("missing")), NotFound);
  CHECK_THROWS_AS(ckpt.read(dir.path.string()), InvalidArgument);
  safetensors::save(dir.file("v2"), {{"x", ones({1})}}, {{"kiln.checkpoint.version", "2"}});
  CHECK_THROWS_AS(ckpt.read(dir.file("v2")), Unimplemented);
  safetensors::save(dir.file("other"), {{"x", ones({1})}});
  nn::CheckpointStatus st = ckpt.read(dir.file("other"));
  CHECK(st.unused_keys == std::vector<std::string>{"x"});
  CHECK(st.missing_keys.size() == 4);
  CHECK_THROWS_AS(st.assert_consumed(), FailedPrecondition);
  CHECK_THROWS_AS(nn::Checkpoint({{"a/b", model}}), InvalidArgument);
  CHECK_THROWS_AS(nn::Checkpoint({{"a", model}, {"a", model}}), InvalidArgument);
}

TEST_CASE("a plain variable is tracked, not copied: later assignments are written and reads restore it",
          "[nn][checkpoint]") {
  // CheckpointObject once held a Variable, and copying a Variable copies its value into a new
  // variable: the checkpoint wrote the value at construction and restored into its own copy
  TempDir dir;
  std::string path = dir.file("ckpt");
  auto step = Variable(scalar<int64_t>(7), "step");
  nn::Checkpoint ckpt({{"step", step}});
  step.assign(scalar<int64_t>(8));
  ckpt.write(path);
  CHECK(nn::load_variable(path, "step/.ATTRIBUTES/VARIABLE_VALUE").item<int64_t>() == 8);
  step.assign(scalar<int64_t>(0));
  ckpt.read(path).assert_consumed();
  CHECK(step.item<int64_t>() == 8);
}

TEST_CASE("a truncated checkpoint raises DataLoss at every length", "[nn][checkpoint][errors]") {
  TempDir dir;
  std::string path = dir.file("ckpt"), cut = dir.file("cut");
  auto model = make_model();
  auto step = Variable(scalar<int64_t>(7), "step");
  nn::Checkpoint ckpt({{"model", model}, {"step", step}});
  ckpt.write(path);
  std::string bytes = read_bytes(path);
  for (size_t len = 0; len < bytes.size(); len += (len < 600 ? 1 : 7)) {
    write_bytes(cut, bytes.substr(0, len));
    INFO("length " << len << " of " << bytes.size());
    CHECK_THROWS_AS(ckpt.read(cut), DataLoss);
    CHECK_THROWS_AS(nn::list_variables(cut), DataLoss);
  }
}

TEST_CASE("flipped bytes in a checkpoint raise typed errors or restore cleanly, never crash",
          "[nn][checkpoint][errors]") {
  TempDir dir;
  std::string path = dir.file("ckpt"), bad = dir.file("bad");
  auto model = make_model();
  nn::Checkpoint ckpt({{"model", model}});
  ckpt.write(path);
  std::string bytes = read_bytes(path);
  uint64_t header_end = 0;
  std::memcpy(&header_end, bytes.data(), 8);
  header_end += 8;
  size_t data_loss = 0;
  // every header byte; a sample of the data bytes (a flip there changes a value, not the structure)
  for (size_t i = 0; i < bytes.size(); i += i < header_end ? 1 : 5) {
    for (unsigned char mask : {0x01, 0xff}) {
      std::string b = bytes;
      b[i] = char(static_cast<unsigned char>(b[i]) ^ mask);
      write_bytes(bad, b);
      INFO("byte " << i << " mask " << int(mask));
      try {
        ckpt.read(bad);  // a flip that keeps the file well formed (a data byte, a digit of a key)
      } catch (const DataLoss&) {
        ++data_loss;
        CHECK(i < header_end);
      } catch (const InvalidArgument&) {
        CHECK(i < header_end);  // a shape that no longer matches its variable
      } catch (const Unimplemented&) {
        CHECK(i < header_end);  // a dtype code turned into another real one
      }
    }
  }
  CHECK(data_loss > 100);
}

TEST_CASE("a crash while writing keeps the previous checkpoint loadable", "[nn][checkpoint][errors]") {
  TempDir dir;
  std::string path = dir.file("ckpt");
  auto model = make_model();
  nn::Checkpoint ckpt({{"model", model}});
  ckpt.write(path);
  std::string old_bytes = read_bytes(path);
  std::vector<float> old_kernel = flat(model->find_variable("dense/kernel").read_value());
  model->find_variable("dense/kernel").assign(zeros({4, 3}));
  for (uint64_t at : {uint64_t(0), uint64_t(5), uint64_t(100), uint64_t(old_bytes.size() - 1)}) {
    io::testing::crash_writes_after(at);
    CHECK_THROWS_WITH(ckpt.write(path), Contains("simulated crash"));
    io::testing::crash_writes_after(std::nullopt);
    CHECK(read_bytes(path) == old_bytes);
  }
  ckpt.read(path);
  CHECK(flat(model->find_variable("dense/kernel").read_value()) == old_kernel);
  // after the "crashes", a write goes through (left-over temporary files do not get in the way)
  model->find_variable("dense/kernel").assign(zeros({4, 3}));
  ckpt.write(path);
  CHECK(read_bytes(path) != old_bytes);
}
