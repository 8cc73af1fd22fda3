#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "client/cli/commands.h"
#include "client/simulate.h"

namespace dermfed::client {

void RegisterSimulateCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<SimulateOptions>();
  auto sets = std::make_shared<std::vector<std::string>>();
  auto site_sets = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand(
      "simulate", "Run a federation on this machine: a real coordinator and one real site "
                  "process per site folder, on loopback");
  cmd->add_option("--sites-dir", o->sites_dir, "folder with site-1 ... site-N (dermfed partition)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--format", o->format, "pad-ufes-20 or isic-2019")
      ->required()
      ->check(CLI::IsMember({"pad-ufes-20", "isic-2019"}));
  cmd->add_option("--backbone", o->backbone)->capture_default_str();
  cmd->add_option("--image-size", o->image_size)->capture_default_str()->check(CLI::Range(16, 1024));
  cmd->add_option("--rounds", o->rounds)->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--local-epochs", o->local_epochs)->capture_default_str()->check(CLI::Range(1, 10000));
  cmd->add_option("--strategy", o->strategy)->capture_default_str();
  cmd->add_option("--seed", o->seed)->capture_default_str();
  cmd->add_option("--threads", o->threads, "LibTorch threads shared by the sites (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--timeout", o->timeout_s, "seconds before the simulation is abandoned")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--set", *sets, "coordinator setting KEY=VALUE (docs/configuration.md)")
      ->expected(0, -1);
  cmd->add_option("--site-set", *site_sets, "setting KEY=VALUE for every site")->expected(0, -1);
  cmd->add_option("--out", o->out, "RUN folder: global model, history.json, state, logs")->required();
  cmd->add_option("--pki", o->pki,
                  "consortium PKI made by certs/make-test-pki.sh (default: a new one in OUT/pki)")
      ->check(CLI::ExistingDirectory);
  cmd->add_flag("--insecure", o->insecure, "no TLS, no certificates (loudly logged)");
  cmd->add_option("--dashboard", o->dashboard,
                  "serve the live dashboard on HOST:PORT (e.g. 127.0.0.1:8443; prints a login "
                  "address with a fresh token)");
  auto no_secagg = std::make_shared<bool>(false);
  cmd->add_flag("--no-secure-aggregation", *no_secagg,
                "send plaintext updates (secure aggregation is on by default with 2+ sites and "
                "a linear strategy)");
  cmd->callback([o, sets, site_sets, no_secagg, &exit_code] {
    o->secure_aggregation = !*no_secagg;
    for (auto* list : {sets.get(), site_sets.get()}) {
      for (const auto& kv : *list) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos) {
          std::cerr << "dermfed simulate: '" << kv << "': expected KEY=VALUE\n";
          exit_code = 2;
          return;
        }
        (list == sets.get() ? o->coordinator_settings : o->site_settings)[kv.substr(0, eq)] =
            kv.substr(eq + 1);
      }
    }
    Status s = RunSimulation(*o);
    if (!s.ok()) {
      std::cerr << "dermfed simulate: " << s.message() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace dermfed::client
