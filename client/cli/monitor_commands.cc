// dermfed status | rounds | metrics | sites | watch | pause | resume | stop | download: a
// researcher's and operator's view of a running coordinator, through its MonitorService.
#include <google/protobuf/util/json_util.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "client/cli/commands.h"
#include "client/cli/coordinator_flags.h"
#include "client/federation/monitor_client.h"
#include "client/federation/round_metrics.h"

namespace dermfed::client {
namespace {

// The coordinator flags plus --json, on every monitor command.
struct MonitorFlags : CoordinatorFlags {
  bool json = false;
};

void AddMonitorFlags(CLI::App* cmd, MonitorFlags& f) {
  AddCoordinatorFlags(cmd, f);
  cmd->add_flag("--json", f.json, "print JSON (one object per line for watch)");
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

// A metric from a round's metrics JSON, or NaN.
double Metric(const std::string& metrics_json, const char* key) {
  if (metrics_json.empty()) return NAN;
  auto j = nlohmann::json::parse(metrics_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return NAN;
  return j[key].get<double>();
}

std::string Utc(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Runs `body` and turns a failed Status into a message and exit code 1.
void Run(const char* command, int& exit_code, const std::function<Status()>& body) {
  Status s = body();
  if (!s.ok()) {
    std::cerr << "dermfed " << command << ": " << s.message() << "\n";
    exit_code = 1;
  }
}

Status PrintStatus(const MonitorFlags& f) {
  DF_ASSIGN_OR_RETURN(MonitorClient client, ConnectToCoordinator(f));
  DF_ASSIGN_OR_RETURN(v1::FederationStatus st, client.GetStatus());
  if (f.json) {
    std::cout << ToJson(st) << "\n";
    return OkStatus();
  }
  const auto& spec = st.spec();
  std::printf("federation  %s (backbone %s, %lld classes, image %d px, strategy %s)\n",
              spec.federation().c_str(), spec.backbone().c_str(),
              static_cast<long long>(spec.num_classes()), spec.image_size(),
              st.strategy().c_str());
  std::printf("state       %s%s, round %lld of %lld", StateName(st.state()).c_str(),
              st.pause_requested() && st.state() != v1::FederationStatus::PAUSED
                  ? " (pause requested)"
                  : "",
              static_cast<long long>(st.round()), static_cast<long long>(st.rounds_total()));
  if (st.sites_selected() > 0) {
    std::printf(", %d of %d sites reported", st.sites_reported(), st.sites_selected());
  }
  std::printf("\nsites       %d known\n", st.sites_known());
  std::printf("model       version %lld, sha256 %s\n", static_cast<long long>(st.model_version()),
              st.model_sha256_hex().c_str());
  if (!st.latest_metrics_json().empty()) {
    const std::string& m = st.latest_metrics_json();
    std::printf("last eval   round %.0f: balanced accuracy %.3f, accuracy %.3f, macro AUC %.3f, "
                "loss %.4f\n",
                Metric(m, "round"), Metric(m, "balanced_accuracy"), Metric(m, "accuracy"),
                Metric(m, "macro_auc"), Metric(m, "loss"));
  }
  return OkStatus();
}

Status PrintRounds(const MonitorFlags& f) {
  DF_ASSIGN_OR_RETURN(MonitorClient client, ConnectToCoordinator(f));
  DF_ASSIGN_OR_RETURN(std::vector<v1::RoundInfo> rounds, client.Rounds());
  if (f.json) {
    for (const auto& r : rounds) std::cout << ToJson(r) << "\n";
    return OkStatus();
  }
  std::printf("%5s %7s %9s %9s %9s %9s %8s  %s\n", "round", "version", "sites", "bal_acc",
              "macro_auc", "loss", "seconds", "sha256");
  for (const auto& r : rounds) {
    const std::string sites = std::to_string(r.sites_reported()) + "/" +
                              std::to_string(r.sites_selected());
    std::printf("%5lld %7lld %9s %9.3f %9.3f %9.4f %8.1f  %.16s\n",
                static_cast<long long>(r.round()), static_cast<long long>(r.model_version()),
                sites.c_str(), Metric(r.metrics_json(), "balanced_accuracy"),
                Metric(r.metrics_json(), "macro_auc"), Metric(r.metrics_json(), "loss"),
                r.finished_unix_s() - r.started_unix_s(), r.model_sha256_hex().c_str());
  }
  return OkStatus();
}

Status WriteMetrics(const CoordinatorFlags& f, const std::string& format,
                    const std::string& out_path) {
  DF_ASSIGN_OR_RETURN(MonitorClient client, ConnectToCoordinator(f));
  DF_ASSIGN_OR_RETURN(std::vector<v1::RoundInfo> rounds, client.Rounds());
  const std::string text = format == "json" ? RoundMetricsJson(rounds) : RoundMetricsCsv(rounds);
  if (out_path.empty()) {
    std::cout << text;
    return OkStatus();
  }
  DF_RETURN_IF_ERROR(WriteOutputFile(out_path, text));
  std::printf("%zu rounds written to %s\n", rounds.size(), out_path.c_str());
  return OkStatus();
}

Status PrintSites(const MonitorFlags& f) {
  DF_ASSIGN_OR_RETURN(MonitorClient client, ConnectToCoordinator(f));
  DF_ASSIGN_OR_RETURN(std::vector<v1::SiteInfo> sites, client.Sites());
  if (f.json) {
    for (const auto& s : sites) std::cout << ToJson(s) << "\n";
    return OkStatus();
  }
  std::printf("%-24s %-12s %10s %8s %10s  %s\n", "site", "status", "train_rows", "rounds",
              "last_round", "last_seen");
  for (const auto& s : sites) {
    std::printf("%-24s %-12s %10lld %8lld %10lld  %s\n", s.name().c_str(), s.status().c_str(),
                static_cast<long long>(s.train_rows()),
                static_cast<long long>(s.rounds_contributed()),
                static_cast<long long>(s.last_round()), Utc(s.last_seen_unix_ms()).c_str());
  }
  return OkStatus();
}

std::string EventLine(const v1::Event& e) {
  const std::string kind = HumanName(v1::Event::Kind_Name(e.kind()));
  std::string line = Utc(e.unix_ms()) + " #" + std::to_string(e.seq()) + " round " +
                     std::to_string(e.round()) + " " + kind;
  if (!e.site().empty()) line += " " + e.site();
  if (!e.message().empty()) line += ": " + e.message();
  if (!e.metrics().empty()) {
    std::map<std::string, double> sorted(e.metrics().begin(), e.metrics().end());
    std::string m;
    for (const auto& [k, v] : sorted) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%s=%.4g", k.c_str(), v);
      m += (m.empty() ? "" : ", ") + std::string(buf);
    }
    line += " (" + m + ")";
  }
  return line;
}

}  // namespace

void RegisterMonitorCommands(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<MonitorFlags>();

  CLI::App* status = app.add_subcommand("status", "The federation's state, round and last metrics");
  AddMonitorFlags(status, *f);
  status->callback([f, &exit_code] { Run("status", exit_code, [&] { return PrintStatus(*f); }); });

  CLI::App* rounds = app.add_subcommand("rounds", "Completed rounds with their global metrics");
  AddMonitorFlags(rounds, *f);
  rounds->callback([f, &exit_code] { Run("rounds", exit_code, [&] { return PrintRounds(*f); }); });

  auto metrics_format = std::make_shared<std::string>("csv");
  auto metrics_out = std::make_shared<std::string>();
  CLI::App* metrics = app.add_subcommand(
      "metrics", "Every completed round's global metrics as a CSV or JSON table, for analysis");
  AddCoordinatorFlags(metrics, *f);
  metrics->add_option("--format", *metrics_format, "csv or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"csv", "json"}));
  metrics->add_option("--out", *metrics_out, "file to write (default: stdout)");
  metrics->callback([f, metrics_format, metrics_out, &exit_code] {
    Run("metrics", exit_code, [&] { return WriteMetrics(*f, *metrics_format, *metrics_out); });
  });

  CLI::App* sites = app.add_subcommand("sites", "The sites and what each is doing");
  AddMonitorFlags(sites, *f);
  sites->callback([f, &exit_code] { Run("sites", exit_code, [&] { return PrintSites(*f); }); });

  auto after = std::make_shared<int64_t>(0);
  auto until_round = std::make_shared<int64_t>(0);
  CLI::App* watch = app.add_subcommand(
      "watch", "Follow the federation's events live until it ends (Ctrl-C to leave)");
  AddMonitorFlags(watch, *f);
  watch->add_option("--after-seq", *after, "start after this event number (0 = all retained)")
      ->check(CLI::NonNegativeNumber);
  watch->add_option("--until-round", *until_round,
                    "leave once this round has been evaluated (0 = follow to the end)")
      ->check(CLI::NonNegativeNumber);
  watch->callback([f, after, until_round, &exit_code] {
    Run("watch", exit_code, [&]() -> Status {
      DF_ASSIGN_OR_RETURN(MonitorClient client, ConnectToCoordinator(*f));
      return client.Watch(*after, [&](const v1::Event& e) {
        std::cout << (f->json ? ToJson(e) : EventLine(e)) << std::endl;
        return !(*until_round > 0 && e.kind() == v1::Event::ROUND_EVALUATED &&
                 e.round() >= *until_round);
      });
    });
  });

  struct Control {
    const char* name;
    const char* help;
    StatusOr<v1::ControlResponse> (MonitorClient::*call)(const std::string&);
  };
  for (const Control& c :
       {Control{"pause", "Admin: finish the current round, then start no new one until resumed",
                &MonitorClient::Pause},
        Control{"resume", "Admin: resume a paused federation", &MonitorClient::Resume},
        Control{"stop", "Admin: end the federation now; completed rounds are kept",
                &MonitorClient::Stop}}) {
    auto reason = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand(c.name, c.help);
    AddMonitorFlags(cmd, *f);
    cmd->add_option("--reason", *reason, "why (recorded in the coordinator's log and events)");
    cmd->callback([f, reason, c, &exit_code] {
      Run(c.name, exit_code, [&]() -> Status {
        DF_ASSIGN_OR_RETURN(MonitorClient client, ConnectToCoordinator(*f));
        DF_ASSIGN_OR_RETURN(v1::ControlResponse r, (client.*c.call)(*reason));
        if (f->json) {
          std::cout << ToJson(r) << "\n";
        } else {
          std::cout << r.message() << " (state: " << StateName(r.state()) << ")\n";
        }
        return OkStatus();
      });
    });
  }

  auto which = std::make_shared<DownloadFlags>();
  auto out = std::make_shared<std::string>();
  CLI::App* download = app.add_subcommand(
      "download", "Download a global model into a RUN folder for dermfed eval/predict");
  AddMonitorFlags(download, *f);
  AddDownloadFlags(download, *which);
  download->add_option("--out", *out, "RUN folder to write")->required();
  download->callback([f, which, out, &exit_code] {
    Run("download", exit_code, [&]() -> Status {
      DF_ASSIGN_OR_RETURN(MonitorClient client, ConnectToCoordinator(*f));
      DF_ASSIGN_OR_RETURN(DownloadedModel model, DownloadRun(client, *which, *out));
      if (f->json) {
        nlohmann::json j = {{"model_version", model.model_version},
                            {"sha256", model.sha256_hex},
                            {"bytes", model.bytes},
                            {"out", *out}};
        std::cout << j.dump() << "\n";
      } else {
        std::printf("model version %lld (%llu bytes, sha256 %s) written to %s\n",
                    static_cast<long long>(model.model_version),
                    static_cast<unsigned long long>(model.bytes), model.sha256_hex.c_str(),
                    out->c_str());
      }
      return OkStatus();
    });
  });
}

}  // namespace dermfed::client
