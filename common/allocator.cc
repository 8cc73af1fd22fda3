#include "common/allocator.h"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace dermfed {
namespace {

bool InEnvironment(const char* variable, const char* tunable) {
  if (std::getenv(variable) != nullptr) return true;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return tunables != nullptr && std::strstr(tunables, tunable) != nullptr;
}

}  // namespace

void TuneAllocator(int max_arenas) {
#if defined(__GLIBC__)
  if (!InEnvironment("MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold")) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
  }
  if (!InEnvironment("MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold")) {
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
  }
  if (max_arenas > 0 && !InEnvironment("MALLOC_ARENA_MAX", "glibc.malloc.arena_max")) {
    mallopt(M_ARENA_MAX, max_arenas);
  }
#else
  (void)max_arenas;
#endif
}

}  // namespace dermfed
