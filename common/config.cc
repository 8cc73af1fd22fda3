#include "common/config.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <toml++/toml.h>

namespace dermfed {
namespace {

const char* TypeName(ConfigType t) {
  switch (t) {
    case ConfigType::kString: return "string";
    case ConfigType::kInt: return "integer";
    case ConfigType::kDouble: return "float";
    case ConfigType::kBool: return "boolean";
  }
  return "?";
}

// Flattens a TOML table into "a.b.c" -> node, refusing arrays (no key takes one).
Status Flatten(const toml::table& table, const std::string& prefix, const std::string& source,
               std::map<std::string, std::string>* out,
               std::map<std::string, toml::node_type>* types) {
  for (const auto& [k, node] : table) {
    const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const toml::table* sub = node.as_table()) {
      DF_RETURN_IF_ERROR(Flatten(*sub, key, source, out, types));
      continue;
    }
    std::ostringstream text;
    if (const auto* s = node.as_string()) {
      text << s->get();
    } else if (const auto* i = node.as_integer()) {
      text << i->get();
    } else if (const auto* d = node.as_floating_point()) {
      text.precision(17);
      text << d->get();
    } else if (const auto* b = node.as_boolean()) {
      text << (b->get() ? "true" : "false");
    } else {
      return InvalidArgumentError(source + ": key '" + key + "' has a value of a type no "
                                  "setting takes (arrays, dates and inline tables are not used)");
    }
    (*out)[key] = text.str();
    (*types)[key] = node.type();
  }
  return OkStatus();
}

}  // namespace

Status Config::Set(Value& v, const std::string& text, const std::string& key,
                   const std::string& source) {
  auto bad = [&](const char* what) {
    return InvalidArgumentError(source + ": '" + key + "' must be " + what + ", got '" + text +
                                "'");
  };
  switch (v.type) {
    case ConfigType::kString:
      v.text = text;
      break;
    case ConfigType::kInt: {
      char* end = nullptr;
      errno = 0;
      long long x = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno != 0) return bad("an integer");
      v.i = x;
      v.d = static_cast<double>(x);
      v.text = text;
      break;
    }
    case ConfigType::kDouble: {
      char* end = nullptr;
      double x = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(x)) return bad("a number");
      v.d = x;
      v.text = text;
      break;
    }
    case ConfigType::kBool:
      if (text == "true") {
        v.b = true;
      } else if (text == "false") {
        v.b = false;
      } else {
        return bad("true or false");
      }
      v.text = text;
      break;
  }
  v.source = source;
  return OkStatus();
}

StatusOr<Config> Config::FromString(const std::vector<ConfigKey>& keys, const std::string& toml_text,
                                    const std::string& source,
                                    const std::map<std::string, std::string>& overrides) {
  Config c;
  for (const ConfigKey& k : keys) {
    Value v;
    v.type = k.type;
    DF_RETURN_IF_ERROR(Set(v, k.default_value, k.name, "default"));
    v.source = "default";
    c.values_[k.name] = v;
  }
  if (!toml_text.empty()) {
    toml::table table;
    try {
      table = toml::parse(toml_text, source);
    } catch (const toml::parse_error& e) {
      std::ostringstream os;
      os << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
         << e.description();
      return InvalidArgumentError(os.str());
    }
    std::map<std::string, std::string> flat;
    std::map<std::string, toml::node_type> types;
    DF_RETURN_IF_ERROR(Flatten(table, "", source, &flat, &types));
    for (const auto& [key, text] : flat) {
      auto it = c.values_.find(key);
      if (it == c.values_.end()) {
        return InvalidArgumentError(source + ": unknown key '" + key +
                                    "' (see docs/configuration.md for the keys)");
      }
      const toml::node_type t = types[key];
      const ConfigType want = it->second.type;
      const bool ok = (want == ConfigType::kString && t == toml::node_type::string) ||
                      (want == ConfigType::kInt && t == toml::node_type::integer) ||
                      (want == ConfigType::kDouble && (t == toml::node_type::floating_point ||
                                                       t == toml::node_type::integer)) ||
                      (want == ConfigType::kBool && t == toml::node_type::boolean);
      if (!ok) {
        return InvalidArgumentError(source + ": '" + key + "' must be a " + TypeName(want) +
                                    ", got '" + text + "'");
      }
      DF_RETURN_IF_ERROR(Set(it->second, text, key, source));
    }
  }
  for (const auto& [key, text] : overrides) {
    auto it = c.values_.find(key);
    if (it == c.values_.end()) {
      return InvalidArgumentError("command line: unknown setting '" + key + "'");
    }
    DF_RETURN_IF_ERROR(Set(it->second, text, key, "command line"));
  }
  return c;
}

StatusOr<Config> Config::Load(const std::vector<ConfigKey>& keys, const std::string& path,
                              const std::map<std::string, std::string>& overrides) {
  std::string text;
  if (!path.empty()) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return NotFoundError(path + ": cannot open config file");
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
      text.append(buf, n);
      if (text.size() > (4u << 20)) {
        std::fclose(f);
        return InvalidArgumentError(path + ": config file larger than 4 MiB");
      }
    }
    std::fclose(f);
  }
  return FromString(keys, text, path.empty() ? "defaults" : path, overrides);
}

const Config::Value& Config::Find(const std::string& name, ConfigType type) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.type != type) {
    std::fprintf(stderr, "internal error: config key '%s' is not declared as %s\n", name.c_str(),
                 TypeName(type));
    std::abort();
  }
  return it->second;
}

const std::string& Config::GetString(const std::string& n) const {
  return Find(n, ConfigType::kString).text;
}
int64_t Config::GetInt(const std::string& n) const { return Find(n, ConfigType::kInt).i; }
double Config::GetDouble(const std::string& n) const { return Find(n, ConfigType::kDouble).d; }
bool Config::GetBool(const std::string& n) const { return Find(n, ConfigType::kBool).b; }

const std::string& Config::SourceOf(const std::string& name) const {
  static const std::string kUnknown = "unknown";
  auto it = values_.find(name);
  return it == values_.end() ? kUnknown : it->second.source;
}

std::string ConfigReferenceMarkdown(const std::vector<ConfigKey>& keys) {
  std::ostringstream os;
  os << "| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
  for (const ConfigKey& k : keys) {
    os << "| `" << k.name << "` | " << TypeName(k.type) << " | `"
       << (k.type == ConfigType::kString ? "\"" + k.default_value + "\"" : k.default_value)
       << "` | " << k.help << " |\n";
  }
  return os.str();
}

}  // namespace dermfed
