#include "client/data/split.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace dermfed::client {
namespace {

constexpr int kParts = 3;
constexpr std::array<const char*, kParts> kPartNames = {"train", "validation", "test"};

// SplitMix64: tiny, well mixed, and the same sequence everywhere.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) without modulo bias. REQUIRES: n > 0.
  uint64_t Below(uint64_t n) {
    uint64_t limit =
        std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
    uint64_t x;
    do {
      x = Next();
    } while (x >= limit);
    return x % n;
  }

 private:
  uint64_t state_;
};

struct Group {
  std::vector<int> rows;
  std::vector<int64_t> class_counts;
};

}  // namespace

StatusOr<DatasetSplit> SplitByGroup(const Dataset& dataset, const SplitFractions& fractions,
                                    uint64_t seed) {
  const std::array<double, kParts> fraction = {fractions.train, fractions.validation,
                                               fractions.test};
  double sum = 0;
  for (int p = 0; p < kParts; ++p) {
    if (!(fraction[p] >= 0) || !std::isfinite(fraction[p])) {
      return InvalidArgumentError(
          absl::StrCat("split: the ", kPartNames[p], " fraction is ", fraction[p]));
    }
    sum += fraction[p];
  }
  if (std::fabs(sum - 1.0) > 1e-6) {
    return InvalidArgumentError(absl::StrCat("split: fractions ", fraction[0], " + ", fraction[1],
                                             " + ", fraction[2], " = ", sum, ", expected 1"));
  }
  if (dataset.rows.empty()) {
    return FailedPreconditionError(
        absl::StrCat(dataset.source_file, ": cannot split an empty dataset"));
  }
  const int num_classes = static_cast<int>(dataset.class_names.size());

  // Groups in order of first appearance, so the result does not depend on hashing.
  std::map<std::string, int> group_of;
  std::vector<Group> groups;
  for (size_t i = 0; i < dataset.rows.size(); ++i) {
    const DatasetRow& row = dataset.rows[i];
    if (row.label < 0 || row.label >= num_classes) {
      return InvalidArgumentError(absl::StrCat(dataset.source_file, ":", row.source_line,
                                               ": label ", row.label, " is not a class index"));
    }
    auto [it, inserted] = group_of.emplace(row.group_id, static_cast<int>(groups.size()));
    if (inserted) groups.push_back(Group{{}, std::vector<int64_t>(num_classes, 0)});
    Group& group = groups[it->second];
    group.rows.push_back(static_cast<int>(i));
    ++group.class_counts[row.label];
  }

  // Fisher-Yates with our own generator, then largest groups first (stable, so the shuffle
  // decides among groups of one size). Large groups are hardest to place; small ones fill
  // in the remaining gaps.
  std::vector<int> order(groups.size());
  for (size_t g = 0; g < order.size(); ++g) order[g] = static_cast<int>(g);
  SplitMix64 random(seed);
  for (size_t g = order.size(); g > 1; --g) {
    std::swap(order[g - 1], order[random.Below(g)]);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return groups[a].rows.size() > groups[b].rows.size(); });

  const std::vector<int64_t> class_totals = dataset.ClassCounts();
  const double total_rows = static_cast<double>(dataset.rows.size());
  std::array<std::vector<double>, kParts> assigned;
  std::array<double, kParts> assigned_rows = {0, 0, 0};
  for (auto& counts : assigned) counts.assign(num_classes, 0.0);
  std::vector<int> part_of(groups.size(), 0);

  for (int g : order) {
    const Group& group = groups[g];
    int best = -1;
    double best_cost = 0, best_room = 0;
    for (int p = 0; p < kParts; ++p) {
      if (fraction[p] == 0) continue;
      // Change in sum over classes of ((count - target) / class_total)^2 for part p.
      double cost = 0;
      for (int c = 0; c < num_classes; ++c) {
        if (group.class_counts[c] == 0) continue;
        double target = fraction[p] * class_totals[c];
        double before = assigned[p][c] - target;
        double after = before + group.class_counts[c];
        cost += (after * after - before * before) /
                (static_cast<double>(class_totals[c]) * class_totals[c]);
      }
      // The part's row count counts as one more class, so that sizes follow the fractions
      // too where the classes leave a choice.
      double room = fraction[p] * total_rows - assigned_rows[p];
      double size_after = group.rows.size() - room;
      cost += (size_after * size_after - room * room) / (total_rows * total_rows);
      // Ties go to the part with the most room left.
      if (best < 0 || cost < best_cost - 1e-12 ||
          (std::fabs(cost - best_cost) <= 1e-12 && room > best_room)) {
        best = p;
        best_cost = cost;
        best_room = room;
      }
    }
    part_of[g] = best;
    for (int c = 0; c < num_classes; ++c) assigned[best][c] += group.class_counts[c];
    assigned_rows[best] += group.rows.size();
  }

  // Very small datasets: a part with a nonzero fraction may have been left empty because
  // each of its classes has too few groups to share. Give it the smallest group of the part
  // that has the most groups, as long as that part keeps at least one.
  for (int p = 0; p < kParts; ++p) {
    if (fraction[p] == 0) continue;
    std::array<int, kParts> groups_in = {0, 0, 0};
    for (int part : part_of) ++groups_in[part];
    if (groups_in[p] > 0) continue;
    int donor =
        static_cast<int>(std::max_element(groups_in.begin(), groups_in.end()) - groups_in.begin());
    if (groups_in[donor] < 2) break;  // reported below
    int smallest = -1;
    for (int g : order) {  // the last of the smallest in placement order
      if (part_of[g] == donor &&
          (smallest < 0 || groups[g].rows.size() <= groups[smallest].rows.size())) {
        smallest = g;
      }
    }
    part_of[smallest] = p;
  }

  DatasetSplit split;
  std::array<std::vector<int>*, kParts> parts = {&split.train, &split.validation, &split.test};
  for (size_t g = 0; g < groups.size(); ++g) {
    auto& part = *parts[part_of[g]];
    part.insert(part.end(), groups[g].rows.begin(), groups[g].rows.end());
  }
  for (int p = 0; p < kParts; ++p) {
    std::sort(parts[p]->begin(), parts[p]->end());
    if (fraction[p] > 0 && parts[p]->empty()) {
      return FailedPreconditionError(absl::StrCat(
          dataset.source_file, ": the ", kPartNames[p], " part is empty: ", groups.size(),
          " group(s) are too few for fractions ", fraction[0], "/", fraction[1], "/", fraction[2]));
    }
  }
  return split;
}

}  // namespace dermfed::client
