// Reads the ISIC 2019 training set as it is distributed:
//   DIR/ISIC_2019_Training_GroundTruth.csv  image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK (one-hot)
//   DIR/ISIC_2019_Training_Metadata.csv     image,age_approx,anatom_site_general,lesion_id,sex
//   DIR/ISIC_2019_Training_Input/           <image>.jpg, found at any depth below it (some
//                                           files are named <image>_downsampled.jpg)
// Labels are the eight training classes in the order of ClassNames(); UNK has no training
// images, so a row labelled UNK is a bad row. The group is lesion_id, or the image itself
// when lesion_id is empty, so that splitting keeps the images of one lesion together.
//
// Thread-safe: Read keeps no state.
#ifndef DERMFED_CLIENT_DATA_ISIC_2019_READER_H_
#define DERMFED_CLIENT_DATA_ISIC_2019_READER_H_

#include <string>
#include <vector>

#include "client/data/dataset.h"
#include "common/status.h"

namespace dermfed::client {

class Isic2019Reader : public DatasetReader {
 public:
  static constexpr char kFormat[] = "isic-2019";
  static constexpr char kGroundTruthFile[] = "ISIC_2019_Training_GroundTruth.csv";
  static constexpr char kMetadataFile[] = "ISIC_2019_Training_Metadata.csv";
  static constexpr char kImageFolder[] = "ISIC_2019_Training_Input";

  // MEL, NV, BCC, AK, BKL, DF, VASC, SCC: the label index is the position here.
  static const std::vector<std::string>& ClassNames();
  // age_approx, anatom_site_general, sex: Dataset::metadata_columns.
  static const std::vector<std::string>& MetadataColumns();

  explicit Isic2019Reader(ReadOptions options = {}) : options_(options) {}

  // Bad rows (see ReadOptions): wrong field count in either file; a class cell that is not
  // 0 or 1; no class or more than one class set; UNK set; an image listed twice; an image
  // with no metadata row; an image file missing (or in two places). Metadata rows for
  // images not in the ground truth are ignored.
  StatusOr<Dataset> Read(const std::string& dataset_dir) const override;

 private:
  ReadOptions options_;
};

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_DATA_ISIC_2019_READER_H_
