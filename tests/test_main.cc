// gtest main for tests that use LibTorch: sets the intra-op thread count explicitly
// (Debian's LibTorch starts with one thread), from DERMFED_THREADS or all cores.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <thread>

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("DERMFED_THREADS")) threads = std::atoi(env);
  if (threads > 0) torch::set_num_threads(threads);
  torch::manual_seed(0);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
