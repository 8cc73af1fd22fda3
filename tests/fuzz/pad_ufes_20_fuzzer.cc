// A PAD-UFES-20 metadata.csv (the release's 26 columns) through PadUfes20Reader, the shipped
// pad-ufes-20 schema's MetadataEncoder and the grouped split, with skip_bad_rows off and on.
// The folder holds the images of the seed rows (tests/client/data/test_files.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "client/data/metadata_schema.h"
#include "client/data/pad_ufes_20_reader.h"
#include "tests/client/data/test_files.h"
#include "tests/fuzz/dataset_fuzz.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  static const client::MetadataSchema* const schema =
      new client::MetadataSchema(client::BuiltinSchema("pad-ufes-20").value());
  static const std::string dir = [] {
    std::vector<std::string> images;
    int i = 0;
    for (const std::string& image : client::testing::PadImages()) {
      images.push_back((i++ % 2 ? "imgs_part_2/" : "imgs_part_1/") + image);
    }
    return fuzz::ImageFolder("pad", images);
  }();
  fuzz::WriteScratchFile(std::string("pad/") + client::PadUfes20Reader::kMetadataFile,
                         fuzz::AsView(data, size));
  fuzz::ReadEncodeSplit(client::PadUfes20Reader::kFormat, dir, *schema);
  return 0;
}
