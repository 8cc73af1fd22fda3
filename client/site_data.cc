#include "client/site_data.h"

#include <atomic>
#include <thread>

#include "client/data/dataset_format.h"
#include "client/data/metadata_encoder.h"
#include "client/image/codec.h"

namespace dermfed::client {
namespace {

// Decodes every image once (JPEG at its smallest scale) on all cores; undecodable images are
// skipped and reported like any other bad row. Only with skip_bad_rows: otherwise the first
// bad image stops training with an error naming the file and its CSV line.
void SkipUndecodableImages(Dataset* dataset) {
  const size_t n = dataset->rows.size();
  std::vector<std::string> errors(n);
  std::atomic<size_t> next{0};
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) {
        auto img = DecodeImageFile(dataset->rows[i].image_path, 1);
        if (!img.ok()) errors[i] = std::string(img.status().message());
      }
    });
  }
  for (auto& t : pool) t.join();
  std::vector<DatasetRow> kept;
  for (size_t i = 0; i < n; ++i) {
    if (errors[i].empty()) {
      kept.push_back(std::move(dataset->rows[i]));
    } else {
      dataset->skipped.push_back({dataset->source_file, dataset->rows[i].source_line,
                                  "image cannot be decoded: " + errors[i]});
    }
  }
  dataset->rows = std::move(kept);
}

}  // namespace

StatusOr<SiteData> LoadSiteDataWithSchema(const SiteDataOptions& o, const MetadataSchema& schema) {
  ReadOptions read;
  read.skip_bad_rows = o.skip_bad_rows;
  DF_ASSIGN_OR_RETURN(auto reader, NewDatasetReader(o.format, read, &schema));
  SiteData data;
  data.schema = schema;
  DF_ASSIGN_OR_RETURN(data.dataset, reader->Read(o.path));
  if (o.skip_bad_rows) {
    SkipUndecodableImages(&data.dataset);
    if (data.dataset.rows.empty()) {
      return InvalidArgumentError(o.path + ": no usable rows (" +
                                  std::to_string(data.dataset.skipped.size()) + " skipped)");
    }
  }
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
    data.source.row_context.push_back(data.dataset.source_file + ":" +
                                      std::to_string(row.source_line));
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
