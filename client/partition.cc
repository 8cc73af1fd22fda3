#include "client/partition.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/data/csv_reader.h"
#include "client/data/dataset_format.h"
#include "client/data/generic_csv_reader.h"
#include "client/data/isic_2019_reader.h"
#include "client/data/pad_ufes_20_reader.h"

namespace dermfed::client {
namespace {

namespace fs = std::filesystem;

constexpr char kSummaryFile[] = "partition.json";
constexpr char kSitePrefix[] = "site-";

// Draws from std::mt19937_64, whose sequence the standard fixes, with this file's own
// transformations: <random>'s distributions differ between standard libraries.
class PartitionRandom {
 public:
  explicit PartitionRandom(uint64_t seed) : engine_(seed) {}

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  // Uniform in (0, 1).
  double UniformOpen() {
    double u;
    do {
      u = Uniform();
    } while (u == 0.0);
    return u;
  }
  // Uniform in [0, n) without modulo bias. REQUIRES: n > 0.
  uint64_t Below(uint64_t n) {
    const uint64_t max = std::numeric_limits<uint64_t>::max();
    const uint64_t limit = max - max % n;
    uint64_t x;
    do {
      x = engine_();
    } while (x >= limit);
    return x % n;
  }
  template <typename T>
  void Shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[Below(i)]);
  }
  // Standard normal, Marsaglia's polar method.
  double Normal() {
    double u, v, s;
    do {
      u = 2.0 * Uniform() - 1.0;
      v = 2.0 * Uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * std::sqrt(-2.0 * std::log(s) / s);
  }
  // Gamma(shape, 1), Marsaglia and Tsang 2000; shapes below 1 through the boost
  // Gamma(a) = Gamma(a + 1) * U^(1/a). REQUIRES: shape > 0.
  double Gamma(double shape) {
    if (shape < 1.0) return Gamma(shape + 1.0) * std::pow(UniformOpen(), 1.0 / shape);
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    while (true) {
      double x, v;
      do {
        x = Normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = UniformOpen();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
      if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
    }
  }
  // Proportions over `n` parts drawn from a symmetric Dirichlet(alpha).
  std::vector<double> Dirichlet(int n, double alpha) {
    std::vector<double> p(n);
    double sum = 0;
    for (double& x : p) sum += (x = Gamma(alpha));
    if (!(sum > 0) || !std::isfinite(sum)) {
      // Every draw underflowed (tiny alpha): the limit is all mass on one part.
      std::fill(p.begin(), p.end(), 0.0);
      p[Below(n)] = 1.0;
      return p;
    }
    for (double& x : p) x /= sum;
    return p;
  }

 private:
  std::mt19937_64 engine_;
};

// The rows of one patient or lesion, which always travel together.
struct Group {
  std::vector<int> rows;
  int label = 0;          // the majority class of its rows (ties: the lower index)
  std::string value_key;  // column scheme: the canonical value ("" = none)
};

// Groups in order of first appearance in the dataset, so plans depend only on the file.
std::vector<Group> GroupRows(const Dataset& dataset) {
  std::vector<Group> groups;
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < dataset.rows.size(); ++i) {
    auto [it, inserted] = index.emplace(dataset.rows[i].group_id, groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].rows.push_back(static_cast<int>(i));
  }
  for (Group& group : groups) {
    std::vector<int64_t> counts = dataset.ClassCounts(group.rows);
    group.label = static_cast<int>(std::max_element(counts.begin(), counts.end()) - counts.begin());
  }
  return groups;
}

// The site with the fewest rows (ties: the lowest index).
int SmallestSite(const std::vector<int64_t>& site_rows) {
  return static_cast<int>(std::min_element(site_rows.begin(), site_rows.end()) - site_rows.begin());
}

std::vector<int> PlanIid(const std::vector<Group>& groups, int sites, PartitionRandom& random) {
  std::vector<int> order(groups.size());
  for (size_t g = 0; g < order.size(); ++g) order[g] = static_cast<int>(g);
  random.Shuffle(order);
  // Dealt class by class, so that each site's class mix is close to the pooled one too.
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return groups[a].label < groups[b].label; });
  std::vector<int> site_of_group(groups.size());
  std::vector<int64_t> site_rows(sites, 0);
  for (int g : order) {
    int site = SmallestSite(site_rows);
    site_of_group[g] = site;
    site_rows[site] += static_cast<int64_t>(groups[g].rows.size());
  }
  return site_of_group;
}

// Hsu et al. 2019: per class, proportions p ~ Dir(alpha) over the sites; the class's
// groups, shuffled, fill the sites in turn, each going to the site whose share of the
// class's rows contains the group's middle row.
std::vector<int> PlanDirichlet(const std::vector<Group>& groups, int num_classes, int sites,
                               double alpha, PartitionRandom& random) {
  std::vector<int> site_of_group(groups.size(), 0);
  for (int c = 0; c < num_classes; ++c) {
    std::vector<int> members;
    int64_t class_rows = 0;
    for (size_t g = 0; g < groups.size(); ++g) {
      if (groups[g].label != c) continue;
      members.push_back(static_cast<int>(g));
      class_rows += static_cast<int64_t>(groups[g].rows.size());
    }
    // Drawn for every class, present or not, so one class's absence does not shift the
    // proportions of the others.
    std::vector<double> p = random.Dirichlet(sites, alpha);
    if (members.empty()) continue;
    random.Shuffle(members);
    std::vector<double> bound(sites);
    double cumulative = 0;
    for (int s = 0; s < sites; ++s) bound[s] = (cumulative += p[s]);
    bound[sites - 1] = std::numeric_limits<double>::infinity();
    int64_t before = 0;
    for (int g : members) {
      const int64_t size = static_cast<int64_t>(groups[g].rows.size());
      const double middle = (static_cast<double>(before) + 0.5 * size) / class_rows;
      site_of_group[g] =
          static_cast<int>(std::upper_bound(bound.begin(), bound.end(), middle) - bound.begin());
      before += size;
    }
  }
  return site_of_group;
}

// Gives each empty site the smallest group of the site with the most rows among those with
// two or more groups. REQUIRES: groups.size() >= sites, so such a site exists while one is
// empty.
void FillEmptySites(const std::vector<Group>& groups, int sites, std::vector<int>& site_of_group) {
  while (true) {
    std::vector<int64_t> site_rows(sites, 0), site_groups(sites, 0);
    for (size_t g = 0; g < groups.size(); ++g) {
      site_rows[site_of_group[g]] += static_cast<int64_t>(groups[g].rows.size());
      ++site_groups[site_of_group[g]];
    }
    int empty = -1, donor = -1;
    for (int s = 0; s < sites; ++s) {
      if (site_groups[s] == 0 && empty < 0) empty = s;
      if (site_groups[s] >= 2 && (donor < 0 || site_rows[s] > site_rows[donor])) donor = s;
    }
    if (empty < 0 || donor < 0) return;
    int smallest = -1;
    for (size_t g = 0; g < groups.size(); ++g) {
      if (site_of_group[g] != donor) continue;
      if (smallest < 0 || groups[g].rows.size() < groups[smallest].rows.size()) {
        smallest = static_cast<int>(g);
      }
    }
    site_of_group[smallest] = empty;
  }
}

// Column scheme: sets each group's value_key and returns the display name of each key (its
// first spelling in the file, trimmed; kMissingValueName for "").
StatusOr<std::map<std::string, std::string>> GroupValues(const Dataset& dataset,
                                                         const MetadataSchema& schema,
                                                         const std::string& column,
                                                         std::vector<Group>& groups) {
  const int index = dataset.MetadataColumn(column);
  if (index < 0) {
    return InvalidArgumentError(
        absl::StrCat(dataset.source_file, ": no metadata column '", column, "' to partition by (",
                     dataset.format, " has: ", absl::StrJoin(dataset.metadata_columns, ", "), ")"));
  }
  const ColumnSpec* spec = schema.FindColumn(column);
  std::unordered_set<std::string> missing = {""};
  for (const std::string& token :
       spec != nullptr ? schema.MissingValuesOf(*spec) : schema.missing_values) {
    missing.insert(CanonicalValue(token));
  }
  std::map<std::string, std::string> names;
  for (Group& group : groups) {
    std::map<std::string, int64_t> counts;
    for (int r : group.rows) {
      const std::string& raw = dataset.rows[r].metadata[index];
      std::string key = CanonicalValue(raw);
      if (missing.count(key) > 0) continue;
      names.emplace(key, std::string(absl::StripAsciiWhitespace(raw)));
      ++counts[key];
    }
    group.value_key.clear();
    int64_t best = 0;
    for (const auto& [key, count] : counts) {  // ascending keys: ties go to the first
      if (count > best) {
        best = count;
        group.value_key = key;
      }
    }
    if (group.value_key.empty()) names.emplace("", kMissingValueName);
  }
  return names;
}

StatusOr<PartitionPlan> PlanColumn(const Dataset& dataset, const MetadataSchema& schema,
                                   const PartitionOptions& options, std::vector<Group>& groups,
                                   std::vector<int>& site_of_group) {
  DF_ASSIGN_OR_RETURN(auto names, GroupValues(dataset, schema, options.column, groups));
  std::map<std::string, int64_t> value_rows;
  for (const Group& group : groups) {
    value_rows[group.value_key] += static_cast<int64_t>(group.rows.size());
  }
  if (static_cast<int>(value_rows.size()) < options.sites) {
    std::vector<std::string> shown;
    for (const auto& [key, rows] : value_rows) shown.push_back(names[key]);
    return InvalidArgumentError(
        absl::StrCat(dataset.source_file, ": column '", options.column, "' has ", value_rows.size(),
                     " value", value_rows.size() == 1 ? "" : "s", " (", absl::StrJoin(shown, ", "),
                     "), fewer than the ", options.sites, " sites; each value goes to one site"));
  }
  std::vector<std::pair<std::string, int64_t>> order(value_rows.begin(), value_rows.end());
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  PartitionPlan plan;
  plan.site_values.resize(options.sites);
  std::map<std::string, int> site_of_value;
  std::vector<int64_t> site_rows(options.sites, 0);
  for (const auto& [key, rows] : order) {
    int site = SmallestSite(site_rows);
    site_of_value[key] = site;
    site_rows[site] += rows;
    plan.site_values[site].push_back(names[key]);
  }
  for (size_t g = 0; g < groups.size(); ++g) site_of_group[g] = site_of_value[groups[g].value_key];
  return plan;
}

// One CSV file as text: the header's bytes and each record's bytes (its line break
// included), found by the project's CsvReader so that quoted line breaks stay inside their
// record. Copying bytes keeps each row exactly as the site's source wrote it.
struct CsvText {
  std::string header_text;
  std::vector<std::string> header;
  struct Record {
    int64_t line = 0;
    std::vector<std::string> fields;
    std::string text;
  };
  std::vector<Record> records;  // well-formed data records (field count = header's)
};

StatusOr<CsvText> ReadCsvText(const std::string& path, const CsvOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(absl::StrCat(path, ": cannot open for reading"));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return DataLossError(absl::StrCat(path, ": read error"));
  // A last record without a line break gets the file's first kind of line break, so that
  // every record ends with one and records can be appended after it.
  if (!bytes.empty() && bytes.back() != '\n' && bytes.back() != '\r') {
    size_t brk = bytes.find_first_of("\r\n");
    if (brk == std::string::npos || bytes[brk] == '\n') {
      bytes += "\n";
    } else {
      bytes += (brk + 1 < bytes.size() && bytes[brk + 1] == '\n') ? "\r\n" : "\r";
    }
  }
  // Where each physical line starts, counted as CsvReader counts them (LF, CRLF, lone CR).
  std::vector<size_t> line_start = {0, 0};  // 1-based
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '\n' || (bytes[i] == '\r' && (i + 1 == bytes.size() || bytes[i + 1] != '\n'))) {
      line_start.push_back(i + 1);
    }
  }
  auto text_of = [&](int64_t first, int64_t end) -> StatusOr<std::string> {
    if (first < 1 || end <= first || end >= static_cast<int64_t>(line_start.size())) {
      return InternalError(absl::StrCat(path, ":", first, ": cannot locate the record's text"));
    }
    return bytes.substr(line_start[first], line_start[end] - line_start[first]);
  };

  CsvText csv;
  std::unique_ptr<CsvReader> reader = CsvReader::FromString(path, bytes, options);
  CsvRecord record;
  bool have_header = false;
  while (true) {
    StatusOr<bool> next = reader->Next(&record);
    if (!next.ok()) {
      if (!reader->can_continue()) return next.status();
      continue;  // a malformed row: the dataset reader did not take it either
    }
    if (!*next) break;
    // After a record, the reader stands at the line that follows its line break.
    DF_ASSIGN_OR_RETURN(std::string text, text_of(record.line, reader->line()));
    if (!have_header) {
      have_header = true;
      csv.header = record.fields;
      csv.header_text = std::move(text);
      continue;
    }
    if (record.fields.size() != csv.header.size()) continue;
    csv.records.push_back({record.line, std::move(record.fields), std::move(text)});
  }
  if (!have_header) return InvalidArgumentError(absl::StrCat(path, ": no header"));
  return csv;
}

Status WriteFile(const fs::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) return DataLossError(absl::StrCat(path.string(), ": cannot write"));
  return OkStatus();
}

// `path` made absolute and normal, without a trailing separator.
fs::path NormalPath(const fs::path& path) {
  std::error_code ec;
  fs::path normal = fs::absolute(path, ec).lexically_normal();
  if (ec) normal = path.lexically_normal();
  if (!normal.has_filename() && normal.has_parent_path() && normal != normal.root_path()) {
    normal = normal.parent_path();
  }
  return normal;
}

bool IsWithin(const fs::path& inner, const fs::path& outer) {
  if (outer.empty()) return false;
  auto mismatch = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
  return mismatch.first == outer.end();
}

// The folder the dataset's images are relative to: the dataset folder, or the generic
// manifest's folder.
fs::path DatasetRoot(const Dataset& dataset, const std::string& data_path) {
  if (dataset.format == GenericCsvReader::kFormat) {
    fs::path parent = fs::path(dataset.source_file).parent_path();
    return NormalPath(parent.empty() ? fs::path(".") : parent);
  }
  return NormalPath(data_path);
}

// The folder below which the format's reader searches for images by file name, or "" when
// the format names each image's path (generic).
fs::path ImageSearchRoot(const std::string& format, const std::string& data_path) {
  if (format == PadUfes20Reader::kFormat) return NormalPath(data_path);
  if (format == Isic2019Reader::kFormat) {
    return NormalPath(fs::path(data_path) / Isic2019Reader::kImageFolder);
  }
  return {};
}

// Refuses an OUT that already holds a partition, or lies where the input's reader searches
// for images (it would find the sites' copies next to the originals).
Status CheckOutDir(const fs::path& out, const fs::path& search_root) {
  std::error_code ec;
  if (!search_root.empty()) {
    const fs::path out_normal = NormalPath(out);
    if (IsWithin(out_normal, search_root) ||
        IsWithin(fs::weakly_canonical(out_normal, ec), fs::weakly_canonical(search_root, ec))) {
      return InvalidArgumentError(absl::StrCat(
          "--out ", out.string(), " is inside ", search_root.string(),
          ", where the input's reader searches for images; it would find the sites' copies "
          "as duplicates"));
    }
  }
  if (!fs::exists(out, ec)) return OkStatus();
  if (!fs::is_directory(out, ec)) {
    return FailedPreconditionError(absl::StrCat(out.string(), ": exists and is not a folder"));
  }
  std::vector<std::string> taken;
  for (fs::directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.rfind(kSitePrefix, 0) == 0 || name == kSummaryFile) taken.push_back(name);
  }
  if (ec)
    return FailedPreconditionError(absl::StrCat(out.string(), ": cannot list: ", ec.message()));
  if (!taken.empty()) {
    std::sort(taken.begin(), taken.end());
    return FailedPreconditionError(absl::StrCat(
        (out / taken.front()).string(), " already exists; partition writes into a folder with no ",
        kSitePrefix, "* folders or ", kSummaryFile, " (remove them or choose another --out)"));
  }
  return OkStatus();
}

// Copies (or hard-links) images into site folders, counting which it did.
class ImagePlacer {
 public:
  explicit ImagePlacer(bool link) : link_(link) {}

  Status Place(const fs::path& source, const fs::path& target) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(target, ec))) return OkStatus();  // placed for another row
    fs::create_directories(target.parent_path(), ec);
    if (ec) {
      return DataLossError(
          absl::StrCat(target.parent_path().string(), ": cannot create: ", ec.message()));
    }
    // Through links, so the site holds the image itself, never a link that may dangle.
    fs::path real = fs::canonical(source, ec);
    if (ec) return NotFoundError(absl::StrCat(source.string(), ": ", ec.message()));
    if (link_) {
      fs::create_hard_link(real, target, ec);
      if (!ec) {
        ++linked_;
        return OkStatus();
      }
      ec.clear();  // another file system, or links not allowed: copy instead
    }
    fs::copy_file(real, target, ec);
    if (ec) {
      return DataLossError(
          absl::StrCat("cannot copy ", real.string(), " to ", target.string(), ": ", ec.message()));
    }
    ++copied_;
    return OkStatus();
  }

  int64_t linked() const { return linked_; }
  int64_t copied() const { return copied_; }

 private:
  bool link_;
  int64_t linked_ = 0;
  int64_t copied_ = 0;
};

// The CSV files a site folder holds, each filtered to the site's rows.
struct SourceFiles {
  CsvText primary;           // Dataset::source_file: one record per row, by line
  std::string primary_name;  // file name inside the site folder
  CsvText secondary;         // ISIC-2019's metadata file, by image; empty otherwise
  std::string secondary_name;
  int secondary_image_column = -1;
};

StatusOr<SourceFiles> ReadSourceFiles(const Dataset& dataset, const PartitionOptions& options,
                                      const MetadataSchema& schema) {
  SourceFiles files;
  const CsvOptions csv_options;  // the readers' defaults (ReadOptions::csv)
  DF_ASSIGN_OR_RETURN(files.primary, ReadCsvText(dataset.source_file, csv_options));
  if (dataset.format == PadUfes20Reader::kFormat) {
    files.primary_name = PadUfes20Reader::kMetadataFile;
  } else if (dataset.format == Isic2019Reader::kFormat) {
    files.primary_name = Isic2019Reader::kGroundTruthFile;
    files.secondary_name = Isic2019Reader::kMetadataFile;
    const std::string path = (fs::path(options.data.path) / files.secondary_name).string();
    DF_ASSIGN_OR_RETURN(files.secondary, ReadCsvText(path, csv_options));
    auto column = std::find(files.secondary.header.begin(), files.secondary.header.end(), "image");
    if (column == files.secondary.header.end()) {
      return InvalidArgumentError(absl::StrCat(path, ": missing column 'image'"));
    }
    files.secondary_image_column = static_cast<int>(column - files.secondary.header.begin());
  } else {
    // Generic: named as the schema names it, so a site folder reads as a folder.
    files.primary_name = schema.manifest.has_value()
                             ? schema.manifest->file
                             : fs::path(dataset.source_file).filename().string();
  }
  return files;
}

// Writes one site folder: its CSV files and its images.
Status WriteSite(const Dataset& dataset, const SourceFiles& files, const fs::path& root,
                 const std::vector<int>& rows, const fs::path& site_dir, ImagePlacer& placer) {
  std::error_code ec;
  fs::create_directories(site_dir, ec);
  if (ec) return DataLossError(absl::StrCat(site_dir.string(), ": cannot create: ", ec.message()));

  std::unordered_set<int64_t> lines;
  std::unordered_set<std::string> images;
  for (int r : rows) {
    lines.insert(dataset.rows[r].source_line);
    images.insert(dataset.rows[r].row_id);
  }
  std::string text = files.primary.header_text;
  for (const CsvText::Record& record : files.primary.records) {
    if (lines.count(record.line) > 0) text += record.text;
  }
  DF_RETURN_IF_ERROR(WriteFile(site_dir / files.primary_name, text));
  if (!files.secondary_name.empty()) {
    // The reader uses an image's first metadata row; so does the site.
    std::string meta = files.secondary.header_text;
    std::unordered_set<std::string> written;
    for (const CsvText::Record& record : files.secondary.records) {
      const std::string& image = record.fields[files.secondary_image_column];
      if (images.count(image) > 0 && written.insert(image).second) meta += record.text;
    }
    DF_RETURN_IF_ERROR(WriteFile(site_dir / files.secondary_name, meta));
  }

  for (int r : rows) {
    const DatasetRow& row = dataset.rows[r];
    fs::path relative = NormalPath(row.image_path).lexically_relative(root);
    if (relative.empty() || relative.is_absolute() || *relative.begin() == "..") {
      return InvalidArgumentError(absl::StrCat(
          dataset.source_file, ":", row.source_line, ": image ", row.image_path, " is not below ",
          root.string(), ", so it has no place below a site folder"));
    }
    DF_RETURN_IF_ERROR(placer.Place(row.image_path, site_dir / relative));
  }
  return OkStatus();
}

// Reads a written site back with the normal reader and checks it holds exactly `rows`.
Status CheckSite(const Dataset& dataset, const DatasetReader& reader, const fs::path& site_dir,
                 const std::vector<int>& rows) {
  DF_ASSIGN_OR_RETURN(Dataset site, reader.Read(site_dir.string()));
  std::multiset<std::pair<std::string, int>> expected, found;
  for (int r : rows) expected.emplace(dataset.rows[r].row_id, dataset.rows[r].label);
  for (const DatasetRow& row : site.rows) found.emplace(row.row_id, row.label);
  if (expected != found) {
    return InternalError(absl::StrCat(site_dir.string(), ": reads back as ", site.rows.size(),
                                      " rows, but ", rows.size(), " were written"));
  }
  return OkStatus();
}

StatusOr<MetadataSchema> LoadSchema(const SiteDataOptions& data) {
  if (!data.schema_path.empty()) return LoadSchemaFile(data.schema_path);
  if (data.format == GenericCsvReader::kFormat) {
    return InvalidArgumentError("the generic format needs a schema file (--schema)");
  }
  return BuiltinSchema(data.format);
}

Status WriteAll(const PartitionOptions& options, const Dataset& dataset, const PartitionPlan& plan,
                const DatasetReader& reader, const MetadataSchema& schema,
                const std::vector<fs::path>& site_dirs, PartitionSummary& summary) {
  DF_ASSIGN_OR_RETURN(SourceFiles files, ReadSourceFiles(dataset, options, schema));
  const fs::path root = DatasetRoot(dataset, options.data.path);
  std::vector<std::vector<int>> site_rows(options.sites);
  for (size_t r = 0; r < dataset.rows.size(); ++r) {
    site_rows[plan.site_of_row[r]].push_back(static_cast<int>(r));
  }
  ImagePlacer placer(options.link_images);
  for (int s = 0; s < options.sites; ++s) {
    DF_RETURN_IF_ERROR(WriteSite(dataset, files, root, site_rows[s], site_dirs[s], placer));
    DF_RETURN_IF_ERROR(CheckSite(dataset, reader, site_dirs[s], site_rows[s]));
  }
  summary.images_linked = placer.linked();
  summary.images_copied = placer.copied();
  return WriteFile(fs::path(options.out_dir) / kSummaryFile, PartitionSummaryToJson(summary));
}

}  // namespace

StatusOr<PartitionScheme> ParsePartitionScheme(std::string_view name) {
  if (name == "iid") return PartitionScheme::kIid;
  if (name == "dirichlet") return PartitionScheme::kDirichlet;
  if (name == "column") return PartitionScheme::kColumn;
  return InvalidArgumentError(absl::StrCat("unknown partition scheme '", std::string(name),
                                           "' (known: iid, dirichlet, column)"));
}

const char* PartitionSchemeName(PartitionScheme scheme) {
  switch (scheme) {
    case PartitionScheme::kIid:
      return "iid";
    case PartitionScheme::kDirichlet:
      return "dirichlet";
    case PartitionScheme::kColumn:
      return "column";
  }
  return "?";
}

StatusOr<PartitionPlan> PlanPartition(const Dataset& dataset, const MetadataSchema& schema,
                                      const PartitionOptions& options) {
  if (options.sites < 1) {
    return InvalidArgumentError(
        absl::StrCat("partition: --sites is ", options.sites, "; it must be at least 1"));
  }
  if (options.scheme == PartitionScheme::kDirichlet &&
      !(options.alpha > 0 && std::isfinite(options.alpha))) {
    return InvalidArgumentError(
        absl::StrCat("partition: --alpha is ", options.alpha, "; it must be positive"));
  }
  if (options.scheme == PartitionScheme::kColumn && options.column.empty()) {
    return InvalidArgumentError("partition: the column scheme needs --column");
  }
  std::vector<Group> groups = GroupRows(dataset);
  if (static_cast<int>(groups.size()) < options.sites) {
    return InvalidArgumentError(absl::StrCat(dataset.source_file, ": ", groups.size(), " group",
                                             groups.size() == 1 ? "" : "s",
                                             " (patients or lesions) cannot fill ", options.sites,
                                             " sites; a group is never split between sites"));
  }
  PartitionRandom random(options.seed);
  PartitionPlan plan;
  std::vector<int> site_of_group(groups.size(), 0);
  switch (options.scheme) {
    case PartitionScheme::kIid:
      site_of_group = PlanIid(groups, options.sites, random);
      break;
    case PartitionScheme::kDirichlet:
      site_of_group = PlanDirichlet(groups, static_cast<int>(dataset.class_names.size()),
                                    options.sites, options.alpha, random);
      FillEmptySites(groups, options.sites, site_of_group);
      break;
    case PartitionScheme::kColumn: {
      DF_ASSIGN_OR_RETURN(plan, PlanColumn(dataset, schema, options, groups, site_of_group));
      break;
    }
  }
  plan.site_of_row.assign(dataset.rows.size(), 0);
  for (size_t g = 0; g < groups.size(); ++g) {
    for (int r : groups[g].rows) plan.site_of_row[r] = site_of_group[g];
  }
  return plan;
}

StatusOr<PartitionSummary> PartitionDataset(const PartitionOptions& options) {
  DF_ASSIGN_OR_RETURN(MetadataSchema schema, LoadSchema(options.data));
  ReadOptions read;
  read.skip_bad_rows = options.data.skip_bad_rows;
  DF_ASSIGN_OR_RETURN(auto reader, NewDatasetReader(options.data.format, read, &schema));
  DF_ASSIGN_OR_RETURN(Dataset dataset, reader->Read(options.data.path));
  if (options.out_dir.empty()) return InvalidArgumentError("partition: --out is empty");
  DF_RETURN_IF_ERROR(
      CheckOutDir(options.out_dir, ImageSearchRoot(dataset.format, options.data.path)));
  DF_ASSIGN_OR_RETURN(PartitionPlan plan, PlanPartition(dataset, schema, options));

  PartitionSummary summary;
  summary.format = dataset.format;
  summary.scheme = options.scheme;
  summary.alpha = options.alpha;
  if (options.scheme == PartitionScheme::kColumn) summary.column = options.column;
  summary.seed = options.seed;
  summary.class_names = dataset.class_names;
  summary.skipped_rows = static_cast<int64_t>(dataset.skipped.size());
  summary.sites.resize(options.sites);
  std::vector<std::unordered_set<std::string>> site_groups(options.sites);
  std::vector<fs::path> site_dirs;
  for (int s = 0; s < options.sites; ++s) {
    summary.sites[s].name = absl::StrCat(kSitePrefix, s + 1);
    summary.sites[s].class_counts.assign(dataset.class_names.size(), 0);
    if (!plan.site_values.empty()) summary.sites[s].values = plan.site_values[s];
    site_dirs.push_back(fs::path(options.out_dir) / summary.sites[s].name);
  }
  for (size_t r = 0; r < dataset.rows.size(); ++r) {
    SitePartition& site = summary.sites[plan.site_of_row[r]];
    ++site.rows;
    ++site.class_counts[dataset.rows[r].label];
    site_groups[plan.site_of_row[r]].insert(dataset.rows[r].group_id);
  }
  for (int s = 0; s < options.sites; ++s) {
    summary.sites[s].groups = static_cast<int64_t>(site_groups[s].size());
  }

  Status written = WriteAll(options, dataset, plan, *reader, schema, site_dirs, summary);
  if (!written.ok()) {
    // CheckOutDir made sure none of these existed: they are this call's alone.
    std::error_code ec;
    for (const fs::path& dir : site_dirs) fs::remove_all(dir, ec);
    fs::remove(fs::path(options.out_dir) / kSummaryFile, ec);
    return written;
  }
  return summary;
}

std::string PartitionSummaryToJson(const PartitionSummary& summary) {
  nlohmann::ordered_json json;
  json["format"] = summary.format;
  json["scheme"] = PartitionSchemeName(summary.scheme);
  json["alpha"] = summary.scheme == PartitionScheme::kDirichlet
                      ? nlohmann::ordered_json(summary.alpha)
                      : nlohmann::ordered_json(nullptr);
  if (summary.scheme == PartitionScheme::kColumn) json["column"] = summary.column;
  json["seed"] = summary.seed;
  json["skipped_rows"] = summary.skipped_rows;
  nlohmann::ordered_json sites = nlohmann::ordered_json::array();
  for (const SitePartition& site : summary.sites) {
    nlohmann::ordered_json entry;
    entry["name"] = site.name;
    entry["rows"] = site.rows;
    entry["groups"] = site.groups;
    nlohmann::ordered_json counts = nlohmann::ordered_json::object();
    for (size_t c = 0; c < summary.class_names.size(); ++c) {
      counts[summary.class_names[c]] = site.class_counts[c];
    }
    entry["class_counts"] = std::move(counts);
    if (summary.scheme == PartitionScheme::kColumn) entry["values"] = site.values;
    sites.push_back(std::move(entry));
  }
  json["sites"] = std::move(sites);
  return json.dump(2) + "\n";
}

std::string FormatPartitionTable(const PartitionSummary& summary) {
  std::vector<std::string> header = {"site", "rows", "groups"};
  header.insert(header.end(), summary.class_names.begin(), summary.class_names.end());
  std::vector<std::vector<std::string>> cells;
  std::vector<int64_t> total(summary.class_names.size() + 2, 0);
  for (const SitePartition& site : summary.sites) {
    std::vector<std::string> line = {site.name, absl::StrCat(site.rows), absl::StrCat(site.groups)};
    total[0] += site.rows;
    total[1] += site.groups;
    for (size_t c = 0; c < site.class_counts.size(); ++c) {
      line.push_back(absl::StrCat(site.class_counts[c]));
      total[c + 2] += site.class_counts[c];
    }
    cells.push_back(std::move(line));
  }
  std::vector<std::string> last = {"total"};
  for (int64_t n : total) last.push_back(absl::StrCat(n));
  cells.push_back(std::move(last));

  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) {
    width[i] = header[i].size();
    for (const auto& line : cells) width[i] = std::max(width[i], line[i].size());
  }
  auto format_line = [&](const std::vector<std::string>& line, const std::string& extra) {
    std::string out = line[0] + std::string(width[0] - line[0].size(), ' ');
    for (size_t i = 1; i < line.size(); ++i) {
      absl::StrAppend(&out, "  ", std::string(width[i] - line[i].size(), ' '), line[i]);
    }
    if (!extra.empty()) absl::StrAppend(&out, "  ", extra);
    return out + "\n";
  };
  const bool by_column = summary.scheme == PartitionScheme::kColumn;
  std::string table = format_line(header, by_column ? summary.column : "");
  for (size_t i = 0; i < cells.size(); ++i) {
    std::string values;
    if (by_column && i < summary.sites.size())
      values = absl::StrJoin(summary.sites[i].values, ", ");
    table += format_line(cells[i], values);
  }
  return table;
}

}  // namespace dermfed::client
