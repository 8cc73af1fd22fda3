// Reads a site's own CSV manifest, for data in neither public format. The schema's
// "manifest" section says which column holds the image path (relative to the manifest's
// folder), the label (one of the schema's class names), the group (patient) and optionally
// a row id; every schema column is read as a metadata column.
//
// Thread-safe: Read keeps no state.
#ifndef DERMFED_CLIENT_DATA_GENERIC_CSV_READER_H_
#define DERMFED_CLIENT_DATA_GENERIC_CSV_READER_H_

#include <string>
#include <utility>

#include "client/data/dataset.h"
#include "client/data/metadata_schema.h"
#include "common/status.h"

namespace dermfed::client {

class GenericCsvReader : public DatasetReader {
 public:
  static constexpr char kFormat[] = "generic";

  // REQUIRES: nothing; a schema without a "manifest" section makes Read fail saying so.
  explicit GenericCsvReader(MetadataSchema schema, ReadOptions options = {})
      : schema_(std::move(schema)), options_(options) {}

  // `path` is the manifest, or a folder holding the schema's manifest file. Bad rows (see
  // ReadOptions): wrong field count; an empty, absolute or missing image path, or one that
  // leaves the manifest's folder (..); a label that is not a class name; an empty group (when
  // a group column is declared); a row id seen before.
  StatusOr<Dataset> Read(const std::string& path) const override;

 private:
  MetadataSchema schema_;
  ReadOptions options_;
};

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_DATA_GENERIC_CSV_READER_H_
