#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "client/cli/commands.h"
#include "client/data/metadata_encoder.h"
#include "client/evaluator.h"
#include "client/image/codec.h"
#include "client/image/transforms.h"
#include "client/run_dir.h"
#include "client/site_data.h"
#include "common/model/runtime.h"
#include "common/model/torch_call.h"

namespace dermfed::client {

void RegisterEvalCommand(CLI::App& app, int& exit_code) {
  struct Args {
    std::string model_dir;
    SiteDataOptions data;
    std::string metrics_out;
    int threads = 0;
    int workers = 0;
    std::string device = "auto";
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("eval", "Score a trained model on every row of a dataset");
  cmd->add_option("--model", a->model_dir, "RUN folder written by dermfed train")
      ->required()
      ->check(CLI::ExistingDirectory);
  AddDataFlags(cmd, a->data);
  cmd->add_option("--metrics-out", a->metrics_out, "JSON file for the metrics (default: stdout)");
  cmd->add_option("--workers", a->workers, "image decoding threads (0 = all cores)")
      ->check(CLI::Range(0, 256));
  AddRuntimeFlags(cmd, a->threads, a->device);
  cmd->callback([a, &exit_code] {
    exit_code = 1;
    model::ConfigureThreads(a->threads);
    auto device = model::PickDevice(a->device);
    auto run = LoadRun(a->model_dir);
    if (!device.ok() || !run.ok()) {
      std::cerr << "dermfed eval: " << (device.ok() ? run.status() : device.status()).message()
                << "\n";
      return;
    }
    a->data.use_metadata = run->config.use_metadata;
    auto data = LoadSiteDataWithSchema(a->data, run->schema);
    if (!data.ok()) {
      std::cerr << "dermfed eval: " << data.status().message() << "\n";
      return;
    }
    if (!data->dataset.skipped.empty()) std::cerr << data->dataset.SkippedReport() << "\n";
    std::vector<int> rows(data->dataset.rows.size());
    std::iota(rows.begin(), rows.end(), 0);
    EvalConfig ec;
    ec.image_size = run->config.image_size;
    ec.workers = a->workers > 0 ? a->workers : static_cast<int>(std::thread::hardware_concurrency());
    (void)model::TorchCall("moving model", [&] { run->net->to(*device); });
    auto report = EvaluateRows(*run->net, *device, data->source, rows, run->config.class_names, ec);
    if (!report.ok()) {
      std::cerr << "dermfed eval: " << report.status().message() << "\n";
      return;
    }
    const std::string json = report->ToJson();
    if (a->metrics_out.empty()) {
      std::cout << json;
    } else {
      std::ofstream out(a->metrics_out);
      out << json;
      if (!out) {
        std::cerr << "dermfed eval: cannot write " << a->metrics_out << "\n";
        return;
      }
      std::printf("eval: %zu rows, accuracy %.3f, balanced accuracy %.3f, macro AUC %.3f -> %s\n",
                  rows.size(), report->confusion.Accuracy(), report->confusion.BalancedAccuracy(),
                  report->macro_auc, a->metrics_out.c_str());
    }
    exit_code = 0;
  });
}

void RegisterPredictCommand(CLI::App& app, int& exit_code) {
  struct Args {
    std::string model_dir;
    std::string image;
    std::vector<std::string> metadata;
    bool json = false;
    int threads = 0;
    std::string device = "auto";
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("predict", "Print class probabilities for one image");
  cmd->add_option("--model", a->model_dir, "RUN folder written by dermfed train")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--image", a->image, "PNG or JPEG file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--metadata", a->metadata,
                  "column=value pairs of the model's schema (absent columns count as missing)")
      ->expected(0, -1);
  cmd->add_flag("--json", a->json,
                "print {\"classes\": [...], \"probabilities\": [...], \"predicted\": ...}");
  AddRuntimeFlags(cmd, a->threads, a->device);
  cmd->callback([a, &exit_code] {
    exit_code = 1;
    auto fail = [](const Status& s) { std::cerr << "dermfed predict: " << s.message() << "\n"; };
    model::ConfigureThreads(a->threads);
    auto device = model::PickDevice(a->device);
    if (!device.ok()) return fail(device.status());
    auto run = LoadRun(a->model_dir);
    if (!run.ok()) return fail(run.status());
    const int s = run->config.image_size;
    auto img = DecodeImageFile(a->image, s);
    if (!img.ok()) return fail(img.status());
    torch::Tensor image = torch::empty({1, 3, s, s});
    AugmentConfig none;
    none.enabled = false;
    Rng rng = RowRng(0, 0, 0);
    TransformToTensor(*img, s, none, rng, image.data_ptr<float>());
    torch::Tensor meta;
    if (run->config.use_metadata && run->config.model.metadata_dim > 0) {
      const std::vector<std::string> columns = run->schema.ColumnNames();
      std::vector<std::string> values(columns.size());
      for (const std::string& kv : a->metadata) {
        const auto eq = kv.find('=');
        const std::string key = kv.substr(0, eq);
        const auto it = std::find(columns.begin(), columns.end(), key);
        if (eq == std::string::npos || it == columns.end()) {
          return fail(InvalidArgumentError("--metadata '" + kv + "': expected column=value with a column of schema '" + run->schema.name + "'"));
        }
        values[it - columns.begin()] = kv.substr(eq + 1);
      }
      auto encoder = MetadataEncoder::Create(run->schema, columns);
      if (!encoder.ok()) return fail(encoder.status());
      auto encoded = encoder->Encode(values);
      if (!encoded.ok()) return fail(encoded.status());
      meta = torch::tensor(*encoded).view({1, -1});
    }
    auto probs = model::TorchCall("predict", [&] {
      torch::NoGradGuard g;
      run->net->to(*device);
      run->net->eval();
      return torch::softmax(run->net->forward(image.to(*device), meta.defined() ? meta.to(*device) : meta).logits, 1).to(torch::kCPU);
    });
    if (!probs.ok()) return fail(probs.status());
    const int64_t best = probs->argmax(1).item<int64_t>();
    if (a->json) {
      nlohmann::json j = {{"classes", run->config.class_names},
                          {"probabilities", std::vector<float>(probs->data_ptr<float>(),
                                                               probs->data_ptr<float>() +
                                                                   probs->numel())},
                          {"predicted", run->config.class_names[best]}};
      std::cout << j.dump() << "\n";
      exit_code = 0;
      return;
    }
    for (size_t k = 0; k < run->config.class_names.size(); ++k) {
      std::printf("%s\t%.6f%s\n", run->config.class_names[k].c_str(),
                  (*probs)[0][static_cast<int64_t>(k)].item<float>(),
                  static_cast<int64_t>(k) == best ? "\t<- predicted" : "");
    }
    exit_code = 0;
  });
}

}  // namespace dermfed::client
