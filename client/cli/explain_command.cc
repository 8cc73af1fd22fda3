// dermfed explain: which patient factors (metadata features) drive a model's predictions —
// per-class permutation importance (client/explain.h), computed here on local data
// (--model RUN --data DIR) or read from a running coordinator, which combines the sites'
// (--coordinator ADDR [--round N]). Both print the same table or JSON
// (coordinator/explanations.h's format).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <thread>

#include "client/cli/commands.h"
#include "client/cli/coordinator_flags.h"
#include "client/explain.h"
#include "client/run_dir.h"
#include "client/site_data.h"
#include "common/model/runtime.h"
#include "common/model/torch_call.h"
#include "coordinator/explanations.h"

namespace dermfed::client {
namespace {

struct ExplainArgs {
  std::string model_dir;
  SiteDataOptions data;
  ImportanceConfig importance;
  int threads = 0;
  int workers = 0;
  std::string device = "auto";
  CoordinatorFlags coordinator;
  int64_t round = 0;  // 0 = the latest round with explanations
  bool json = false;
  std::string out;
};

// The explanations JSON for the model and data on this machine.
StatusOr<nlohmann::json> ExplainLocally(ExplainArgs& a) {
  model::ConfigureThreads(a.threads);
  DF_ASSIGN_OR_RETURN(c10::Device device, model::PickDevice(a.device));
  DF_ASSIGN_OR_RETURN(LoadedRun run, LoadRun(a.model_dir));
  a.data.use_metadata = run.config.use_metadata;
  DF_ASSIGN_OR_RETURN(SiteData data, LoadSiteDataWithSchema(a.data, run.schema));
  if (!data.dataset.skipped.empty()) std::cerr << data.dataset.SkippedReport() << "\n";
  DF_ASSIGN_OR_RETURN(std::vector<FeatureGroup> groups,
                      FeatureGroupsOf(run.schema, data.feature_names));
  std::vector<int> rows(data.dataset.rows.size());
  std::iota(rows.begin(), rows.end(), 0);
  a.importance.eval.image_size = run.config.image_size;
  a.importance.eval.workers =
      a.workers > 0 ? a.workers
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  DF_RETURN_IF_ERROR(model::TorchCall("moving model", [&] { run.net->to(device); }));
  DF_ASSIGN_OR_RETURN(FeatureImportance importance,
                      ComputeImportance(*run.net, device, data.source, rows, groups,
                                        run.config.class_names, a.importance));
  // One way to the table: the same report a site sends, combined as the coordinator does.
  v1::MetricsReport report;
  report.set_num_examples(static_cast<int64_t>(rows.size()));
  for (const auto& [key, value] : ImportanceMetrics(importance)) {
    (*report.mutable_metrics())[key] = value;
  }
  const std::string combined =
      coordinator::CombinedImportanceJson({{"local", report}}, run.config.class_names);
  nlohmann::json j = nlohmann::json::parse(combined, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return InternalError("explanations: unreadable combined JSON");
  j["model"] = a.model_dir;
  j["repeats"] = importance.repeats;
  return j;
}

// The combined explanations of round `a.round` (0 = the latest that has them).
StatusOr<nlohmann::json> ExplainFromCoordinator(const ExplainArgs& a) {
  DF_ASSIGN_OR_RETURN(MonitorClient client, ConnectToCoordinator(a.coordinator));
  DF_ASSIGN_OR_RETURN(std::vector<v1::RoundInfo> rounds, client.Rounds());
  for (auto it = rounds.rbegin(); it != rounds.rend(); ++it) {
    if (a.round > 0 && it->round() != a.round) continue;
    auto m = nlohmann::json::parse(it->metrics_json(), nullptr, /*allow_exceptions=*/false);
    if (m.is_object() && m.contains("explanations") && m["explanations"].is_object()) {
      nlohmann::json j = m["explanations"];
      j["round"] = it->round();
      j["model_version"] = it->model_version();
      return j;
    }
    if (a.round > 0) {
      return NotFoundError("round " + std::to_string(a.round) +
                           " has no explanations (not evaluated yet, or no site computed them: "
                           "site.explain, a model without metadata)");
    }
  }
  if (a.round > 0) {
    return NotFoundError("the coordinator has no completed round " + std::to_string(a.round));
  }
  return NotFoundError("no evaluated round has explanations yet (" + std::to_string(rounds.size()) +
                       " rounds completed)");
}

std::string Cell(const nlohmann::json& v) {
  if (!v.is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%+.4f", v.get<double>());
  return buf;
}

// Features (rows, most important first) x overall and classes (columns).
void PrintTable(const nlohmann::json& j) {
  const auto& features = j.at("features");
  const auto& classes = j.at("classes");
  size_t name_width = 7;
  for (const auto& f : features) name_width = std::max(name_width, f.get<std::string>().size());
  std::vector<size_t> widths;
  for (const auto& c : classes) widths.push_back(std::max<size_t>(8, c.get<std::string>().size()));
  if (j.contains("round")) {
    std::printf("round %lld, ", static_cast<long long>(j["round"].get<int64_t>()));
  }
  std::printf("%d site%s: %s\n", j.value("sites", 0), j.value("sites", 0) == 1 ? "" : "s",
              j.value("measure", std::string()).c_str());
  std::printf("%-*s %8s", static_cast<int>(name_width), "feature", "overall");
  for (size_t c = 0; c < classes.size(); ++c) {
    std::printf(" %*s", static_cast<int>(widths[c]), classes[c].get<std::string>().c_str());
  }
  std::printf("\n");
  for (size_t f = 0; f < features.size(); ++f) {
    std::printf("%-*s %8s", static_cast<int>(name_width), features[f].get<std::string>().c_str(),
                Cell(j.at("overall")[f]).c_str());
    for (size_t c = 0; c < classes.size(); ++c) {
      std::printf(" %*s", static_cast<int>(widths[c]), Cell(j.at("importance")[c][f]).c_str());
    }
    std::printf("\n");
  }
  std::printf("%-*s %8s", static_cast<int>(name_width), "rows", "");
  for (size_t c = 0; c < classes.size(); ++c) {
    std::printf(" %*lld", static_cast<int>(widths[c]),
                static_cast<long long>(j.at("rows")[c].get<int64_t>()));
  }
  std::printf("\n");
}

}  // namespace

void RegisterExplainCommand(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<ExplainArgs>();
  CLI::App* cmd = app.add_subcommand(
      "explain",
      "Which patient factors drive predictions: per-class permutation importance of each "
      "metadata feature, on local data (--model) or combined over a federation's sites "
      "(--coordinator)");
  CLI::Option* model = cmd->add_option("--model", a->model_dir, "RUN folder to explain on --data")
                           ->check(CLI::ExistingDirectory);
  AddDataFlags(cmd, a->data);
  cmd->get_option("--data")->required(false);
  cmd->get_option("--format")->required(false);
  cmd->add_option("--rows", a->importance.max_rows,
                  "score at most this many rows, a seeded random subset (0 = all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--repeats", a->importance.repeats, "permutations per feature")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", a->importance.seed, "seed for the permutations and the rows")
      ->capture_default_str();
  cmd->add_option("--workers", a->workers, "image decoding threads (0 = all cores)")
      ->check(CLI::Range(0, 256));
  AddRuntimeFlags(cmd, a->threads, a->device);
  CLI::Option* coordinator = AddCoordinatorFlags(cmd, a->coordinator, /*required=*/false);
  cmd->add_option("--round", a->round, "with --coordinator: the round (0 = the latest explained)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", a->json, "print JSON instead of the table");
  cmd->add_option("--out", a->out, "also write the JSON to this file");
  cmd->callback([a, model, coordinator, &exit_code] {
    exit_code = 1;
    auto fail = [](const Status& s) { std::cerr << "dermfed explain: " << s.message() << "\n"; };
    StatusOr<nlohmann::json> j = NotFoundError("");
    if (model->count() > 0) {
      if (coordinator->count() > 0) {
        return fail(InvalidArgumentError("give --model (with --data) or --coordinator, not both"));
      }
      if (a->data.path.empty() || a->data.format.empty()) {
        return fail(InvalidArgumentError("--model needs --data and --format"));
      }
      j = ExplainLocally(*a);
    } else if (!a->coordinator.coordinator.empty()) {
      j = ExplainFromCoordinator(*a);
    } else {
      return fail(
          InvalidArgumentError("give --model RUN --data DIR --format F, or --coordinator HOST:PORT "
                               "(or $DERMFED_COORDINATOR)"));
    }
    if (!j.ok()) return fail(j.status());
    if (!a->out.empty()) {
      Status written = WriteOutputFile(a->out, j->dump(2) + "\n");
      if (!written.ok()) return fail(written);
    }
    if (a->json) {
      std::cout << j->dump() << "\n";
    } else {
      PrintTable(*j);
      if (!a->out.empty()) std::printf("-> %s\n", a->out.c_str());
    }
    exit_code = 0;
  });
}

}  // namespace dermfed::client
