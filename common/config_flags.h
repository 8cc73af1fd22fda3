// Command-line side of the config loader (common/config.h) for the daemons: `--config FILE`,
// one `--KEY VALUE` flag per declared key (so `--help` lists them all), and repeatable
// `--set KEY=VALUE`. Header-only because only binaries use it (the libraries do not link
// CLI11).
#ifndef DERMFED_COMMON_CONFIG_FLAGS_H_
#define DERMFED_COMMON_CONFIG_FLAGS_H_

#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace dermfed {

struct ConfigFlags {
  std::string config_path;
  std::vector<std::string> sets;
  std::map<std::string, std::string> overrides;

  // The overrides from --KEY flags and --set, or an error for a malformed --set.
  StatusOr<std::map<std::string, std::string>> Overrides() const {
    std::map<std::string, std::string> out = overrides;
    for (const auto& kv : sets) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos) {
        return InvalidArgumentError("--set '" + kv + "': expected KEY=VALUE");
      }
      out[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    return out;
  }
};

// REQUIRES: `flags` outlives parsing.
inline void AddConfigFlags(CLI::App& app, const std::vector<ConfigKey>& keys, ConfigFlags* flags) {
  app.add_option("--config", flags->config_path, "TOML configuration file (docs/configuration.md)")
      ->check(CLI::ExistingFile);
  app.add_option("--set", flags->sets, "KEY=VALUE override, e.g. --set " + keys.front().name + "=...")
      ->expected(0, -1);
  for (const auto& key : keys) {
    app.add_option_function<std::string>(
        "--" + key.name, [flags, name = key.name](const std::string& v) { flags->overrides[name] = v; },
        key.help + " (default: " + key.default_value + ")");
  }
}

}  // namespace dermfed

#endif  // DERMFED_COMMON_CONFIG_FLAGS_H_
