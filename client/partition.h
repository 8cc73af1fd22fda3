// `dermfed partition`: splits one dataset into N site datasets for simulating a federation.
// Each site folder (OUT/site-1 ... OUT/site-N) holds a dataset in the input's own format, so
// a site reads it with the normal reader: the CSV files keep their header and the exact text
// of each selected record (bytes copied, line endings and quoting included), and each image
// sits at the same path below the site folder as below the input folder.
//
// Rows are assigned by group (patient for PAD-UFES-20, lesion for ISIC-2019, the manifest's
// group column for generic data), so no group is in two sites. Schemes:
//   iid        groups shuffled, then taken class by class (a group's class is the majority
//              class of its rows), each dealt to the site with the fewest rows so far:
//              equal site sizes and class mixes close to the pooled one.
//   dirichlet  label skew after Hsu et al. 2019: for each class, site proportions are drawn
//              from Dir(alpha), and the class's groups are dealt to sites in those
//              proportions. Small alpha gives each site few classes; large alpha
//              approaches iid.
//   column     sites by the value of a metadata column (e.g. region): a group's value is the
//              most common non-missing value of its rows; values, largest first, each go to
//              the site with the fewest rows so far. Groups with no value (every row
//              missing, by the schema's missing tokens) form one more value, "(missing)",
//              placed like the others, so no row is dropped and each value is in one site.
// Every site gets at least one group. Randomness comes from std::mt19937_64 with this
// file's own shuffle and gamma sampling, so a seed gives the same split with any standard
// library.
//
// Thread-compatible: free functions over plain values.
#ifndef DERMFED_CLIENT_PARTITION_H_
#define DERMFED_CLIENT_PARTITION_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "client/data/dataset.h"
#include "client/data/metadata_schema.h"
#include "client/site_data.h"
#include "common/status.h"

namespace dermfed::client {

enum class PartitionScheme { kIid, kDirichlet, kColumn };

// "iid", "dirichlet" or "column"; InvalidArgument naming the known ones otherwise.
StatusOr<PartitionScheme> ParsePartitionScheme(std::string_view name);
const char* PartitionSchemeName(PartitionScheme scheme);

struct PartitionOptions {
  // The input: format, folder (generic: folder or manifest), schema (generic: required; it
  // also names the missing-value tokens for the column scheme), skip_bad_rows. Rows the
  // reader skips are in no site. use_metadata is ignored.
  SiteDataOptions data;
  int sites = 0;  // >= 1
  PartitionScheme scheme = PartitionScheme::kIid;
  double alpha = 0.5;  // dirichlet only; > 0
  std::string column;  // column only: a metadata column of the format or schema
  uint64_t seed = 1;
  // Created if absent; must hold no site-* entry and no partition.json, and must not lie
  // where the input's reader searches for images (PAD-UFES-20: the dataset folder;
  // ISIC-2019: its image folder), which would then find the sites' copies as duplicates.
  std::string out_dir;
  // true: hard-link images when OUT is on the input's file system, copying otherwise.
  // false: always copy.
  bool link_images = true;
};

// Which site each row of a dataset goes to.
struct PartitionPlan {
  std::vector<int> site_of_row;  // aligned with Dataset::rows; 0-based site index
  // Column scheme: the values placed in each site, largest first ("(missing)" for groups
  // without one). Empty for the other schemes.
  std::vector<std::vector<std::string>> site_values;
};

struct SitePartition {
  std::string name;  // "site-1" ...
  int64_t rows = 0;
  int64_t groups = 0;
  std::vector<int64_t> class_counts;  // aligned with PartitionSummary::class_names
  std::vector<std::string> values;    // column scheme only
};

struct PartitionSummary {
  std::string format;
  PartitionScheme scheme = PartitionScheme::kIid;
  double alpha = 0.0;  // as used; meaningful for dirichlet only
  std::string column;  // column scheme only
  uint64_t seed = 0;
  std::vector<std::string> class_names;
  std::vector<SitePartition> sites;
  int64_t skipped_rows = 0;  // rows the reader skipped (skip_bad_rows), in no site
  int64_t images_linked = 0;
  int64_t images_copied = 0;
};

// The name of the value bucket for groups with no value in the column scheme.
inline constexpr char kMissingValueName[] = "(missing)";

// Assigns the rows of `dataset` to options.sites sites by options.scheme (see the file
// comment); `schema` gives the missing-value tokens for the column scheme. Fails when
// sites < 1, when there are fewer groups (column: fewer values) than sites, when alpha is
// not positive, or when the column is not one of the dataset's metadata columns (naming
// it and the ones there are).
StatusOr<PartitionPlan> PlanPartition(const Dataset& dataset, const MetadataSchema& schema,
                                      const PartitionOptions& options);

// Reads the input, plans, writes OUT/site-1 ... OUT/site-N and OUT/partition.json, then reads
// every site back with the normal reader to check it holds exactly its planned rows. On
// failure, removes the site folders it created.
StatusOr<PartitionSummary> PartitionDataset(const PartitionOptions& options);

// The summary as partition.json's text: {format, scheme, alpha, column, seed, sites: [{name,
// rows, groups, class_counts: {CLASS: n, ...}, values}]} (alpha null unless dirichlet;
// column and values only for the column scheme).
std::string PartitionSummaryToJson(const PartitionSummary& summary);

// A table of per-site row, group and class counts, with a total line, for people.
std::string FormatPartitionTable(const PartitionSummary& summary);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_PARTITION_H_
