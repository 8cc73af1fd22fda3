// Scores a model on rows of a site's data: class probabilities through the BatchLoader (no
// augmentation), then the clinical metrics of common/metrics.h.
//
// Not thread-safe with respect to the model.
#ifndef DERMFED_CLIENT_EVALUATOR_H_
#define DERMFED_CLIENT_EVALUATOR_H_

#include <string>
#include <vector>

#include "client/loader.h"
#include "common/metrics.h"
#include "common/model/dualrefnet.h"
#include "common/status.h"

namespace dermfed::client {

struct EvalConfig {
  int image_size = 224;
  int batch_size = 64;
  int workers = 2;
};

// The loader settings for scoring: in order, no augmentation.
LoaderConfig EvalLoaderConfig(const EvalConfig& config);

// Probabilities, rows.size() x K row-major, in the order of `rows`.
StatusOr<std::vector<float>> PredictRows(model::DualRefNetImpl& net, c10::Device device,
                                         const LoaderSource& source, const std::vector<int>& rows,
                                         const EvalConfig& config);

StatusOr<ClassificationReport> EvaluateRows(model::DualRefNetImpl& net, c10::Device device,
                                            const LoaderSource& source,
                                            const std::vector<int>& rows,
                                            const std::vector<std::string>& class_names,
                                            const EvalConfig& config);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_EVALUATOR_H_
