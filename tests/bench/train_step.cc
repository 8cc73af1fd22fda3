#include "tests/bench/train_step.h"

#include <chrono>

#include "client/trainer.h"
#include "common/model/dualrefnet.h"

namespace dermfed::bench {

StatusOr<double> TrainStepImagesPerSecond(const TrainStepCase& c, c10::Device device,
                                          int64_t* parameters) {
  model::DualRefNetOptions mo;
  mo.backbone = c.backbone;
  mo.num_classes = static_cast<int64_t>(kClassCounts.size());
  mo.metadata_dim = c.metadata_dim;
  DF_ASSIGN_OR_RETURN(model::DualRefNet net, model::MakeDualRefNet(mo));
  *parameters = 0;
  for (const torch::Tensor& p : net->parameters()) *parameters += p.numel();
  client::TrainerConfig tc;
  tc.batch_size = c.batch_size;
  tc.optimizer = "adamw";
  tc.mixed_precision = c.mixed_precision;
  DF_ASSIGN_OR_RETURN(auto trainer, client::Trainer::Create(net, kClassCounts, tc, device));
  torch::manual_seed(0);
  const torch::Tensor images = torch::randn({c.batch_size, 3, c.image_size, c.image_size});
  const torch::Tensor metadata = torch::randn({c.batch_size, c.metadata_dim});
  const torch::Tensor labels =
      torch::arange(c.batch_size, torch::kInt64) % static_cast<int64_t>(kClassCounts.size());
  for (int i = 0; i < c.warmup_steps; ++i) {
    DF_RETURN_IF_ERROR(trainer->Step(images, metadata, labels).status());
  }
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < c.steps; ++i) {
    DF_RETURN_IF_ERROR(trainer->Step(images, metadata, labels).status());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(c.batch_size) * c.steps / seconds;
}

}  // namespace dermfed::bench
