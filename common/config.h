// The one configuration loader of the tree: a TOML file, checked against a declared list of
// keys (name, type, default, help), with command-line overrides on top. Each daemon declares
// its keys in one table; the same table gives `--help` its flags, docs/configuration.md its
// reference, and the loader its checks. Unknown keys (typos) and wrong types are errors that
// name the file and the key; nothing is silently ignored.
//
// Thread-compatible: a Config is a value.
#ifndef DERMFED_COMMON_CONFIG_H_
#define DERMFED_COMMON_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace dermfed {

enum class ConfigType { kString, kInt, kDouble, kBool };

struct ConfigKey {
  std::string name;           // "section.key", e.g. "federation.rounds"
  ConfigType type;
  std::string default_value;  // as it would be written in TOML, without quotes for strings
  std::string help;
};

class Config {
 public:
  // Reads `path` (may be empty: defaults only), then applies `overrides` (key -> value text,
  // from flags). Every key must be in `keys`; values must have the declared type (an int is
  // accepted where a double is declared).
  static StatusOr<Config> Load(const std::vector<ConfigKey>& keys, const std::string& path,
                               const std::map<std::string, std::string>& overrides = {});
  static StatusOr<Config> FromString(const std::vector<ConfigKey>& keys, const std::string& toml,
                                     const std::string& source,
                                     const std::map<std::string, std::string>& overrides = {});

  // REQUIRES: `name` is a declared key of the matching type (else the program is wrong:
  // these abort with a message).
  const std::string& GetString(const std::string& name) const;
  int64_t GetInt(const std::string& name) const;
  double GetDouble(const std::string& name) const;
  bool GetBool(const std::string& name) const;

  // Where a key's value came from: "default", the file path, or "command line".
  const std::string& SourceOf(const std::string& name) const;

 private:
  struct Value {
    ConfigType type;
    std::string text;    // canonical text
    int64_t i = 0;
    double d = 0;
    bool b = false;
    std::string source;
  };
  const Value& Find(const std::string& name, ConfigType type) const;
  static Status Set(Value& v, const std::string& text, const std::string& key,
                    const std::string& source);

  std::map<std::string, Value> values_;
};

// Markdown table of the keys (name, type, default, help) for docs/configuration.md.
std::string ConfigReferenceMarkdown(const std::vector<ConfigKey>& keys);

}  // namespace dermfed

#endif  // DERMFED_COMMON_CONFIG_H_
