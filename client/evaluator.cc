#include "client/evaluator.h"

#include <torch/torch.h>

#include "common/model/torch_call.h"

namespace dermfed::client {

LoaderConfig EvalLoaderConfig(const EvalConfig& config) {
  LoaderConfig lc;
  lc.image_size = config.image_size;
  lc.batch_size = config.batch_size;
  lc.workers = config.workers;
  lc.shuffle = false;
  lc.augment.enabled = false;
  return lc;
}

StatusOr<std::vector<float>> PredictRows(model::DualRefNetImpl& net, c10::Device device,
                                         const LoaderSource& source, const std::vector<int>& rows,
                                         const EvalConfig& config) {
  if (rows.empty()) return InvalidArgumentError("evaluation: no rows to score");
  BatchLoader loader(source, rows, EvalLoaderConfig(config));
  loader.StartEpoch(0);
  std::vector<float> probs;
  const int64_t k = net.options().num_classes;
  probs.reserve(rows.size() * static_cast<size_t>(k));
  while (true) {
    DF_ASSIGN_OR_RETURN(std::optional<Batch> batch, loader.Next());
    if (!batch) break;
    DF_ASSIGN_OR_RETURN(torch::Tensor p, model::TorchCall("evaluation forward", [&] {
                          torch::NoGradGuard no_grad;
                          net.eval();
                          torch::Tensor meta = batch->metadata.defined()
                                                   ? batch->metadata.to(device)
                                                   : torch::Tensor();
                          return torch::softmax(
                                     net.forward(batch->images.to(device), meta).logits, 1)
                              .to(torch::kCPU)
                              .contiguous();
                        }));
    probs.insert(probs.end(), p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
  }
  return probs;
}

StatusOr<ClassificationReport> EvaluateRows(model::DualRefNetImpl& net, c10::Device device,
                                            const LoaderSource& source,
                                            const std::vector<int>& rows,
                                            const std::vector<std::string>& class_names,
                                            const EvalConfig& config) {
  DF_ASSIGN_OR_RETURN(std::vector<float> probs, PredictRows(net, device, source, rows, config));
  std::vector<int64_t> truth;
  truth.reserve(rows.size());
  for (int r : rows) truth.push_back(source.labels[r]);
  return Evaluate(class_names, truth, probs);
}

}  // namespace dermfed::client
