// Combines the sites' metadata-feature importances (client/explain.h) into one table for the
// global model. Each site reports, in its evaluation's metrics map,
//   importance/<class>/<feature>  the drop in that class's mean true-class probability when
//                                 the feature is permuted across the site's validation rows
//   importance_rows/<class>       how many of its rows of that class were scored
// Because each value is a mean over a site's rows of one class, the pooled value is the
// row-weighted mean over sites — exact, not an approximation:
//   importance[c][f] = Σ_s rows_s[c] · importance_s[c][f] / Σ_s rows_s[c].
// The overall importance of f is the mean of importance[c][f] over classes with rows (the
// drop in the class-balanced mean true-class probability). A site's rows for a class are
// capped at that class's row of its confusion matrix, so no site outweighs its evaluation.
//
// Thread-safe: a pure function.
#ifndef DERMFED_COORDINATOR_EXPLANATIONS_H_
#define DERMFED_COORDINATOR_EXPLANATIONS_H_

#include <map>
#include <string>
#include <vector>

#include "dermfed/v1/federation.pb.h"

namespace dermfed::coordinator {

// A JSON object
//   {"measure": "...", "features": [f...], "classes": [c...],
//    "importance": [[per feature] per class], "overall": [per feature],
//    "rows": [per class], "sites": N}
// with features sorted by overall importance, largest first; null where a class has no rows.
// Empty when no report carries importance.
std::string CombinedImportanceJson(const std::map<std::string, v1::MetricsReport>& reports,
                                   const std::vector<std::string>& class_names);

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_EXPLANATIONS_H_
