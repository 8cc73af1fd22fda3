// Which patient factors drive the model's predictions: permutation importance of each
// metadata *feature* (one column of the federation's schema), per class, on labelled rows.
//
// For rows R with labels y and class c with rows R_c = {i in R : y_i = c}:
//   score_c            = mean over i in R_c of p(y_i = c | image_i, metadata_i),
//                        the mean predicted probability of the true class;
//   importance[c][f]   = mean over `repeats` permutations π of
//                        score_c(original) − score_c(metadata with feature f's slots of
//                        every row replaced by those of row π(i)).
// A feature's slots (a categorical column's one-hot block and its missing slot, a numeric
// column's value and its missing indicator) always move together, so a permuted row is still
// a valid encoding. score_c is a mean of probabilities, not a count of correct predictions,
// so it is smooth and defined on a few dozen validation rows; and because it is a mean over
// rows it combines across sites exactly: the pooled value is the row-weighted mean of the
// sites' values (coordinator/explanations.h). The overall importance of a feature is the mean
// of importance[c][f] over the classes with rows — the drop in the class-balanced mean
// true-class probability, the smooth analogue of balanced accuracy.
//
// The image branch does not see the metadata, so each row's image embedding — and its share
// of the first fusion layer — is computed once; per permutation only the metadata MLP, the
// metadata's share of the fusion layer and the classifier run. The cost is one evaluation
// pass plus features × repeats passes of a small MLP, whatever the backbone.
//
// Not thread-safe with respect to the model.
#ifndef DERMFED_CLIENT_EXPLAIN_H_
#define DERMFED_CLIENT_EXPLAIN_H_

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "client/data/metadata_schema.h"
#include "client/evaluator.h"
#include "client/loader.h"
#include "common/model/dualrefnet.h"
#include "common/status.h"

namespace dermfed::client {

// The encoded slots of one schema column: [offset, offset + width).
struct FeatureGroup {
  std::string name;  // the schema column
  int offset = 0;
  int width = 0;
};

// One group per used column of `schema`, in encoding order (metadata_encoder.h's layout).
// `slot_names` (MetadataEncoder::feature_names, one per slot) is checked against it: every
// slot must be named after its column ("col", "col=value", "col:missing"), and the groups
// must cover every slot; otherwise the error names the first slot that does not fit.
StatusOr<std::vector<FeatureGroup>> FeatureGroupsOf(const MetadataSchema& schema,
                                                    const std::vector<std::string>& slot_names);

// Applies row permutation `perm` to feature `group` of `metadata` (rows x width, row-major)
// in place: row i's slots of the group become the original slots of row perm[i]; the
// other slots are untouched. REQUIRES: perm is a permutation of 0..rows-1.
void PermuteGroup(const FeatureGroup& group, const std::vector<int64_t>& perm, int width,
                  float* metadata);

struct ImportanceConfig {
  int repeats = 5;    // permutations per feature
  uint64_t seed = 1;  // permutations and the choice of rows
  int max_rows = 0;   // score at most this many rows (a seeded random subset); 0 = all
  EvalConfig eval;    // image size, batch size, decoding threads
};

struct FeatureImportance {
  std::vector<std::string> features;            // schema columns, in encoding order
  std::vector<std::string> classes;             // the model's class names
  std::vector<std::vector<double>> importance;  // [class][feature]; NaN for a class without rows
  std::vector<double> overall;                  // [feature]; mean over classes with rows
  std::vector<double> base_score;               // [class] score_c(original); NaN without rows
  std::vector<int64_t> rows;                    // [class] rows scored
  int repeats = 0;
};

// The image embeddings of `rows` of `source` (rows.size() x embedding_dim, on `device`):
// the image branch of DualRefNet, decoded and resized as the evaluator does.
StatusOr<torch::Tensor> ImageEmbeddings(model::DualRefNetImpl& net, c10::Device device,
                                        const LoaderSource& source, const std::vector<int>& rows,
                                        const EvalConfig& config);

// Same for a batch of already normalized images (B x 3 x S x S).
StatusOr<torch::Tensor> EmbedImages(model::DualRefNetImpl& net, const torch::Tensor& images);

// Class probabilities (rows x K, on the embeddings' device) from image embeddings and
// encoded metadata (rows x metadata_dim, CPU or the same device): the rest of DualRefNet's
// forward in eval mode. Equals softmax(net.forward(images, metadata).logits).
StatusOr<torch::Tensor> ProbabilitiesFromEmbeddings(model::DualRefNetImpl& net,
                                                    const torch::Tensor& embeddings,
                                                    const torch::Tensor& metadata);

// Permutation importance from embeddings, `metadata` (rows x width floats, row-major) and
// labels (class indices). REQUIRES: net.options().metadata_dim == width > 0.
StatusOr<FeatureImportance> ImportanceFromEmbeddings(
    model::DualRefNetImpl& net, const torch::Tensor& embeddings, const std::vector<float>& metadata,
    const std::vector<int64_t>& labels, const std::vector<FeatureGroup>& groups,
    const std::vector<std::string>& class_names, const ImportanceConfig& config);

// The whole computation on `rows` of `source`: picks at most config.max_rows of them, embeds
// their images once, permutes. Fails when the model takes no metadata.
StatusOr<FeatureImportance> ComputeImportance(model::DualRefNetImpl& net, c10::Device device,
                                              const LoaderSource& source,
                                              const std::vector<int>& rows,
                                              const std::vector<FeatureGroup>& groups,
                                              const std::vector<std::string>& class_names,
                                              const ImportanceConfig& config);

// What a site puts in its evaluation report's metrics (v1::MetricsReport.metrics), read back
// by coordinator/explanations.h:
//   importance/<class>/<feature>  importance[c][f], for each class with rows
//   importance_rows/<class>       rows[c], for every class
std::map<std::string, double> ImportanceMetrics(const FeatureImportance& importance);
inline constexpr char kImportancePrefix[] = "importance/";
inline constexpr char kImportanceRowsPrefix[] = "importance_rows/";

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_EXPLAIN_H_
