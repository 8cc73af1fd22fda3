#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "client/cli/commands.h"
#include "client/train_job.h"
#include "common/model/runtime.h"

namespace dermfed::client {

void AddModelFlags(CLI::App* cmd, model::DualRefNetOptions& m, model::LossConfig& loss,
                   bool& no_weighted_ce) {
  cmd->add_option("--backbone", m.backbone,
                  "tiny, vgg13, densenet121, resnet50, efficientnet_b0 or mobilenet_v2")
      ->capture_default_str();
  cmd->add_option("--sr-factor", m.sr_factor, "downscaling for the super-resolution stage (1 = off)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{8}));
  cmd->add_option("--lambda-sr", loss.lambda_sr, "weight of the SR L1 loss (0 = off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--lambda-cf", loss.lambda_cf, "weight of the class-frequency regularizer (0 = off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-weighted-ce", no_weighted_ce, "plain instead of weighted cross-entropy");
}

void AddTrainerFlags(CLI::App* cmd, TrainerConfig& t) {
  cmd->add_option("--batch-size", t.batch_size)
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{65536}));
  cmd->add_option("--optimizer", t.optimizer)
      ->capture_default_str()
      ->check(CLI::IsMember({"adamw", "adam", "sgd"}));
  cmd->add_option("--lr", t.learning_rate, "learning rate (cosine-decayed over the epochs)")
      ->capture_default_str()
      ->check(CLI::Range(1e-9, 10.0));
  cmd->add_option("--weight-decay", t.weight_decay)->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", t.seed, "seed for the split, the order and the augmentation")
      ->capture_default_str();
}

void AddRuntimeFlags(CLI::App* cmd, int& threads, std::string& device) {
  cmd->add_option("--threads", threads, "LibTorch intra-op threads (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--device", device, "auto, cpu, cuda or cuda:N")->capture_default_str();
}

void AddDataFlags(CLI::App* cmd, SiteDataOptions& d) {
  cmd->add_option("--data", d.path, "dataset folder (generic: folder or manifest CSV)")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--format", d.format, "pad-ufes-20, isic-2019 or generic")
      ->required()
      ->check(CLI::IsMember({"pad-ufes-20", "isic-2019", "generic"}));
  cmd->add_option("--schema", d.schema_path,
                  "metadata schema JSON (default: the shipped one of --format)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--skip-bad-rows", d.skip_bad_rows,
                "skip, count and report bad rows instead of stopping at the first");
}

void RegisterTrainCommand(CLI::App& app, int& exit_code) {
  struct Args {
    TrainJobConfig job;
    int threads = 0;
    bool no_weighted_ce = false;
    bool no_metadata = false;
    bool no_augment = false;
  };
  auto a = std::make_shared<Args>();
  a->job.image_size = 224;
  CLI::App* cmd = app.add_subcommand(
      "train", "Train DualRefNet on one site's data; select on validation, score the test part");
  AddDataFlags(cmd, a->job.data);
  AddModelFlags(cmd, a->job.model, a->job.trainer.loss, a->no_weighted_ce);
  AddTrainerFlags(cmd, a->job.trainer);
  AddRuntimeFlags(cmd, a->threads, a->job.device);
  cmd->add_option("--image-size", a->job.image_size, "training image side in pixels")
      ->capture_default_str()
      ->check(CLI::Range(16, 1024));
  cmd->add_option("--epochs", a->job.epochs)->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--workers", a->job.workers, "image decoding threads (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 256));
  cmd->add_option("--val-fraction", a->job.split.validation)->capture_default_str()->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--test-fraction", a->job.split.test)->capture_default_str()->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--pretrained", a->job.pretrained,
                  "torchvision ImageNet checkpoint (.pth) for the backbone")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--no-metadata", a->no_metadata, "image only: ignore the metadata columns");
  cmd->add_flag("--no-augment", a->no_augment, "no training augmentation");
  cmd->add_flag("--resume", a->job.resume,
                "continue an interrupted run in --out from its last finished epoch");
  cmd->add_flag("!--no-mixed-precision", a->job.trainer.mixed_precision,
                "train in float32 on CUDA too (default: bfloat16 autocast on CUDA)");
  cmd->add_option("--out", a->job.out, "RUN folder to write the model, config, schema and metrics to")
      ->required();
  cmd->callback([a, &exit_code] {
    model::ConfigureThreads(a->threads);
    a->job.trainer.loss.weighted_ce = !a->no_weighted_ce;
    a->job.data.use_metadata = !a->no_metadata;
    a->job.augment = !a->no_augment;
    a->job.split.train = 1.0 - a->job.split.validation - a->job.split.test;
    if (a->job.split.train <= 0) {
      std::cerr << "dermfed train: --val-fraction + --test-fraction must be below 1\n";
      exit_code = 2;
      return;
    }
    auto r = RunTrainJob(a->job);
    if (!r.ok()) {
      std::cerr << "dermfed train: " << r.status().message() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace dermfed::client
