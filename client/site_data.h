// A site's data made ready for training or evaluation: read in its native format, metadata
// encoded with the federation's schema, and laid out for the BatchLoader. Shared by
// `dermfed train`, `dermfed eval` and (later) the site daemon, so they all read data the
// same way.
//
// Thread-compatible.
#ifndef DERMFED_CLIENT_SITE_DATA_H_
#define DERMFED_CLIENT_SITE_DATA_H_

#include <string>
#include <vector>

#include "client/data/dataset.h"
#include "client/data/metadata_schema.h"
#include "client/loader.h"
#include "common/status.h"

namespace dermfed::client {

struct SiteData {
  Dataset dataset;
  MetadataSchema schema;
  std::vector<std::string> feature_names;  // one per encoded metadata slot
  LoaderSource source;                     // aligned with dataset.rows
};

struct SiteDataOptions {
  std::string format;       // pad-ufes-20 | isic-2019 | generic
  std::string path;         // dataset folder (or generic manifest)
  std::string schema_path;  // "" = the shipped schema of `format` (required for generic)
  bool skip_bad_rows = false;
  bool use_metadata = true;  // false: image only (zero metadata features)
};

StatusOr<SiteData> LoadSiteData(const SiteDataOptions& options);

// Same, with an already-parsed schema (a trained model's own).
StatusOr<SiteData> LoadSiteDataWithSchema(const SiteDataOptions& options,
                                          const MetadataSchema& schema);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_SITE_DATA_H_
