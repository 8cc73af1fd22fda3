// A metadata schema JSON (client/data/metadata_schema.h: the federation's schema a site
// receives in FederationSpec.schema_json, or an operator's file) through ParseSchemaJson; a
// schema that parses must write back (SchemaToJson) to JSON that parses to the same schema,
// and must give a MetadataEncoder that encodes an all-missing row and a row of each
// column's first value to finite numbers.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "client/data/metadata_encoder.h"
#include "client/data/metadata_schema.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  using namespace dermfed::client;
  auto schema = ParseSchemaJson(fuzz::AsView(data, size), "fuzz-schema.json");
  fuzz::Trace("schema", schema.status());
  if (!schema.ok()) {
    FUZZ_CHECK(schema.status().message().find("fuzz-schema.json") != std::string::npos,
               "error does not name the file: " + schema.status().ToString());
    return 0;
  }
  const std::string json = SchemaToJson(*schema);
  auto again = ParseSchemaJson(json, "written schema");
  FUZZ_CHECK(again.ok(), "SchemaToJson wrote JSON that does not parse: " +
                             again.status().ToString() + "\n" + json);
  FUZZ_CHECK(SchemaToJson(*again) == json, "schema did not survive a write and a read");

  const std::vector<std::string> columns = schema->ColumnNames();
  auto encoder = MetadataEncoder::Create(*schema, columns);
  if (!encoder.ok()) return 0;  // e.g. a used categorical column without values
  std::vector<std::string> missing(columns.size(), "");
  std::vector<std::string> first(columns.size());
  for (size_t i = 0; i < columns.size(); ++i) {
    const ColumnSpec& c = schema->columns[i];
    first[i] = c.type == ColumnSpec::Type::kNumeric ? std::to_string(c.mean)
                                                    : (c.values.empty() ? "" : c.values[0]);
  }
  for (const auto* row : {&missing, &first}) {
    auto encoded = encoder->Encode(*row);
    if (!encoded.ok()) continue;  // a "first value" that is also a missing token, ...
    FUZZ_CHECK(encoded->size() == static_cast<size_t>(encoder->width()), "wrong width");
    for (float v : *encoded) {
      FUZZ_CHECK(std::isfinite(v),
                 "schema '" + schema->name + "' encodes a row to a non-finite value");
    }
  }
  return 0;
}
