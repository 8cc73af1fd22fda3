#include "client/site_data.h"

#include "client/data/dataset_format.h"
#include "client/data/metadata_encoder.h"

namespace dermfed::client {

StatusOr<SiteData> LoadSiteDataWithSchema(const SiteDataOptions& o, const MetadataSchema& schema) {
  ReadOptions read;
  read.skip_bad_rows = o.skip_bad_rows;
  DF_ASSIGN_OR_RETURN(auto reader, NewDatasetReader(o.format, read, &schema));
  SiteData data;
  data.schema = schema;
  DF_ASSIGN_OR_RETURN(data.dataset, reader->Read(o.path));
  if (data.dataset.class_names != schema.class_names) {
    return InvalidArgumentError(o.path + ": the dataset's classes do not match the schema's '" +
                                schema.name + "' classes");
  }
  if (o.use_metadata) {
    DF_ASSIGN_OR_RETURN(MetadataEncoder encoder,
                        MetadataEncoder::Create(schema, data.dataset.metadata_columns));
    DF_ASSIGN_OR_RETURN(data.source.metadata,
                        EncodeDataset(encoder, &data.dataset, o.skip_bad_rows));
    data.source.metadata_width = encoder.width();
    data.feature_names = encoder.feature_names();
  }
  for (const DatasetRow& row : data.dataset.rows) {
    data.source.image_paths.push_back(row.image_path);
    data.source.labels.push_back(row.label);
  }
  return data;
}

StatusOr<SiteData> LoadSiteData(const SiteDataOptions& o) {
  MetadataSchema schema;
  if (!o.schema_path.empty()) {
    DF_ASSIGN_OR_RETURN(schema, LoadSchemaFile(o.schema_path));
  } else if (o.format == "generic") {
    return InvalidArgumentError("the generic format needs a schema file (--schema)");
  } else {
    DF_ASSIGN_OR_RETURN(schema, BuiltinSchema(o.format));
  }
  return LoadSiteDataWithSchema(o, schema);
}

}  // namespace dermfed::client
