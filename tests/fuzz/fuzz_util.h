// Shared by the fuzz targets of tests/fuzz: a scratch folder for the parsers that read files
// (each process gets its own, removed at exit), and FUZZ_CHECK, which turns a broken
// invariant into a crash libFuzzer records (a Status error is an expected outcome of a
// hostile input; a wrong answer after an OK is a bug).
//
// Thread-compatible: libFuzzer runs one input at a time.
#ifndef DERMFED_TESTS_FUZZ_FUZZ_UTIL_H_
#define DERMFED_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dermfed::fuzz {

// Prints `what` and aborts: libFuzzer saves the input as a crash.
[[noreturn]] inline void Fail(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", file, line, what.c_str());
  std::abort();
}

#define FUZZ_CHECK(cond, what)                                                 \
  do {                                                                         \
    if (!(cond)) ::dermfed::fuzz::Fail(__FILE__, __LINE__, std::string(what)); \
  } while (0)

// A folder of this process's own, under /dev/shm when it exists (no disk I/O per input),
// else $TMPDIR or /tmp; removed, with everything in it, when the process exits normally.
const std::string& ScratchDir();

// ScratchDir()/relative (folders below it are created). Returns the full path.
std::string WriteScratchFile(const std::string& relative, std::string_view bytes);

std::string_view AsView(const uint8_t* data, size_t size);

// With DERMFED_FUZZ_VERBOSE=1 in the environment, prints what the input reached and how it
// ended ("checkpoint: OK", "model state file: DATA_LOSS: ..."), to see what a seed or a
// saved crash does when replayed (`TARGET FILE...`). Silent otherwise.
void Trace(const std::string& what, const Status& status);

}  // namespace dermfed::fuzz

#endif  // DERMFED_TESTS_FUZZ_FUZZ_UTIL_H_
