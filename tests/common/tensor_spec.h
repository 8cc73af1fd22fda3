// Test helper: a TensorSpec from its name, dtype and shape (ModelState::Create lays it out).
#ifndef DERMFED_TESTS_COMMON_TENSOR_SPEC_H_
#define DERMFED_TESTS_COMMON_TENSOR_SPEC_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/model_state.h"

namespace dermfed::test_util {

inline TensorSpec Spec(std::string name, DType dtype, std::vector<int64_t> shape) {
  TensorSpec t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  return t;
}

}  // namespace dermfed::test_util

#endif  // DERMFED_TESTS_COMMON_TENSOR_SPEC_H_
