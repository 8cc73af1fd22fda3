// Reads PAD-UFES-20 as it is distributed: DIR/metadata.csv with its 26 columns, and the PNG
// images named by img_id anywhere below DIR (the release splits them over imgs_part_1..3).
// Labels are the six diagnostics in the order of ClassNames(); the group is the patient, so
// that splitting keeps a patient's lesions together. Metadata values are kept as written
// (True/False, UNK, empty); MetadataEncoder gives them meaning.
//
// Thread-safe: Read keeps no state.
#ifndef DERMFED_CLIENT_DATA_PAD_UFES_20_READER_H_
#define DERMFED_CLIENT_DATA_PAD_UFES_20_READER_H_

#include <string>
#include <vector>

#include "client/data/dataset.h"
#include "common/status.h"

namespace dermfed::client {

class PadUfes20Reader : public DatasetReader {
 public:
  static constexpr char kFormat[] = "pad-ufes-20";
  static constexpr char kMetadataFile[] = "metadata.csv";

  // ACK, BCC, MEL, NEV, SCC, SEK: the label index is the position here.
  static const std::vector<std::string>& ClassNames();
  // The 26 columns of metadata.csv in the release's order.
  static const std::vector<std::string>& Columns();
  // The columns that become Dataset::metadata_columns: all but patient_id, lesion_id,
  // diagnostic and img_id.
  static const std::vector<std::string>& MetadataColumns();

  explicit PadUfes20Reader(ReadOptions options = {}) : options_(options) {}

  // Reads DIR/metadata.csv. Bad rows (see ReadOptions): wrong field count, empty patient_id
  // or img_id, a diagnostic that is not one of the six, an img_id seen before, an image
  // missing below DIR or present in two places.
  StatusOr<Dataset> Read(const std::string& dataset_dir) const override;

 private:
  ReadOptions options_;
};

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_DATA_PAD_UFES_20_READER_H_
