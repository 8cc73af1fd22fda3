// A site's own dataset in the generic format: a metadata schema JSON with a "manifest"
// section and the manifest CSV it describes, through ParseSchemaJson, GenericCsvReader, the
// schema's MetadataEncoder and the grouped split, with skip_bad_rows off and on.
// Input: the schema JSON, a NUL byte, the manifest CSV. The folder holds img/a.png,
// img/b.png, img/c.jpg, d.png, e.jpg and sub/dir/f.png.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "client/data/generic_csv_reader.h"
#include "client/data/metadata_schema.h"
#include "tests/fuzz/dataset_fuzz.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  static const std::string dir = fuzz::ImageFolder(
      "generic", {"img/a.png", "img/b.png", "img/c.jpg", "d.png", "e.jpg", "sub/dir/f.png"});
  const std::string_view input = fuzz::AsView(data, size);
  const size_t nul = input.find('\0');
  if (nul == std::string_view::npos) return 0;
  auto schema = client::ParseSchemaJson(input.substr(0, nul), "fuzz-schema.json");
  fuzz::Trace("schema", schema.status());
  if (!schema.ok()) return 0;  // schema_fuzzer covers refusals
  const std::string file = schema->manifest ? schema->manifest->file : "manifest.csv";
  // The manifest file name comes from the schema: keep it inside the folder.
  if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") return 0;
  std::error_code ec;
  if (std::filesystem::exists(dir + "/" + file, ec)) return 0;  // one of the images
  const std::string manifest = fuzz::WriteScratchFile("generic/" + file, input.substr(nul + 1));
  fuzz::ReadEncodeSplit(client::GenericCsvReader::kFormat, manifest, *schema);
  fuzz::ReadEncodeSplit(client::GenericCsvReader::kFormat, dir, *schema);
  std::remove(manifest.c_str());
  return 0;
}
