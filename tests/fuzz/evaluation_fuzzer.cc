// Sites' evaluation reports (v1::MetricsReport: a confusion matrix and a metrics map, with the
// per-class feature importances of client/explain.h) as the coordinator combines them after a
// round: the checks SubmitEvaluation makes, the confusion matrices summed with
// ConfusionMatrix, and CombinedImportanceJson (coordinator/explanations.h), whose output goes
// into the stored metrics JSON that the dashboard, `dermfed rounds` and `dermfed explain` read.
// The output must be valid JSON with one value per class and feature.
//
// Input: up to 8 varint-length-delimited MetricsReport messages, one per site; the classes
// are PAD-UFES-20's six.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/delimited_message_util.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "coordinator/explanations.h"
#include "dermfed/v1/federation.pb.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

const std::vector<std::string> kClasses = {"ACK", "BCC", "MEL", "NEV", "SCC", "SEK"};

// The form checks of RoundEngine::SubmitEvaluation (coordinator/round_engine.cc).
bool Accepted(const dermfed::v1::MetricsReport& r) {
  const int64_t k = static_cast<int64_t>(kClasses.size());
  if (r.confusion_size() != k * k) return false;
  constexpr int64_t kMaxEvaluationRows = 1'000'000'000'000;
  int64_t rows = 0;
  for (int64_t c : r.confusion()) {
    if (c < 0 || c > kMaxEvaluationRows - rows) return false;
    rows += c;
  }
  return r.num_examples() == rows;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  google::protobuf::io::CodedInputStream in(data, static_cast<int>(size));
  std::map<std::string, v1::MetricsReport> reports;
  const int k = static_cast<int>(kClasses.size());
  ConfusionMatrix total(k);
  for (int site = 0; site < 8; ++site) {
    v1::MetricsReport r;
    bool clean_eof = false;
    if (!google::protobuf::util::ParseDelimitedFromCodedStream(&r, &in, &clean_eof)) break;
    if (!Accepted(r)) continue;
    ConfusionMatrix m(k);
    for (int t = 0; t < k; ++t) {
      for (int p = 0; p < k; ++p) {
        Status added = m.AddCount(t, p, r.confusion(t * k + p));
        FUZZ_CHECK(added.ok(), "an accepted count was refused: " + added.ToString());
      }
    }
    FUZZ_CHECK(total.Merge(m).ok(), "eight accepted reports overflowed the total");
    m.BalancedAccuracy();
    reports["site-" + std::to_string(site)] = std::move(r);
  }
  total.BalancedAccuracy();
  total.Accuracy();
  const std::string combined = coordinator::CombinedImportanceJson(reports, kClasses);
  fuzz::Trace(combined.empty() ? "no explanations"
                               : "explanations of " + std::to_string(reports.size()) + " sites",
              OkStatus());
  if (combined.empty()) return 0;
  const nlohmann::json j = nlohmann::json::parse(combined, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!j.is_discarded() && j.is_object(),
             "CombinedImportanceJson wrote invalid JSON: " + combined);
  const size_t features = j["features"].size();
  FUZZ_CHECK(j["overall"].size() == features, "overall has the wrong length");
  FUZZ_CHECK(j["importance"].size() == kClasses.size(),
             "importance has the wrong number of classes");
  for (const auto& per_class : j["importance"]) {
    FUZZ_CHECK(per_class.size() == features, "an importance row has the wrong length");
  }
  return 0;
}
