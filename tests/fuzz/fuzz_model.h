// The small model the model-transfer fuzz targets and their seeds share: the layout a
// coordinator's global model has (float weights, BatchNorm statistics, an int64
// num_batches_tracked scalar, a float16 tensor, alignment padding), so that seeds built
// from it match what chunk_assembler_fuzzer expects.
//
// Thread-safe: returns a constant.
#ifndef DERMFED_TESTS_FUZZ_FUZZ_MODEL_H_
#define DERMFED_TESTS_FUZZ_FUZZ_MODEL_H_

#include "common/model_state.h"

namespace dermfed::fuzz {

const ModelState& FuzzGlobalModel();

}  // namespace dermfed::fuzz

#endif  // DERMFED_TESTS_FUZZ_FUZZ_MODEL_H_
