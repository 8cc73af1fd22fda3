// Process-wide malloc settings for programs that move model-sized data in chunks.
//
// Every download, upload and checkpoint moves a model as a stream of 2 MiB chunks (protobuf
// strings, gRPC slices, file buffers). glibc serves allocations of that size with mmap until
// its dynamic threshold catches up, and gives memory at the top of the heap back to the
// kernel as soon as more than twice the last such size is free; either way each chunk lands on
// fresh pages, and every 4 KiB page is a page fault. On the virtual machines hospitals and
// clouds run, a page fault costs more than copying the page: a 97 MB model download spent
// over half its time in faults (tests/bench/federation_bench.sh: the ResNet-50 download went
// from ~0.1 to 0.42 GB/s with this and the huge-page buffers of ModelState::Allocate together).
#ifndef DERMFED_COMMON_ALLOCATOR_H_
#define DERMFED_COMMON_ALLOCATOR_H_

namespace dermfed {

// Call first thing in main(), before any thread starts. Fixes glibc's mmap threshold at
// 32 MiB (chunks come from the heap and are reused, model buffers are still mmap'ed) and
// trims the heap only when 256 MiB are free at its top. `max_arenas` > 0 also caps the number
// of malloc arenas (the coordinator's many gRPC threads would otherwise keep one each).
// Settings given in the environment (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_,
// MALLOC_ARENA_MAX, GLIBC_TUNABLES) win. Does nothing where the C library is not glibc.
void TuneAllocator(int max_arenas = 0);

}  // namespace dermfed

#endif  // DERMFED_COMMON_ALLOCATOR_H_
