// dermfed-site: the hospital's daemon. See docs/configuration.md for its settings.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <thread>

#include "client/federation/site_daemon.h"

int main(int argc, char** argv) {
  CLI::App app{"dermfed-site: trains DualRefNet on this site's data for a federation"};
  std::string config_path;
  std::vector<std::string> sets;
  app.add_option("--config", config_path, "TOML configuration file (docs/configuration.md)")
      ->check(CLI::ExistingFile);
  app.add_option("--set", sets, "KEY=VALUE override, e.g. --set site.data=/data/pad")
      ->expected(0, -1);
  std::map<std::string, std::string> overrides;
  for (const auto& key : dermfed::client::SiteConfigKeys()) {
    app.add_option_function<std::string>(
        "--" + key.name, [&overrides, name = key.name](const std::string& v) { overrides[name] = v; },
        key.help + " (default: " + key.default_value + ")");
  }
  CLI11_PARSE(app, argc, argv);
  for (const auto& kv : sets) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) {
      std::cerr << "dermfed-site: --set '" << kv << "': expected KEY=VALUE\n";
      return 2;
    }
    overrides[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto config = dermfed::client::LoadSiteConfig(config_path, overrides);
  if (!config.ok()) {
    std::cerr << "dermfed-site: " << config.status().message() << "\n";
    return 2;
  }
  static std::atomic<bool> stop{false};
  signal(SIGTERM, [](int) { stop = true; });
  signal(SIGINT, [](int) { stop = true; });
  auto s = dermfed::client::RunSiteDaemon(*config, stop);
  if (!s.ok()) {
    std::cerr << "dermfed-site: " << s.message() << "\n";
    return 1;
  }
  return 0;
}
