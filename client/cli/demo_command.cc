#include "client/cli/commands.h"

#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "client/synthetic.h"
#include "client/trainer.h"
#include "common/metrics.h"
#include "common/model/module_state.h"
#include "common/model/runtime.h"
#include "common/model_state_file.h"

namespace dermfed::client {
namespace {

struct DemoArgs {
  model::DualRefNetOptions net;
  TrainerConfig train;
  int64_t rows = 600;
  int64_t image_size = 64;
  int epochs = 6;
  int threads = 0;
  uint64_t seed = 1;
  std::string device = "auto";
  std::string out;
  std::string metrics_out;
  bool no_weighted_ce = false;
};

int RunDemo(DemoArgs a) {
  const int threads = model::ConfigureThreads(a.threads);
  auto device = model::PickDevice(a.device);
  if (!device.ok()) {
    std::cerr << "dermfed demo: " << device.status().message() << "\n";
    return 2;
  }
  a.train.loss.weighted_ce = !a.no_weighted_ce;
  a.train.seed = a.seed;
  torch::manual_seed(a.seed);

  SyntheticSpec spec;
  spec.rows = a.rows;
  spec.num_classes = a.net.num_classes;
  spec.image_size = a.image_size;
  spec.metadata_dim = a.net.metadata_dim;
  spec.seed = a.seed;
  TensorDataset all = MakeSyntheticDataset(spec);
  const int64_t n_train = a.rows * 4 / 5;
  TensorDataset train = all.Slice(0, n_train);
  TensorDataset val = all.Slice(n_train, a.rows);
  std::vector<int64_t> counts = train.ClassCounts(a.net.num_classes);

  auto net = model::MakeDualRefNet(a.net);
  if (!net.ok()) {
    std::cerr << "dermfed demo: " << net.status().message() << "\n";
    return 2;
  }
  auto trainer = Trainer::Create(*net, counts, a.train, *device);
  if (!trainer.ok()) {
    std::cerr << "dermfed demo: " << trainer.status().message() << "\n";
    return 2;
  }
  std::printf("DualRefNet(%s) on %s, %d threads: %lld generated images of %lldx%lld, "
              "%lld metadata features, %lld classes; %lld train / %lld validation rows\n",
              a.net.backbone.c_str(), device->str().c_str(), threads,
              static_cast<long long>(a.rows), static_cast<long long>(a.image_size),
              static_cast<long long>(a.image_size), static_cast<long long>(a.net.metadata_dim),
              static_cast<long long>(a.net.num_classes), static_cast<long long>(train.size()),
              static_cast<long long>(val.size()));
  std::printf("site class counts:");
  for (int64_t c : counts) std::printf(" %lld", static_cast<long long>(c));
  std::printf("\n");

  nlohmann::json history = nlohmann::json::array();
  double balanced = 0, accuracy = 0;
  for (int epoch = 1; epoch <= a.epochs; ++epoch) {
    auto report = (*trainer)->TrainEpoch(train, epoch);
    if (!report.ok()) {
      std::cerr << "dermfed demo: " << report.status().message() << "\n";
      return 1;
    }
    auto probs = (*trainer)->PredictProbabilities(val);
    if (!probs.ok()) {
      std::cerr << "dermfed demo: " << probs.status().message() << "\n";
      return 1;
    }
    torch::Tensor pred = probs->argmax(1).contiguous();
    torch::Tensor truth = val.labels.contiguous();
    ConfusionMatrix cm(static_cast<int>(a.net.num_classes));
    Status s = cm.Add(std::vector<int64_t>(truth.data_ptr<int64_t>(),
                                           truth.data_ptr<int64_t>() + truth.numel()),
                      std::vector<int64_t>(pred.data_ptr<int64_t>(),
                                           pred.data_ptr<int64_t>() + pred.numel()));
    if (!s.ok()) {
      std::cerr << "dermfed demo: " << s.message() << "\n";
      return 1;
    }
    accuracy = cm.Accuracy();
    balanced = cm.BalancedAccuracy();
    std::printf("epoch %d/%d  loss %.4f (ce %.4f, sr %.4f, cf %.5f)  %.1f img/s  "
                "val accuracy %.3f  balanced accuracy %.3f\n",
                epoch, a.epochs, report->loss, report->ce, report->sr, report->cf,
                report->images / std::max(report->seconds, 1e-9), accuracy, balanced);
    std::fflush(stdout);
    history.push_back({{"epoch", epoch},
                       {"loss", report->loss},
                       {"accuracy", accuracy},
                       {"balanced_accuracy", balanced}});
  }
  std::printf("validation balanced accuracy %.3f (chance %.3f)\n", balanced,
              1.0 / static_cast<double>(a.net.num_classes));

  if (!a.out.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(a.out, ec);
    auto state = model::ToModelState(*(*trainer)->net());
    Status s = state.ok() ? SaveModelState(*state, a.out + "/model.dfs") : state.status();
    if (!s.ok()) {
      std::cerr << "dermfed demo: " << s.message() << "\n";
      return 1;
    }
    std::printf("model written to %s/model.dfs (sha256 %s)\n", a.out.c_str(),
                ModelStateDigest(*state).c_str());
  }
  if (!a.metrics_out.empty()) {
    nlohmann::json j = {{"accuracy", accuracy},
                        {"balanced_accuracy", balanced},
                        {"chance", 1.0 / static_cast<double>(a.net.num_classes)},
                        {"history", history}};
    std::ofstream f(a.metrics_out);
    f << j.dump(2) << "\n";
    if (!f) {
      std::cerr << "dermfed demo: cannot write " << a.metrics_out << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace

void RegisterDemoCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Train DualRefNet locally for a few epochs on generated images and report "
              "validation accuracy");
  cmd->add_option("--backbone", args->net.backbone,
                  "tiny, vgg13, densenet121, resnet50, efficientnet_b0 or mobilenet_v2")
      ->capture_default_str();
  cmd->add_option("--rows", args->rows, "generated rows (80% train, 20% validation)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{10}, int64_t{10000000}));
  cmd->add_option("--image-size", args->image_size, "image side in pixels")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{16}, int64_t{1024}));
  cmd->add_option("--classes", args->net.num_classes, "number of classes")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{100}));
  cmd->add_option("--metadata-dim", args->net.metadata_dim,
                  "encoded metadata features (0 = image only)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{4096}));
  cmd->add_option("--epochs", args->epochs, "training epochs")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--batch-size", args->train.batch_size)->capture_default_str()->check(
      CLI::Range(int64_t{1}, int64_t{65536}));
  cmd->add_option("--optimizer", args->train.optimizer)
      ->capture_default_str()
      ->check(CLI::IsMember({"adamw", "adam", "sgd"}));
  cmd->add_option("--lr", args->train.learning_rate, "learning rate")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--sr-factor", args->net.sr_factor,
                  "downscaling for the super-resolution stage (1 = off)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{8}));
  cmd->add_option("--lambda-sr", args->train.loss.lambda_sr, "weight of the SR L1 loss (0 = off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--lambda-cf", args->train.loss.lambda_cf,
                  "weight of the class-frequency regularizer (0 = off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-weighted-ce", args->no_weighted_ce, "plain instead of weighted cross-entropy");
  cmd->add_option("--threads", args->threads, "LibTorch intra-op threads (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--device", args->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--seed", args->seed)->capture_default_str();
  cmd->add_option("--out", args->out, "directory to write the trained model.dfs to");
  cmd->add_option("--metrics-out", args->metrics_out, "JSON file for the validation metrics");
  cmd->callback([args, &exit_code] { exit_code = RunDemo(*args); });
}

}  // namespace dermfed::client
