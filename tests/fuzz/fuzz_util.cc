#include "tests/fuzz/fuzz_util.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <system_error>

namespace dermfed::fuzz {
namespace fs = std::filesystem;
namespace {

void RemoveScratch() {
  std::error_code ignored;
  fs::remove_all(ScratchDir(), ignored);
}

std::string MakeScratch() {
  std::string base = "/tmp";
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') base = tmp;
  std::error_code ec;
  if (fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0) base = "/dev/shm";
  std::string templ = base + "/dermfed_fuzz_XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    std::perror(("dermfed fuzz: mkdtemp " + templ).c_str());
    std::abort();
  }
  return templ;
}

}  // namespace

const std::string& ScratchDir() {
  static const std::string* const dir = [] {
    auto* d = new std::string(MakeScratch());
    std::atexit(RemoveScratch);
    return d;
  }();
  return *dir;
}

std::string WriteScratchFile(const std::string& relative, std::string_view bytes) {
  const fs::path path = fs::path(ScratchDir()) / relative;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "dermfed fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path.string();
}

void Trace(const std::string& what, const Status& status) {
  static const bool verbose = [] {
    const char* v = std::getenv("DERMFED_FUZZ_VERBOSE");
    return v != nullptr && *v != '\0' && *v != '0';
  }();
  if (verbose) std::fprintf(stderr, "%s: %s\n", what.c_str(), status.ToString().c_str());
}

std::string_view AsView(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace dermfed::fuzz
