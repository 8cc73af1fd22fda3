// Raw metadata values, as a dataset row holds them, through the MetadataEncoder of each
// shipped schema (pad-ufes-20, isic-2019), with unseen values refused and mapped to
// "missing". Input: the values of one row separated by '\n' (in schema column order); the
// encoding must be finite, and an OK row must have exactly one slot set per categorical
// column.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "client/data/metadata_encoder.h"
#include "client/data/metadata_schema.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

struct Encoders {
  std::vector<dermfed::client::MetadataSchema> schemas;
  std::vector<dermfed::client::MetadataEncoder> encoders;
};

const Encoders& All() {
  using namespace dermfed::client;
  static const Encoders* const all = [] {
    auto* e = new Encoders;
    for (const char* format : {"pad-ufes-20", "isic-2019"}) {
      for (bool unseen_as_missing : {false, true}) {
        MetadataSchema schema = BuiltinSchema(format).value();
        schema.unseen_as_missing = unseen_as_missing;
        e->encoders.push_back(MetadataEncoder::Create(schema, schema.ColumnNames()).value());
        e->schemas.push_back(std::move(schema));
      }
    }
    return e;
  }();
  return *all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  using namespace dermfed::client;
  std::vector<std::string> values(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') {
      values.emplace_back();
    } else {
      values.back() += static_cast<char>(data[i]);
    }
  }
  const Encoders& all = All();
  for (size_t e = 0; e < all.encoders.size(); ++e) {
    const MetadataSchema& schema = all.schemas[e];
    std::vector<std::string> row = values;
    row.resize(schema.columns.size());
    auto encoded = all.encoders[e].Encode(row);
    fuzz::Trace(schema.name + (schema.unseen_as_missing ? " (unseen as missing)" : ""),
                encoded.status());
    if (!encoded.ok()) {
      // With unseen values as missing, only a numeric column can refuse a value.
      bool numeric = false;
      for (const ColumnSpec& c : schema.columns) {
        const std::string prefix = "column '" + c.name + "': '";
        if (encoded.status().message().substr(0, prefix.size()) == prefix) {
          numeric = c.type == ColumnSpec::Type::kNumeric;
        }
      }
      FUZZ_CHECK(!schema.unseen_as_missing || numeric,
                 "categorical value refused although unseen_values is \"missing\": " +
                     encoded.status().ToString());
      continue;
    }
    FUZZ_CHECK(encoded->size() == static_cast<size_t>(all.encoders[e].width()), "wrong width");
    size_t slot = 0, hot = 0, categorical = 0;
    for (const ColumnSpec& c : schema.columns) {
      if (!c.used) continue;
      if (c.type == ColumnSpec::Type::kNumeric) {
        slot += 2;
        continue;
      }
      ++categorical;
      for (size_t v = 0; v <= c.values.size(); ++v) hot += (*encoded)[slot + v] == 1.0f;
      slot += c.values.size() + 1;
    }
    FUZZ_CHECK(hot == categorical, "a categorical column without exactly one slot set");
    for (float v : *encoded) FUZZ_CHECK(std::isfinite(v), "non-finite encoding");
    CanonicalValue(values[0]);
  }
  return 0;
}
