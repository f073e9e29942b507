// A main() for the fuzz targets in builds without libFuzzer (g++, the test trees): runs
// LLVMFuzzerTestOneInput on every file under the directories and files given, so the seed
// corpora and the inputs that once found bugs (fuzz/regressions/) are replayed by ctest.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

namespace {

void run_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::printf("replay %s (%zu bytes)\n", p.string().c_str(), bytes.size());
  std::fflush(stdout);
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  size_t count = 0;
  for (int i = 1; i < argc; ++i) {
    fs::path arg(argv[i]);
    if (!fs::exists(arg)) continue;  // a target may have no regressions yet
    if (fs::is_directory(arg)) {
      std::vector<fs::path> files;
      for (auto& e : fs::recursive_directory_iterator(arg))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (auto& p : files) run_file(p), ++count;
    } else {
      run_file(arg), ++count;
    }
  }
  std::printf("replayed %zu inputs\n", count);
  return 0;
}
