#include "client/datagen.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "client/image/codec.h"
#include "client/synthetic.h"

namespace dermfed::client {
namespace {

namespace fs = std::filesystem;

// Label order of the readers (client/data): PAD-UFES-20 ACK..SEK, ISIC-2019 MEL..SCC.
const std::vector<std::string> kPadClasses = {"ACK", "BCC", "MEL", "NEV", "SCC", "SEK"};
const std::vector<double> kPadCounts = {730, 845, 52, 244, 192, 235};
const std::vector<std::string> kIsicClasses = {"MEL", "NV", "BCC",  "AK",
                                               "BKL", "DF", "VASC", "SCC"};
const std::vector<double> kIsicCounts = {4522, 12875, 3323, 867, 2624, 239, 253, 628};

using Rng = std::mt19937_64;

double Uniform(Rng& rng) { return std::uniform_real_distribution<double>(0, 1)(rng); }
bool Chance(Rng& rng, double p) { return Uniform(rng) < p; }
template <typename T>
const T& Pick(Rng& rng, const std::vector<T>& v) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}
std::string Bool(bool b) { return b ? "True" : "False"; }
std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// Shuffled labels with exactly `counts[c]` of class c.
std::vector<int> LabelsFromCounts(const std::vector<int64_t>& counts, Rng& rng) {
  std::vector<int> labels;
  for (size_t c = 0; c < counts.size(); ++c)
    labels.insert(labels.end(), counts[c], static_cast<int>(c));
  std::shuffle(labels.begin(), labels.end(), rng);
  return labels;
}

// Draws the images for `labels` in chunks (bounded memory) and hands each as 8-bit RGB.
template <typename Fn>
Status DrawImages(const std::vector<int>& labels, int64_t num_classes, int size, uint64_t seed,
                  Fn&& write) {
  auto gen = at::detail::createCPUGenerator(seed);
  constexpr int64_t kChunk = 64;
  for (size_t begin = 0; begin < labels.size(); begin += kChunk) {
    const size_t end = std::min(labels.size(), begin + kChunk);
    std::vector<int64_t> chunk(labels.begin() + begin, labels.begin() + end);
    torch::Tensor imgs =
        DrawLesionImages(torch::tensor(chunk, torch::kInt64), num_classes, size, gen);
    torch::Tensor u8 =
        (imgs * 255).round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
    for (size_t i = begin; i < end; ++i) {
      Image img;
      img.width = img.height = size;
      const uint8_t* p = u8[static_cast<int64_t>(i - begin)].data_ptr<uint8_t>();
      img.rgb.assign(p, p + static_cast<size_t>(size) * size * 3);
      DF_RETURN_IF_ERROR(write(i, img));
    }
  }
  return OkStatus();
}

Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) return InternalError(path.string() + ": cannot write");
  return OkStatus();
}

// ---- PAD-UFES-20 ----

struct PadClassProfile {
  double age_mean;
  std::vector<std::string> regions;
  double itch, grew, hurt, changed, bleed, elevation, diameter_mean;
  double biopsed;
};

const std::vector<PadClassProfile>& PadProfiles() {
  static const std::vector<PadClassProfile> p = {
      {63,
       {"FACE", "FOREARM", "ARM", "HAND", "NOSE", "SCALP"},
       .6,
       .25,
       .1,
       .1,
       .1,
       .3,
       6,
       .5},  // ACK
      {62,
       {"FACE", "NOSE", "NECK", "CHEST", "BACK", "EAR"},
       .5,
       .6,
       .3,
       .3,
       .55,
       .7,
       10,
       1},                                                                                    // BCC
      {55, {"BACK", "ARM", "THIGH", "CHEST", "ABDOMEN"}, .3, .7, .2, .7, .3, .5, 14, 1},      // MEL
      {35, {"BACK", "CHEST", "ABDOMEN", "THIGH", "FACE"}, .15, .2, .05, .1, .05, .5, 5, .2},  // NEV
      {68,
       {"FACE", "LIP", "HAND", "FOREARM", "SCALP", "EAR"},
       .45,
       .75,
       .5,
       .4,
       .5,
       .8,
       12,
       1},                                                                                 // SCC
      {62, {"CHEST", "BACK", "FACE", "ABDOMEN", "NECK"}, .4, .3, .1, .2, .15, .6, 9, .3},  // SEK
  };
  return p;
}

const std::vector<std::string> kBackgrounds = {"POMERANIA",   "GERMANY", "BRAZIL",   "ITALY",
                                               "NETHERLANDS", "POLAND",  "PORTUGAL", "UNK"};

std::string Symptom(Rng& rng, double p) {
  if (Chance(rng, 0.05)) return "UNK";
  if (Chance(rng, 0.02)) return "";
  return Bool(Chance(rng, p));
}

Status GeneratePadUfes20(const DatagenOptions& o) {
  Rng rng(o.seed);
  const auto counts = ProportionalCounts(kPadCounts, o.images);
  std::vector<int> labels = LabelsFromCounts(counts, rng);

  // Group images into lesions (1-3 images) and lesions into patients (1-2 lesions); a
  // patient's lesions share a class, as most real patients' do.
  struct ImageRow {
    int label;
    int patient;
    int lesion;
    int index_in_lesion;
  };
  std::vector<ImageRow> rows;
  {
    std::vector<std::vector<int>> by_class(kPadClasses.size());
    for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(static_cast<int>(i));
    int patient = 0, lesion = 0;
    for (size_t c = 0; c < by_class.size(); ++c) {
      size_t i = 0;
      while (i < by_class[c].size()) {
        ++patient;
        const int lesions = Chance(rng, 0.2) ? 2 : 1;
        for (int l = 0; l < lesions && i < by_class[c].size(); ++l) {
          ++lesion;
          const int images = Chance(rng, 0.3) ? (Chance(rng, 0.3) ? 3 : 2) : 1;
          for (int k = 0; k < images && i < by_class[c].size(); ++k, ++i) {
            rows.push_back({static_cast<int>(c), patient, lesion, k + 1});
          }
        }
      }
    }
    std::shuffle(rows.begin(), rows.end(), rng);
  }

  std::string csv =
      "patient_id,lesion_id,smoke,drink,background_father,background_mother,age,pesticide,"
      "gender,skin_cancer_history,cancer_history,has_piped_water,has_sewage_system,"
      "fitspatrick,region,diameter_1,diameter_2,diagnostic,itch,grew,hurt,changed,bleed,"
      "elevation,img_id,biopsed\n";
  std::vector<std::string> file_names(rows.size());
  std::vector<int> row_labels(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const ImageRow& r = rows[i];
    const PadClassProfile& p = PadProfiles()[r.label];
    // Lesion-level values come from a generator seeded by the lesion, so every image of a
    // lesion carries the same metadata, as in the real file.
    Rng lr(o.seed * 7919 + static_cast<uint64_t>(r.lesion));
    const bool biopsed = Chance(lr, p.biopsed);
    // Non-biopsied rows in the real release mostly lack the questionnaire fields.
    const bool sparse = !biopsed && Chance(lr, 0.6);
    auto field = [&](const std::string& v) { return sparse ? std::string() : v; };
    const int age = std::clamp(
        static_cast<int>(std::lround(p.age_mean + 12 * std::normal_distribution<double>()(lr))), 6,
        94);
    const double d1 =
        std::max(1.0, std::round(p.diameter_mean + 3 * std::normal_distribution<double>()(lr)));
    const double d2 = std::max(1.0, std::round(d1 * (0.6 + 0.4 * Uniform(lr))));
    const std::string pid = "PAT_" + std::to_string(r.patient);
    const std::string img = pid + "_" + std::to_string(r.lesion) + "_" +
                            std::to_string(r.index_in_lesion + 10 * (r.lesion % 7)) + ".png";
    file_names[i] = img;
    row_labels[i] = r.label;
    const std::vector<std::string> cells = {
        pid,
        std::to_string(r.lesion),
        field(Bool(Chance(lr, 0.15))),
        field(Bool(Chance(lr, 0.3))),
        field(Pick(lr, kBackgrounds)),
        field(Pick(lr, kBackgrounds)),
        std::to_string(age),
        field(Bool(Chance(lr, 0.3))),
        field(Chance(lr, 0.5) ? "FEMALE" : "MALE"),
        field(Bool(Chance(lr, r.label == 3 ? 0.2 : 0.6))),
        field(Bool(Chance(lr, 0.5))),
        field(Bool(Chance(lr, 0.85))),
        field(Bool(Chance(lr, 0.7))),
        field(Fixed(
            std::clamp(1 + static_cast<int>(Uniform(lr) * 3 + (r.label == 3 ? 1 : 0)), 1, 6), 1)),
        Pick(lr, p.regions),
        biopsed || !sparse ? Fixed(d1, 1) : "",
        biopsed || !sparse ? Fixed(d2, 1) : "",
        kPadClasses[r.label],
        Symptom(lr, p.itch),
        Symptom(lr, p.grew),
        Symptom(lr, p.hurt),
        Symptom(lr, p.changed),
        Symptom(lr, p.bleed),
        Symptom(lr, p.elevation),
        img,
        Bool(biopsed),
    };
    for (size_t c = 0; c < cells.size(); ++c) csv += (c ? "," : "") + cells[c];
    csv += "\n";
  }
  const fs::path root(o.out_dir);
  for (int part = 1; part <= 3; ++part)
    fs::create_directories(root / "images" / ("imgs_part_" + std::to_string(part)));
  DF_RETURN_IF_ERROR(DrawImages(row_labels, static_cast<int64_t>(kPadClasses.size()), o.image_size,
                                o.seed, [&](size_t i, const Image& img) -> Status {
                                  DF_ASSIGN_OR_RETURN(auto png, EncodePng(img));
                                  const fs::path dir =
                                      root / "images" / ("imgs_part_" + std::to_string(i % 3 + 1));
                                  return WriteFileBytes((dir / file_names[i]).string(), png);
                                }));
  return WriteText(root / "metadata.csv", csv);
}

// ---- ISIC-2019 ----

Status GenerateIsic2019(const DatagenOptions& o) {
  Rng rng(o.seed);
  const auto counts = ProportionalCounts(kIsicCounts, o.images);
  std::vector<int> labels = LabelsFromCounts(counts, rng);
  const std::vector<double> age_mean = {60, 45, 65, 68, 60, 48, 45, 70};
  const std::vector<std::vector<std::string>> sites = {
      {"posterior torso", "lower extremity", "upper extremity", "anterior torso"},
      {"lower extremity", "posterior torso", "anterior torso", "upper extremity"},
      {"head/neck", "anterior torso", "posterior torso"},
      {"head/neck", "upper extremity"},
      {"anterior torso", "head/neck", "posterior torso"},
      {"lower extremity", "upper extremity"},
      {"lower extremity", "anterior torso", "head/neck"},
      {"head/neck", "upper extremity", "lower extremity"},
  };
  std::string truth = "image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK\n";
  std::string meta = "image,age_approx,anatom_site_general,lesion_id,sex\n";
  std::vector<std::string> names(labels.size());
  int lesion = 0, images_left_in_lesion = 0, lesion_label = -1;
  std::string lesion_id;
  for (size_t i = 0; i < labels.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "ISIC_%07zu", i + 1);
    std::string id = buf;
    if (Chance(rng, 0.08)) id += "_downsampled";
    names[i] = id;
    // HAM lesions often have several images; BCN and MSK rows mostly have no lesion id.
    if (images_left_in_lesion == 0 || lesion_label != labels[i]) {
      ++lesion;
      lesion_label = labels[i];
      images_left_in_lesion = Chance(rng, 0.3) ? 2 + static_cast<int>(Uniform(rng) * 3) : 1;
      char lid[32];
      std::snprintf(lid, sizeof(lid), Chance(rng, 0.5) ? "HAM_%07d" : "BCN_%07d", lesion);
      lesion_id = Chance(rng, 0.25) ? "" : lid;
    }
    --images_left_in_lesion;
    truth += id;
    for (size_t c = 0; c < kIsicClasses.size(); ++c)
      truth += (static_cast<int>(c) == labels[i]) ? ",1.0" : ",0.0";
    truth += ",0.0\n";
    const int age = std::clamp(
        static_cast<int>(
            std::lround((age_mean[labels[i]] + 12 * std::normal_distribution<double>()(rng)) / 5)) *
            5,
        5, 85);
    meta += id + "," + (Chance(rng, 0.02) ? "" : Fixed(age, 1)) + "," +
            (Chance(rng, 0.1) ? "" : Pick(rng, sites[labels[i]])) + "," + lesion_id + "," +
            (Chance(rng, 0.03) ? "" : (Chance(rng, 0.5) ? "male" : "female")) + "\n";
  }
  const fs::path root(o.out_dir);
  fs::create_directories(root / "ISIC_2019_Training_Input");
  DF_RETURN_IF_ERROR(
      DrawImages(labels, static_cast<int64_t>(kIsicClasses.size()), o.image_size, o.seed,
                 [&](size_t i, const Image& img) -> Status {
                   DF_ASSIGN_OR_RETURN(auto jpg, EncodeJpeg(img, 92));
                   return WriteFileBytes(
                       (root / "ISIC_2019_Training_Input" / (names[i] + ".jpg")).string(), jpg);
                 }));
  DF_RETURN_IF_ERROR(WriteText(root / "ISIC_2019_Training_GroundTruth.csv", truth));
  return WriteText(root / "ISIC_2019_Training_Metadata.csv", meta);
}

}  // namespace

std::vector<int64_t> ProportionalCounts(const std::vector<double>& weights, int64_t total) {
  // Largest remainder over the whole total, so the real totals give back the real counts;
  // then every empty class takes one image from the largest class.
  const size_t k = weights.size();
  std::vector<int64_t> counts(k, 0);
  if (k == 0 || total <= 0) return counts;
  const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<std::pair<double, size_t>> remainders;
  int64_t assigned = 0;
  for (size_t c = 0; c < k; ++c) {
    const double exact = static_cast<double>(total) * weights[c] / sum;
    const auto floor = static_cast<int64_t>(exact);
    counts[c] = floor;
    assigned += floor;
    remainders.emplace_back(exact - static_cast<double>(floor), c);
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int64_t i = 0; i < total - assigned; ++i) ++counts[remainders[static_cast<size_t>(i)].second];
  if (total >= static_cast<int64_t>(k)) {
    for (size_t c = 0; c < k; ++c) {
      if (counts[c] > 0) continue;
      const size_t largest = static_cast<size_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
      --counts[largest];
      ++counts[c];
    }
  }
  return counts;
}

Status GenerateDataset(const DatagenOptions& o) {
  if (o.images < 1 || o.images > 1000000) {
    return InvalidArgumentError("datagen: --images must be in 1..1000000, got " +
                                std::to_string(o.images));
  }
  if (o.image_size < 16 || o.image_size > 2048) {
    return InvalidArgumentError("datagen: --image-size must be in 16..2048, got " +
                                std::to_string(o.image_size));
  }
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) return InternalError("datagen: cannot create " + o.out_dir + ": " + ec.message());
  for (const char* existing : {"metadata.csv", "ISIC_2019_Training_GroundTruth.csv"}) {
    if (fs::exists(fs::path(o.out_dir) / existing)) {
      return FailedPreconditionError("datagen: " + o.out_dir + " already holds a dataset (" +
                                     existing + "); choose an empty folder");
    }
  }
  if (o.format == "pad-ufes-20") return GeneratePadUfes20(o);
  if (o.format == "isic-2019") return GenerateIsic2019(o);
  return InvalidArgumentError("datagen: format '" + o.format +
                              "' is unknown; choose pad-ufes-20 or isic-2019");
}

}  // namespace dermfed::client
