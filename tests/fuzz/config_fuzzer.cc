// TOML text into the one config loader (common/config.h), with the key tables of both
// daemons: Config::FromString against the coordinator's and the site's keys, then the whole
// of LoadCoordinatorConfig and LoadSiteConfig (reading the text from a file, converting and
// checking every combination) as dermfed-coordinator and dermfed-site do at start-up.
// Every refusal must name the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "client/federation/site_config.h"
#include "common/config.h"
#include "coordinator/coordinator_config.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void CheckNamesSource(const dermfed::Status& status, const std::string& source) {
  FUZZ_CHECK(status.message().find(source) != std::string::npos,
             "error does not name '" + source + "': " + status.ToString());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const auto* keys : {&coordinator::CoordinatorConfigKeys(), &client::SiteConfigKeys()}) {
    auto config = Config::FromString(*keys, text, "fuzz.toml");
    fuzz::Trace("config", config.status());
    if (!config.ok()) {
      CheckNamesSource(config.status(), "fuzz.toml");
      continue;
    }
    // Every declared key has a value of its type (the getters abort otherwise).
    for (const ConfigKey& k : *keys) {
      switch (k.type) {
        case ConfigType::kString:
          config->GetString(k.name);
          break;
        case ConfigType::kInt:
          config->GetInt(k.name);
          break;
        case ConfigType::kDouble:
          config->GetDouble(k.name);
          break;
        case ConfigType::kBool:
          config->GetBool(k.name);
          break;
      }
    }
  }
  const std::string path = fuzz::WriteScratchFile("config.toml", text);
  auto coordinator = coordinator::LoadCoordinatorConfig(path, {});
  fuzz::Trace("coordinator config", coordinator.status());
  if (!coordinator.ok()) CheckNamesSource(coordinator.status(), path);
  auto site = client::LoadSiteConfig(path, {});
  fuzz::Trace("site config", site.status());
  if (!site.ok()) CheckNamesSource(site.status(), path);
  return 0;
}
