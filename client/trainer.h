// Trains DualRefNet on one site's rows with that site's own class counts (the weighted
// cross-entropy and the class-frequency regularizer both come from them).
//
// Not thread-safe: one Trainer drives one model.
#ifndef DERMFED_CLIENT_TRAINER_H_
#define DERMFED_CLIENT_TRAINER_H_

#include <torch/optim/optimizer.h>

#include <memory>
#include <string>
#include <vector>

#include "client/synthetic.h"
#include "common/model/dualrefnet.h"
#include "common/model/losses.h"
#include "common/status.h"

namespace dermfed::client {

struct TrainerConfig {
  int64_t batch_size = 32;
  std::string optimizer = "adamw";  // adamw | adam | sgd
  double learning_rate = 1e-3;
  double momentum = 0.9;  // sgd only
  double weight_decay = 1e-4;
  model::LossConfig loss;
  uint64_t seed = 0;
  // bfloat16 autocast of the forward pass on CUDA (no effect on CPU). bfloat16 has float32's
  // range, so no loss scaling is needed.
  bool mixed_precision = true;
};

struct EpochReport {
  int epoch = 0;
  double loss = 0, ce = 0, sr = 0, cf = 0;  // means over the epoch's batches
  int64_t images = 0;
  double seconds = 0;
};

class Trainer {
 public:
  // `class_counts` are the training rows per class at this site.
  static StatusOr<std::unique_ptr<Trainer>> Create(model::DualRefNet net,
                                                   std::vector<int64_t> class_counts,
                                                   TrainerConfig config, c10::Device device);

  // One optimizer step on a batch (moved to the trainer's device); returns the loss terms
  // as plain numbers.
  struct StepLosses {
    double loss = 0, ce = 0, sr = 0, cf = 0;
  };
  StatusOr<StepLosses> Step(const torch::Tensor& images, const torch::Tensor& metadata,
                            const torch::Tensor& labels);

  // Class probabilities (B x K, on the CPU) in eval mode.
  StatusOr<torch::Tensor> Predict(const torch::Tensor& images, const torch::Tensor& metadata);

  // One pass over in-memory `data` in a seeded random order.
  StatusOr<EpochReport> TrainEpoch(const TensorDataset& data, int epoch);

  // Class probabilities (N x K, on the CPU) in eval mode.
  StatusOr<torch::Tensor> PredictProbabilities(const TensorDataset& data);

  // FedProx: adds (mu / 2) * ||w - w_anchor||^2 over the parameters to every step's loss,
  // with the anchor the model's current parameters (the global model just loaded). mu = 0
  // removes it.
  void SetProximalAnchor(double mu);

  // Sets the learning rate of every parameter group (schedules call this per epoch).
  void SetLearningRate(double lr);
  // Cosine decay from config.learning_rate to 1% of it over `total` epochs.
  static double CosineLearningRate(double base, int epoch, int total);

  model::DualRefNet& net() { return net_; }
  torch::optim::Optimizer& optimizer() { return *optimizer_; }

 private:
  Trainer(model::DualRefNet net, model::DualRefNetLoss loss, TrainerConfig config,
          c10::Device device, std::unique_ptr<torch::optim::Optimizer> optimizer);

  model::DualRefNet net_;
  model::DualRefNetLoss loss_;
  TrainerConfig config_;
  c10::Device device_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  double proximal_mu_ = 0;
  std::vector<torch::Tensor> anchor_;
};

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_TRAINER_H_
