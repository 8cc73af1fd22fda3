#include "client/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "common/model/torch_call.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace dermfed::client {
namespace {

// Turns CUDA autocast (bfloat16) on for its lifetime. The API moved in LibTorch 2.4.
class CudaAutocast {
 public:
  explicit CudaAutocast(bool enable) : on_(enable) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
  }
  ~CudaAutocast() {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
    at::autocast::clear_cache();
  }

 private:
  bool on_;
};

}  // namespace

using model::TorchCall;

StatusOr<std::unique_ptr<Trainer>> Trainer::Create(model::DualRefNet net,
                                                   std::vector<int64_t> class_counts,
                                                   TrainerConfig config, c10::Device device) {
  if (static_cast<int64_t>(class_counts.size()) != net->options().num_classes) {
    return InvalidArgumentError("trainer: " + std::to_string(class_counts.size()) +
                                " class counts for a model with " +
                                std::to_string(net->options().num_classes) + " classes");
  }
  if (config.batch_size < 1) return InvalidArgumentError("trainer: batch_size must be >= 1");
  if (!(config.learning_rate > 0)) return InvalidArgumentError("trainer: learning_rate must be > 0");
  DF_ASSIGN_OR_RETURN(model::DualRefNetLoss loss,
                      model::DualRefNetLoss::Create(std::move(class_counts), config.loss));
  DF_RETURN_IF_ERROR(TorchCall("moving model to " + device.str(), [&] { net->to(device); }));
  std::unique_ptr<torch::optim::Optimizer> opt;
  auto params = net->parameters();
  if (config.optimizer == "adamw") {
    opt = std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(config.learning_rate).weight_decay(config.weight_decay));
  } else if (config.optimizer == "adam") {
    opt = std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(config.learning_rate).weight_decay(config.weight_decay));
  } else if (config.optimizer == "sgd") {
    opt = std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(config.learning_rate)
                    .momentum(config.momentum)
                    .weight_decay(config.weight_decay));
  } else {
    return InvalidArgumentError("trainer: optimizer '" + config.optimizer +
                                "' is unknown; choose adamw, adam or sgd");
  }
  return std::unique_ptr<Trainer>(
      new Trainer(std::move(net), std::move(loss), config, device, std::move(opt)));
}

Trainer::Trainer(model::DualRefNet net, model::DualRefNetLoss loss, TrainerConfig config,
                 c10::Device device, std::unique_ptr<torch::optim::Optimizer> optimizer)
    : net_(std::move(net)),
      loss_(std::move(loss)),
      config_(config),
      device_(device),
      optimizer_(std::move(optimizer)) {}

StatusOr<Trainer::StepLosses> Trainer::Step(const torch::Tensor& images,
                                             const torch::Tensor& metadata,
                                             const torch::Tensor& labels) {
  return TorchCall("training step", [&] {
    net_->train();
    torch::Tensor image = images.to(device_);
    torch::Tensor meta = metadata.defined() ? metadata.to(device_) : torch::Tensor();
    optimizer_->zero_grad();
    model::DualRefNetOutput out;
    {
      CudaAutocast autocast(config_.mixed_precision && device_.is_cuda());
      out = net_->forward(image, meta);
    }
    if (out.logits.scalar_type() != torch::kFloat32) out.logits = out.logits.to(torch::kFloat32);
    if (out.sr.defined() && out.sr.scalar_type() != torch::kFloat32) out.sr = out.sr.to(torch::kFloat32);
    model::LossTerms t = loss_(*net_, out, labels.to(device_), image);
    if (proximal_mu_ > 0) {
      auto params = net_->parameters();
      torch::Tensor prox = torch::zeros({}, t.total.options());
      for (size_t i = 0; i < params.size(); ++i) prox = prox + (params[i] - anchor_[i]).pow(2).sum();
      t.total = t.total + 0.5 * proximal_mu_ * prox;
    }
    t.total.backward();
    optimizer_->step();
    StepLosses losses;
    losses.loss = t.total.item<double>();
    losses.ce = t.ce.item<double>();
    losses.sr = t.sr.item<double>();
    losses.cf = t.cf.item<double>();
    return losses;
  });
}

StatusOr<torch::Tensor> Trainer::Predict(const torch::Tensor& images,
                                         const torch::Tensor& metadata) {
  return TorchCall("predicting", [&] {
    torch::NoGradGuard no_grad;
    net_->eval();
    torch::Tensor meta = metadata.defined() ? metadata.to(device_) : torch::Tensor();
    CudaAutocast autocast(config_.mixed_precision && device_.is_cuda());
    return torch::softmax(net_->forward(images.to(device_), meta).logits.to(torch::kFloat32), 1)
        .to(torch::kCPU);
  });
}

StatusOr<EpochReport> Trainer::TrainEpoch(const TensorDataset& data, int epoch) {
  if (data.size() == 0) return InvalidArgumentError("trainer: no training rows");
  const auto start = std::chrono::steady_clock::now();
  EpochReport report;
  report.epoch = epoch;
  auto gen = at::detail::createCPUGenerator(config_.seed * 1000003 + epoch);
  torch::Tensor order = torch::randperm(data.size(), gen, torch::kInt64);
  int64_t batches = 0;
  for (int64_t b = 0; b < data.size(); b += config_.batch_size) {
    TensorDataset batch = data.Select(order.slice(0, b, b + config_.batch_size));
    DF_ASSIGN_OR_RETURN(StepLosses l, Step(batch.images, batch.metadata, batch.labels));
    report.loss += l.loss;
    report.ce += l.ce;
    report.sr += l.sr;
    report.cf += l.cf;
    report.images += batch.size();
    ++batches;
  }
  report.loss /= batches;
  report.ce /= batches;
  report.sr /= batches;
  report.cf /= batches;
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

StatusOr<torch::Tensor> Trainer::PredictProbabilities(const TensorDataset& data) {
  std::vector<torch::Tensor> parts;
  for (int64_t b = 0; b < data.size(); b += config_.batch_size) {
    TensorDataset batch = data.Slice(b, std::min(data.size(), b + config_.batch_size));
    DF_ASSIGN_OR_RETURN(torch::Tensor p, Predict(batch.images, batch.metadata));
    parts.push_back(p);
  }
  if (parts.empty()) return InvalidArgumentError("trainer: nothing to predict");
  return torch::cat(parts, 0);
}

void Trainer::SetProximalAnchor(double mu) {
  proximal_mu_ = mu;
  anchor_.clear();
  if (mu <= 0) return;
  torch::NoGradGuard no_grad;
  for (const auto& p : net_->parameters()) anchor_.push_back(p.detach().clone());
}

void Trainer::SetLearningRate(double lr) {
  for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
}

double Trainer::CosineLearningRate(double base, int epoch, int total) {
  if (total <= 1) return base;
  const double t = static_cast<double>(epoch - 1) / static_cast<double>(total - 1);
  return base * (0.01 + 0.99 * 0.5 * (1 + std::cos(M_PI * t)));
}

}  // namespace dermfed::client
