// A trained model's folder (RUN/): what `dermfed train` and `dermfed simulate` write and what
// `dermfed eval`, `predict` and `export` read.
//   RUN/model.dfs     the weights (ModelState file, checksummed)
//   RUN/config.json   model options, class names, image size, dataset format
//   RUN/schema.json   the metadata schema the model was trained with
//   RUN/metrics.json  test metrics (written by the trainer)
//
// Thread-compatible.
#ifndef DERMFED_CLIENT_RUN_DIR_H_
#define DERMFED_CLIENT_RUN_DIR_H_

#include <string>
#include <vector>

#include "client/data/metadata_schema.h"
#include "common/model/dualrefnet.h"
#include "common/status.h"

namespace dermfed::client {

struct RunConfig {
  model::DualRefNetOptions model;
  std::vector<std::string> class_names;
  int image_size = 224;
  std::string format;
  bool use_metadata = true;
};

struct LoadedRun {
  RunConfig config;
  MetadataSchema schema;
  model::DualRefNet net{nullptr};
};

Status SaveRun(const std::string& dir, const RunConfig& config, const MetadataSchema& schema,
               model::DualRefNetImpl& net);
// Writes only RUN/model.dfs (e.g. a better epoch); config and schema must exist already.
Status SaveRunWeights(const std::string& dir, model::DualRefNetImpl& net);
StatusOr<LoadedRun> LoadRun(const std::string& dir);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_RUN_DIR_H_
