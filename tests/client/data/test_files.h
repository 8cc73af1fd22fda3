// Test fixtures for dermfed_data: a temporary folder that removes itself, and writers for
// small datasets in the public formats' exact layouts (CRLF line endings, empty fields,
// UNK, images spread over sub-folders). Image files are a few bytes: readers only check
// that they exist.
//
// Thread-compatible.
#ifndef DERMFED_TESTS_CLIENT_DATA_TEST_FILES_H_
#define DERMFED_TESTS_CLIENT_DATA_TEST_FILES_H_

#include <string>
#include <vector>

namespace dermfed::client::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/relative.
  std::string Join(const std::string& relative) const;
  // Writes `contents` to path()/relative, creating folders; returns the full path.
  std::string Write(const std::string& relative, const std::string& contents) const;

 private:
  std::string path_;
};

// Joins lines with CRLF, the line ending of the released CSV files, ending with one.
std::string CrlfLines(const std::vector<std::string>& lines);

// PAD-UFES-20: the header of metadata.csv.
extern const char kPadHeader[];
// The real row quoted in the issue.
extern const char kPadRealRow[];

// Writes DIR/metadata.csv with `rows` under kPadHeader, and a PNG for every img_id in
// `images`, alternating between imgs_part_1 and imgs_part_2.
void WritePadDataset(const TempDir& dir, const std::vector<std::string>& rows,
                     const std::vector<std::string>& images);
// Five rows over four patients (PAT_46 has two lesions): the real row, a row with most
// fields empty, a row with UNK symptoms, and all their images.
std::vector<std::string> PadRows();
std::vector<std::string> PadImages();

// ISIC 2019: writes the ground truth, the metadata and JPEGs named in `images` (relative to
// ISIC_2019_Training_Input/).
void WriteIsicDataset(const TempDir& dir, const std::vector<std::string>& truth_rows,
                      const std::vector<std::string>& metadata_rows,
                      const std::vector<std::string>& images);
std::vector<std::string> IsicTruthRows();
std::vector<std::string> IsicMetadataRows();
std::vector<std::string> IsicImages();

}  // namespace dermfed::client::testing

#endif  // DERMFED_TESTS_CLIENT_DATA_TEST_FILES_H_
