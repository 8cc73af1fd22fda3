// site_bench: throughput of a site's engine, to set side by side with the same work in
// PyTorch Python (site_bench_pytorch.py; run_site_bench.sh runs both in one go).
//
//   train_step_<backbone>_<px>px  DualRefNet training steps (forward, DualRefNet loss,
//                                 backward, AdamW step) on a fixed random batch, in images/s.
//   pipeline_png_<px>px_<w>w      BatchLoader: decode PNG + augment + normalize on w worker
//                                 threads, in images/s over one epoch after a warm-up epoch.
//
// Prints one JSON object per line: {"name", "value", "unit", "detail"}. A benchmark, not a
// test: it asserts nothing and is not registered with ctest.
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "client/data/pad_ufes_20_reader.h"
#include "client/datagen.h"
#include "client/loader.h"
#include "common/allocator.h"
#include "common/model/runtime.h"
#include "tests/bench/train_step.h"

namespace dermfed::client {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  int threads = 2;
  int batch_size = 32;
  int metadata_dim = 100;  // the width of the shipped PAD-UFES-20 schema's encoding
  int tiny_size = 64;
  int tiny_steps = 30;
  std::string real_backbone = "mobilenet_v2";
  int real_size = 128;
  int real_steps = 5;
  int warmup_steps = 2;
  std::string device = "cpu";
  std::string data_dir;   // a PAD-UFES-20-format folder; "" = generate one
  int images = 512;       // when generating
  int source_size = 192;  // when generating: side of the stored PNGs
  int pipeline_size = 128;
  int workers = 2;
  bool skip_train = false;
  bool skip_pipeline = false;
};

void PrintRecord(const std::string& name, double value, const std::string& detail) {
  std::printf("{\"name\": \"%s\", \"value\": %.3f, \"unit\": \"images/s\", \"detail\": \"%s\"}\n",
              name.c_str(), value, detail.c_str());
  std::fflush(stdout);
}

StatusOr<std::string> DatasetDir(const BenchOptions& o, std::optional<std::string>* generated) {
  if (!o.data_dir.empty()) return o.data_dir;
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("site_bench_" + std::to_string(::getpid())))
          .string();
  DatagenOptions d;
  d.format = "pad-ufes-20";
  d.out_dir = dir;
  d.images = o.images;
  d.image_size = o.source_size;
  d.seed = 1;
  *generated = dir;
  DF_RETURN_IF_ERROR(GenerateDataset(d));
  return dir;
}

StatusOr<double> PipelineImagesPerSecond(const BenchOptions& o, const std::string& dir,
                                         int64_t* rows) {
  DF_ASSIGN_OR_RETURN(Dataset dataset, PadUfes20Reader().Read(dir));
  LoaderSource source;
  for (const DatasetRow& row : dataset.rows) {
    source.image_paths.push_back(row.image_path);
    source.labels.push_back(row.label);
  }
  std::vector<int> all(dataset.rows.size());
  std::iota(all.begin(), all.end(), 0);
  LoaderConfig lc;
  lc.image_size = o.pipeline_size;
  lc.batch_size = o.batch_size;
  lc.workers = o.workers;
  lc.seed = 1;
  BatchLoader loader(source, all, lc);
  *rows = loader.num_rows();
  double seconds = 0;
  for (int epoch = 0; epoch < 2; ++epoch) {  // epoch 0 warms the page cache
    const auto start = Clock::now();
    loader.StartEpoch(epoch);
    while (true) {
      DF_ASSIGN_OR_RETURN(std::optional<Batch> batch, loader.Next());
      if (!batch) break;
    }
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
  }
  return static_cast<double>(*rows) / seconds;
}

int Run(const BenchOptions& o) {
  model::ConfigureThreads(o.threads);
  auto device = model::PickDevice(o.device);
  if (!device.ok()) {
    std::cerr << "site_bench: " << device.status().message() << "\n";
    return 1;
  }
  const std::string common = "batch " + std::to_string(o.batch_size) + ", " +
                             std::to_string(o.threads) + " threads, " + device->str();
  if (!o.skip_train) {
    struct Case {
      std::string backbone;
      int size, steps;
    };
    for (const Case& c : {Case{"tiny", o.tiny_size, o.tiny_steps},
                          Case{o.real_backbone, o.real_size, o.real_steps}}) {
      int64_t parameters = 0;
      bench::TrainStepCase tc;
      tc.backbone = c.backbone;
      tc.image_size = c.size;
      tc.batch_size = o.batch_size;
      tc.metadata_dim = o.metadata_dim;
      tc.steps = c.steps;
      tc.warmup_steps = o.warmup_steps;
      auto ips = bench::TrainStepImagesPerSecond(tc, *device, &parameters);
      if (!ips.ok()) {
        std::cerr << "site_bench: train step " << c.backbone << ": " << ips.status().message()
                  << "\n";
        return 1;
      }
      PrintRecord("train_step_" + c.backbone + "_" + std::to_string(c.size) + "px", *ips,
                  common + ", " + std::to_string(c.steps) + " steps, metadata " +
                      std::to_string(o.metadata_dim) + ", " + std::to_string(parameters) +
                      " parameters");
    }
  }
  if (!o.skip_pipeline) {
    std::optional<std::string> generated;
    auto dir = DatasetDir(o, &generated);
    int64_t rows = 0;
    StatusOr<double> ips =
        dir.ok() ? PipelineImagesPerSecond(o, *dir, &rows) : StatusOr<double>(dir.status());
    if (generated) std::filesystem::remove_all(*generated);
    if (!ips.ok()) {
      std::cerr << "site_bench: pipeline: " << ips.status().message() << "\n";
      return 1;
    }
    PrintRecord(
        "pipeline_png_" + std::to_string(o.pipeline_size) + "px_" + std::to_string(o.workers) + "w",
        *ips,
        std::to_string(rows) + " PNGs, batch " + std::to_string(o.batch_size) + ", " +
            std::to_string(o.workers) + " workers, augment on");
  }
  return 0;
}

}  // namespace
}  // namespace dermfed::client

int main(int argc, char** argv) {
  dermfed::TuneAllocator();  // as dermfed-site does
  dermfed::client::BenchOptions o;
  CLI::App app{"site_bench: DualRefNet training-step and data-pipeline throughput"};
  app.add_option("--threads", o.threads, "LibTorch intra-op threads")->capture_default_str();
  app.add_option("--batch-size", o.batch_size)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--metadata-dim", o.metadata_dim)->capture_default_str();
  app.add_option("--tiny-size", o.tiny_size)->capture_default_str();
  app.add_option("--tiny-steps", o.tiny_steps)->capture_default_str();
  app.add_option("--real-backbone", o.real_backbone)->capture_default_str();
  app.add_option("--real-size", o.real_size)->capture_default_str();
  app.add_option("--real-steps", o.real_steps)->capture_default_str();
  app.add_option("--warmup-steps", o.warmup_steps)->capture_default_str();
  app.add_option("--device", o.device, "cpu, cuda or auto")->capture_default_str();
  app.add_option("--data", o.data_dir, "PAD-UFES-20-format folder (default: generate one)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--images", o.images, "images to generate without --data")->capture_default_str();
  app.add_option("--source-size", o.source_size, "side of generated PNGs")->capture_default_str();
  app.add_option("--pipeline-size", o.pipeline_size, "training image side")->capture_default_str();
  app.add_option("--workers", o.workers, "BatchLoader decoding threads")->capture_default_str();
  app.add_flag("--skip-train", o.skip_train);
  app.add_flag("--skip-pipeline", o.skip_pipeline);
  CLI11_PARSE(app, argc, argv);
  return dermfed::client::Run(o);
}
