// dermfed-site: the hospital's daemon. See docs/configuration.md for its settings.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <thread>

#include "client/federation/site_daemon.h"
#include "common/allocator.h"
#include "common/config_flags.h"

int main(int argc, char** argv) {
  dermfed::TuneAllocator();  // model-sized transfers in 2 MiB chunks: see common/allocator.h
  CLI::App app{"dermfed-site: trains DualRefNet on this site's data for a federation"};
  dermfed::ConfigFlags flags;
  dermfed::AddConfigFlags(app, dermfed::client::SiteConfigKeys(), &flags);
  CLI11_PARSE(app, argc, argv);
  auto overrides = flags.Overrides();
  if (!overrides.ok()) {
    std::cerr << "dermfed-site: " << overrides.status().message() << "\n";
    return 2;
  }
  auto config = dermfed::client::LoadSiteConfig(flags.config_path, *overrides);
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
