// The training-step measurement shared by site_bench (CPU, next to the data pipeline) and
// gpu_train_bench (the model-only CUDA build): DualRefNet training steps (forward, DualRefNet
// loss, backward, AdamW step) on one fixed random batch, in images/s, after warm-up steps.
// The batch is generated on the CPU and moved by Trainer::Step, as in training.
#ifndef DERMFED_TESTS_BENCH_TRAIN_STEP_H_
#define DERMFED_TESTS_BENCH_TRAIN_STEP_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace dermfed::bench {

// PAD-UFES-20's class counts: the loss weights of both implementations (C++ and
// site_bench_pytorch.py) come from them.
inline const std::vector<int64_t> kClassCounts = {730, 845, 52, 244, 192, 235};

struct TrainStepCase {
  std::string backbone;
  int image_size = 128;
  int batch_size = 32;
  int metadata_dim = 100;  // the width of the shipped PAD-UFES-20 schema's encoding
  int steps = 5;
  int warmup_steps = 2;
  bool mixed_precision = true;  // Trainer's bfloat16 autocast; only acts on CUDA
};

// Images per second; sets *parameters to the model's parameter count. On CUDA the clock
// stops after a device synchronize (Trainer::Step reads the loss, which synchronizes too).
StatusOr<double> TrainStepImagesPerSecond(const TrainStepCase& c, c10::Device device,
                                          int64_t* parameters);

}  // namespace dermfed::bench

#endif  // DERMFED_TESTS_BENCH_TRAIN_STEP_H_
