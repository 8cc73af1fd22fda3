#include "coordinator/explanations.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "common/metrics.h"

namespace dermfed::coordinator {
namespace {

// Spelled as in client/explain.h (the site's side of these keys).
constexpr char kImportancePrefix[] = "importance/";
constexpr char kRowsPrefix[] = "importance_rows/";

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// The class whose name, followed by '/', begins `rest` (the longest such), or -1.
int ClassOf(const std::string& rest, const std::vector<std::string>& class_names) {
  int best = -1;
  for (size_t c = 0; c < class_names.size(); ++c) {
    const std::string& name = class_names[c];
    if (rest.size() > name.size() + 1 && StartsWith(rest, name) && rest[name.size()] == '/' &&
        (best < 0 || name.size() > class_names[best].size())) {
      best = static_cast<int>(c);
    }
  }
  return best;
}

// One site's report, parsed.
struct SiteImportance {
  std::vector<double> rows;                             // [class]
  std::map<std::string, std::map<int, double>> values;  // feature -> class -> importance
};

SiteImportance Parse(const v1::MetricsReport& report, const std::vector<std::string>& classes) {
  const size_t k = classes.size();
  SiteImportance s;
  s.rows.assign(k, 0.0);
  for (const auto& [key, value] : report.metrics()) {
    if (!std::isfinite(value)) continue;
    if (StartsWith(key, kRowsPrefix)) {
      const auto it =
          std::find(classes.begin(), classes.end(), key.substr(sizeof(kRowsPrefix) - 1));
      if (it != classes.end() && value > 0) s.rows[it - classes.begin()] = std::floor(value);
    } else if (StartsWith(key, kImportancePrefix)) {
      const std::string rest = key.substr(sizeof(kImportancePrefix) - 1);
      const int c = ClassOf(rest, classes);
      if (c >= 0) s.values[rest.substr(classes[c].size() + 1)][c] = value;
    }
  }
  // No site outweighs its own evaluation: rows of a class <= that class's confusion row.
  if (report.confusion_size() == static_cast<int>(k * k)) {
    for (size_t c = 0; c < k; ++c) {
      double evaluated = 0;
      for (size_t p = 0; p < k; ++p) evaluated += static_cast<double>(report.confusion(c * k + p));
      s.rows[c] = std::min(s.rows[c], evaluated);
    }
  }
  return s;
}

std::string JsonList(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + JsonNumber(v[i]);
  return out + "]";
}

std::string JsonList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + JsonString(v[i]);
  return out + "]";
}

}  // namespace

std::string CombinedImportanceJson(const std::map<std::string, v1::MetricsReport>& reports,
                                   const std::vector<std::string>& class_names) {
  const size_t k = class_names.size();
  // feature -> class -> (Σ rows · importance, Σ rows)
  std::map<std::string, std::vector<std::pair<double, double>>> sums;
  std::vector<double> rows(k, 0.0);
  int sites = 0;
  for (const auto& [site, report] : reports) {
    const SiteImportance s = Parse(report, class_names);
    if (s.values.empty()) continue;
    ++sites;
    for (size_t c = 0; c < k; ++c) rows[c] += s.rows[c];
    for (const auto& [feature, by_class] : s.values) {
      auto& acc = sums[feature];
      acc.resize(k, {0.0, 0.0});
      for (const auto& [c, value] : by_class) {
        if (s.rows[c] <= 0) continue;
        acc[c].first += s.rows[c] * value;
        acc[c].second += s.rows[c];
      }
    }
  }
  if (sites == 0) return "";

  struct Feature {
    std::string name;
    std::vector<double> importance;  // [class]
    double overall = 0;
  };
  std::vector<Feature> features;
  for (const auto& [name, acc] : sums) {
    Feature f{name, std::vector<double>(k, NAN), 0};
    int n = 0;
    for (size_t c = 0; c < k; ++c) {
      if (acc[c].second <= 0) continue;
      f.importance[c] = acc[c].first / acc[c].second;
      f.overall += f.importance[c];
      ++n;
    }
    f.overall = n > 0 ? f.overall / n : NAN;
    features.push_back(std::move(f));
  }
  // Largest overall importance first; undefined last; ties by name (std::map order, stable).
  std::stable_sort(features.begin(), features.end(), [](const Feature& a, const Feature& b) {
    if (std::isnan(a.overall) != std::isnan(b.overall)) return std::isnan(b.overall);
    return a.overall > b.overall;
  });

  std::vector<std::string> names;
  std::vector<double> overall;
  for (const Feature& f : features) {
    names.push_back(f.name);
    overall.push_back(f.overall);
  }
  std::ostringstream json;
  json << "{\"measure\": "
       << JsonString(
              "drop in mean predicted probability of the true class when the feature "
              "is permuted")
       << ", \"features\": " << JsonList(names) << ", \"classes\": " << JsonList(class_names)
       << ", \"importance\": [";
  for (size_t c = 0; c < k; ++c) {
    std::vector<double> row;
    for (const Feature& f : features) row.push_back(f.importance[c]);
    json << (c ? ", " : "") << JsonList(row);
  }
  json << "], \"overall\": " << JsonList(overall) << ", \"rows\": [";
  for (size_t c = 0; c < k; ++c) json << (c ? ", " : "") << static_cast<int64_t>(rows[c]);
  json << "], \"sites\": " << sites << "}";
  return json.str();
}

}  // namespace dermfed::coordinator
