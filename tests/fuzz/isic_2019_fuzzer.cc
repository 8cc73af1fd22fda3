// The two CSV files of ISIC 2019 (ground truth, one-hot; metadata) through Isic2019Reader,
// the shipped isic-2019 schema's MetadataEncoder and the grouped split, with skip_bad_rows
// off and on. Input: the ground truth, a NUL byte, the metadata (no NUL: no metadata file).
// The folder holds the images of the seed rows (tests/client/data/test_files.h).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "client/data/isic_2019_reader.h"
#include "client/data/metadata_schema.h"
#include "tests/client/data/test_files.h"
#include "tests/fuzz/dataset_fuzz.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  using client::Isic2019Reader;
  static const client::MetadataSchema* const schema =
      new client::MetadataSchema(client::BuiltinSchema("isic-2019").value());
  static const std::string dir = [] {
    std::vector<std::string> images;
    for (const std::string& image : client::testing::IsicImages()) {
      images.push_back(std::string(Isic2019Reader::kImageFolder) + "/" + image);
    }
    return fuzz::ImageFolder("isic", images);
  }();
  const std::string_view input = fuzz::AsView(data, size);
  const size_t nul = input.find('\0');
  fuzz::WriteScratchFile(std::string("isic/") + Isic2019Reader::kGroundTruthFile,
                         input.substr(0, nul));
  const std::string metadata = dir + "/" + Isic2019Reader::kMetadataFile;
  if (nul == std::string_view::npos) {
    std::remove(metadata.c_str());
  } else {
    fuzz::WriteScratchFile(std::string("isic/") + Isic2019Reader::kMetadataFile,
                           input.substr(nul + 1));
  }
  fuzz::ReadEncodeSplit(Isic2019Reader::kFormat, dir, *schema);
  return 0;
}
