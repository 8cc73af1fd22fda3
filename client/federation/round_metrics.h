// A federation's per-round global metrics as a table for analysis (`dermfed metrics`): one
// row per completed round from the coordinator's ListRounds, flattened from each round's
// metrics JSON, as CSV or JSON.
//
// Columns, in order: round, model_version, sha256, sites_selected, sites_reported, started,
// finished (ISO 8601 UTC, milliseconds), balanced_accuracy, accuracy, macro_auc, loss,
// num_examples; then dp_epsilon when any round has one, and for CSV one column
// "site:<name>:balanced_accuracy" per site that any round's evaluation names (sorted by
// name). A value a round lacks (not yet evaluated, NaN) is an empty CSV field or JSON null.
//
// Thread-safe: pure functions.
#ifndef DERMFED_CLIENT_FEDERATION_ROUND_METRICS_H_
#define DERMFED_CLIENT_FEDERATION_ROUND_METRICS_H_

#include <string>
#include <vector>

#include "dermfed/v1/monitor.pb.h"

namespace dermfed::client {

// A header line and one line per round, each ending in "\n"; fields are quoted as RFC 4180
// says (when they hold a comma, a double quote, CR or LF; quotes doubled).
std::string RoundMetricsCsv(const std::vector<v1::RoundInfo>& rounds);

// A JSON array with one object per round: the columns above, and "sites" holding each
// site's evaluation object (balanced_accuracy, accuracy, num_examples) as the coordinator
// recorded it.
std::string RoundMetricsJson(const std::vector<v1::RoundInfo>& rounds);

// `field` as one RFC 4180 CSV field.
std::string CsvField(const std::string& field);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_FEDERATION_ROUND_METRICS_H_
