#include "client/train_job.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/evaluator.h"
#include "client/loader.h"
#include "client/progress.h"
#include "client/run_dir.h"
#include "common/model/runtime.h"
#include "common/model/module_state.h"
#include "common/model/torch_call.h"
#include "common/model_state_file.h"

namespace dermfed::client {
namespace {

namespace fs = std::filesystem;

struct Progress {
  int epoch = 0;
  int best_epoch = 0;
  double best = -1;
};

// After every epoch: weights, optimizer state and progress, each written to a temp name and
// renamed, progress last (it is what --resume trusts).
Status SaveResumePoint(const std::string& out, Trainer& trainer, const Progress& p) {
  const fs::path dir = fs::path(out) / "resume";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return InternalError(dir.string() + ": " + ec.message());
  DF_ASSIGN_OR_RETURN(ModelState state, model::ToModelState(*trainer.net()));
  DF_RETURN_IF_ERROR(SaveModelState(state, (dir / "model.dfs").string()));
  DF_RETURN_IF_ERROR(model::TorchCall("saving optimizer state", [&] {
    torch::save(trainer.optimizer(), (dir / "optimizer.pt.tmp").string());
  }));
  fs::rename(dir / "optimizer.pt.tmp", dir / "optimizer.pt", ec);
  nlohmann::json j = {{"epoch", p.epoch}, {"best_epoch", p.best_epoch}, {"best", p.best}};
  {
    std::ofstream f(dir / "progress.json.tmp");
    f << j.dump() << "\n";
    if (!f) return InternalError((dir / "progress.json").string() + ": cannot write");
  }
  fs::rename(dir / "progress.json.tmp", dir / "progress.json", ec);
  if (ec) return InternalError((dir / "progress.json").string() + ": " + ec.message());
  return OkStatus();
}

StatusOr<Progress> LoadResumePoint(const std::string& out, Trainer& trainer) {
  const fs::path dir = fs::path(out) / "resume";
  std::ifstream f(dir / "progress.json");
  if (!f) {
    return NotFoundError(out + " has no resume point (resume/progress.json); train without --resume");
  }
  Progress p;
  try {
    nlohmann::json j = nlohmann::json::parse(f);
    p.epoch = j.at("epoch").get<int>();
    p.best_epoch = j.at("best_epoch").get<int>();
    p.best = j.at("best").get<double>();
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError((dir / "progress.json").string() + ": " + e.what());
  }
  DF_ASSIGN_OR_RETURN(ModelState state, LoadModelState((dir / "model.dfs").string()));
  DF_RETURN_IF_ERROR(model::LoadModelStateInto(state, *trainer.net()));
  DF_RETURN_IF_ERROR(model::TorchCall("loading optimizer state", [&] {
    torch::load(trainer.optimizer(), (dir / "optimizer.pt").string());
  }));
  return p;
}

}  // namespace

StatusOr<TrainJobResult> RunTrainJob(const TrainJobConfig& c) {
  if (c.out.empty()) return InvalidArgumentError("train: an output folder (--out) is required");
  if (c.epochs < 1) return InvalidArgumentError("train: epochs must be >= 1");
  DF_ASSIGN_OR_RETURN(c10::Device device, model::PickDevice(c.device));
  DF_ASSIGN_OR_RETURN(SiteData data, LoadSiteData(c.data));
  if (!data.dataset.skipped.empty()) {
    std::fprintf(stderr, "%s\n", data.dataset.SkippedReport().c_str());
  }
  DF_ASSIGN_OR_RETURN(DatasetSplit split, SplitByGroup(data.dataset, c.split, c.trainer.seed));
  const std::vector<int64_t> counts = data.dataset.ClassCounts(split.train);

  RunConfig run;
  run.model = c.model;
  run.model.num_classes = static_cast<int64_t>(data.dataset.class_names.size());
  run.model.metadata_dim = data.source.metadata_width;
  run.class_names = data.dataset.class_names;
  run.image_size = c.image_size;
  run.format = c.data.format;
  run.use_metadata = c.data.use_metadata;
  // Same seed, same initial weights and dropout masks.
  torch::manual_seed(c.trainer.seed);
  DF_ASSIGN_OR_RETURN(model::DualRefNet net, model::MakeDualRefNet(run.model));
  if (!c.pretrained.empty()) {
    DF_RETURN_IF_ERROR(model::LoadTorchvisionWeights(net->backbone(), c.pretrained));
  }
  DF_ASSIGN_OR_RETURN(auto trainer, Trainer::Create(net, counts, c.trainer, device));

  const int workers = c.workers > 0 ? c.workers
                                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  LoaderConfig lc;
  lc.image_size = c.image_size;
  lc.batch_size = static_cast<int>(c.trainer.batch_size);
  lc.workers = workers;
  lc.seed = c.trainer.seed;
  lc.augment.enabled = c.augment;
  BatchLoader loader(data.source, split.train, lc);
  EvalConfig ec;
  ec.image_size = c.image_size;
  ec.batch_size = static_cast<int>(std::max<int64_t>(c.trainer.batch_size, 32));
  ec.workers = workers;

  std::printf("train: %zu rows (%zu train / %zu validation / %zu test), %lld groups, "
              "%d metadata features, backbone %s, %dx%d, device %s\n",
              data.dataset.rows.size(), split.train.size(), split.validation.size(),
              split.test.size(), static_cast<long long>(data.dataset.NumGroups()),
              data.source.metadata_width, run.model.backbone.c_str(), c.image_size,
              c.image_size, device.str().c_str());
  std::printf("train: class counts of the train part:");
  for (size_t k = 0; k < counts.size(); ++k) {
    std::printf(" %s %lld", run.class_names[k].c_str(), static_cast<long long>(counts[k]));
  }
  std::printf("\n");
  std::fflush(stdout);

  TrainJobResult result;
  result.best_validation_balanced_accuracy = -1;
  int first_epoch = 1;
  if (c.resume) {
    DF_ASSIGN_OR_RETURN(Progress p, LoadResumePoint(c.out, *trainer));
    first_epoch = p.epoch + 1;
    result.best_epoch = p.best_epoch;
    result.best_validation_balanced_accuracy = p.best;
    std::printf("train: resuming after epoch %d (best so far: epoch %d, %.3f)\n", p.epoch,
                p.best_epoch, p.best);
  }
  const std::vector<int>& select_on = split.validation.empty() ? split.train : split.validation;
  for (int epoch = first_epoch; epoch <= c.epochs; ++epoch) {
    trainer->SetLearningRate(
        Trainer::CosineLearningRate(c.trainer.learning_rate, epoch, c.epochs));
    loader.StartEpoch(epoch);
    ProgressBar bar("epoch " + std::to_string(epoch) + "/" + std::to_string(c.epochs),
                    loader.num_batches());
    double loss_sum = 0;
    int64_t steps = 0;
    while (true) {
      DF_ASSIGN_OR_RETURN(std::optional<Batch> batch, loader.Next());
      if (!batch) break;
      DF_ASSIGN_OR_RETURN(Trainer::StepLosses l,
                          trainer->Step(batch->images, batch->metadata, batch->labels));
      loss_sum += l.loss;
      ++steps;
      bar.Update(batch->labels.size(0), loss_sum / static_cast<double>(steps));
    }
    bar.Finish();
    DF_ASSIGN_OR_RETURN(ClassificationReport val,
                        EvaluateRows(*trainer->net(), device, data.source, select_on,
                                     run.class_names, ec));
    const double bacc = val.confusion.BalancedAccuracy();
    std::printf("epoch %d/%d: train loss %.4f, validation balanced accuracy %.3f, macro AUC %.3f%s\n",
                epoch, c.epochs, loss_sum / std::max<int64_t>(steps, 1), bacc, val.macro_auc,
                bacc > result.best_validation_balanced_accuracy ? " (best so far, saved)" : "");
    std::fflush(stdout);
    if (bacc > result.best_validation_balanced_accuracy) {
      result.best_validation_balanced_accuracy = bacc;
      result.best_epoch = epoch;
      DF_RETURN_IF_ERROR(SaveRun(c.out, run, data.schema, *trainer->net()));
    }
    DF_RETURN_IF_ERROR(SaveResumePoint(
        c.out, *trainer, {epoch, result.best_epoch, result.best_validation_balanced_accuracy}));
  }
  if (result.best_epoch == 0) {
    return FailedPreconditionError(c.out + ": nothing left to train (already at epoch " +
                                   std::to_string(c.epochs) + ")");
  }

  // Score the selected epoch on the held-out test part.
  DF_ASSIGN_OR_RETURN(LoadedRun best, LoadRun(c.out));
  DF_RETURN_IF_ERROR(model::TorchCall("moving model", [&] { best.net->to(device); }));
  const std::vector<int>& test_rows = split.test.empty() ? select_on : split.test;
  DF_ASSIGN_OR_RETURN(result.test, EvaluateRows(*best.net, device, data.source, test_rows,
                                                run.class_names, ec));
  std::ofstream out(c.out + "/metrics.json");
  out << result.test.ToJson();
  if (!out) return InternalError(c.out + "/metrics.json: cannot write");
  std::printf("test (%zu rows, best epoch %d): accuracy %.3f, balanced accuracy %.3f, macro AUC %.3f\n",
              test_rows.size(), result.best_epoch, result.test.confusion.Accuracy(),
              result.test.confusion.BalancedAccuracy(), result.test.macro_auc);
  return result;
}

}  // namespace dermfed::client
