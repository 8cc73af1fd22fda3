#include "client/data/dataset.h"

#include <algorithm>
#include <unordered_set>

#include "absl/strings/str_cat.h"

namespace dermfed::client {

std::vector<int64_t> Dataset::ClassCounts() const {
  std::vector<int64_t> counts(class_names.size(), 0);
  for (const DatasetRow& row : rows) {
    if (row.label >= 0 && row.label < static_cast<int>(counts.size())) ++counts[row.label];
  }
  return counts;
}

std::vector<int64_t> Dataset::ClassCounts(const std::vector<int>& indices) const {
  std::vector<int64_t> counts(class_names.size(), 0);
  for (int i : indices) {
    if (i < 0 || i >= static_cast<int>(rows.size())) continue;
    int label = rows[i].label;
    if (label >= 0 && label < static_cast<int>(counts.size())) ++counts[label];
  }
  return counts;
}

int64_t Dataset::NumGroups() const {
  std::unordered_set<std::string> groups;
  for (const DatasetRow& row : rows) groups.insert(row.group_id);
  return static_cast<int64_t>(groups.size());
}

int Dataset::MetadataColumn(std::string_view name) const {
  auto it = std::find(metadata_columns.begin(), metadata_columns.end(), name);
  return it == metadata_columns.end() ? -1 : static_cast<int>(it - metadata_columns.begin());
}

std::string Dataset::SkippedReport(size_t max_lines) const {
  std::string report = absl::StrCat(skipped.size(), " row", skipped.size() == 1 ? "" : "s",
                                    " skipped", skipped.empty() ? "" : ":");
  for (size_t i = 0; i < skipped.size() && i < max_lines; ++i) {
    absl::StrAppend(&report, "\n  ", skipped[i].file, ":", skipped[i].line, ": ",
                    skipped[i].reason);
  }
  if (skipped.size() > max_lines) {
    absl::StrAppend(&report, "\n  ... and ", skipped.size() - max_lines, " more");
  }
  return report;
}

}  // namespace dermfed::client
