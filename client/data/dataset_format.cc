#include "client/data/dataset_format.h"

#include "absl/strings/str_cat.h"
#include "client/data/generic_csv_reader.h"
#include "client/data/isic_2019_reader.h"
#include "client/data/pad_ufes_20_reader.h"

namespace dermfed::client {

StatusOr<std::unique_ptr<DatasetReader>> NewDatasetReader(std::string_view format,
                                                          const ReadOptions& options,
                                                          const MetadataSchema* schema) {
  if (format == PadUfes20Reader::kFormat) return std::make_unique<PadUfes20Reader>(options);
  if (format == Isic2019Reader::kFormat) return std::make_unique<Isic2019Reader>(options);
  if (format == GenericCsvReader::kFormat) {
    if (schema == nullptr) {
      return InvalidArgumentError("the generic format needs a schema file with a manifest");
    }
    return std::make_unique<GenericCsvReader>(*schema, options);
  }
  return InvalidArgumentError(absl::StrCat("unknown dataset format '", std::string(format),
                                           "' (known: pad-ufes-20, isic-2019, generic)"));
}

}  // namespace dermfed::client
