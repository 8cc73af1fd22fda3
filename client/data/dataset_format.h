// The dataset formats a site can read, by the names the command line and the site config
// use ("pad-ufes-20", "isic-2019", "generic"), and the reader for each.
//
// Thread-safe: free functions.
#ifndef DERMFED_CLIENT_DATA_DATASET_FORMAT_H_
#define DERMFED_CLIENT_DATA_DATASET_FORMAT_H_

#include <memory>
#include <string_view>

#include "client/data/dataset.h"
#include "client/data/metadata_schema.h"
#include "common/status.h"

namespace dermfed::client {

// The reader for `format`. The generic format takes its manifest layout from `schema`
// (REQUIRES: non-null for "generic"; ignored otherwise). Fails naming the known formats
// when `format` is none of them.
StatusOr<std::unique_ptr<DatasetReader>> NewDatasetReader(std::string_view format,
                                                          const ReadOptions& options,
                                                          const MetadataSchema* schema);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_DATA_DATASET_FORMAT_H_
