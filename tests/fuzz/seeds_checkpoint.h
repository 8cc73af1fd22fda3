// The seeds of the torch.save readers (pickle_fuzzer, checkpoint_fuzzer), for
// dermfed_fuzz_seeds: pickles built opcode by opcode as Python's pickler writes a state
// dict, the legacy file layout around them, and the zip layout written with LibTorch's own
// PyTorchStreamWriter. (Python's torch is not needed at build time.)
#ifndef DERMFED_TESTS_FUZZ_SEEDS_CHECKPOINT_H_
#define DERMFED_TESTS_FUZZ_SEEDS_CHECKPOINT_H_

#include <filesystem>

namespace dermfed::fuzz {

// Writes OUT/pickle_fuzzer/ and OUT/checkpoint_fuzzer/.
void CheckpointSeeds(const std::filesystem::path& out);

}  // namespace dermfed::fuzz

#endif  // DERMFED_TESTS_FUZZ_SEEDS_CHECKPOINT_H_
