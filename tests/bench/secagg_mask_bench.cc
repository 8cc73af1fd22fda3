// Mask generation throughput: crypto::AddMask (AES-256-CTR keystream added mod 2^32 in
// place, what every site does once per peer and the coordinator once per unmasked secret)
// on a model-sized vector. Prints MB/s of vector masked; run_secagg_bench.sh sets it
// against `openssl speed -evp aes-256-ctr` on the same machine.
//
// usage: secagg_mask_bench [WORDS] [REPEATS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/crypto/prg.h"

int main(int argc, char** argv) {
  const size_t words = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : (32u << 20);
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  std::vector<uint32_t> v(words, 7);
  std::vector<uint8_t> key(dermfed::crypto::kMaskKeyBytes, 0x42);
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    auto s = dermfed::crypto::AddMask(absl::MakeSpan(v), key, "bench-" + std::to_string(r),
                                      dermfed::crypto::MaskSign::kAdd);
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!s.ok()) {
      std::fprintf(stderr, "AddMask: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    best = std::min(best, t);
  }
  std::printf("{\"name\": \"secagg_mask\", \"words\": %zu, \"seconds\": %.4f, \"mb_per_s\": %.1f}\n",
              words, best, static_cast<double>(words) * 4 / 1e6 / best);
  return v[0] == 7 && v[1] == 7 ? 2 : 0;  // (the mask changed the vector)
}
