#include "tests/client/data/test_files.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace dermfed::client::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string pattern = (fs::path(base != nullptr ? base : fs::temp_directory_path().string()) /
                         "dermfed_data_XXXXXX")
                            .string();
  if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << pattern;
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::Join(const std::string& relative) const {
  return (fs::path(path_) / relative).string();
}

std::string TempDir::Write(const std::string& relative, const std::string& contents) const {
  fs::path path = fs::path(path_) / relative;
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << contents;
  out.close();
  EXPECT_TRUE(out.good()) << "cannot write " << path;
  return path.string();
}

std::string CrlfLines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\r\n";
  return text;
}

const char kPadHeader[] =
    "patient_id,lesion_id,smoke,drink,background_father,background_mother,age,pesticide,"
    "gender,skin_cancer_history,cancer_history,has_piped_water,has_sewage_system,fitspatrick,"
    "region,diameter_1,diameter_2,diagnostic,itch,grew,hurt,changed,bleed,elevation,img_id,"
    "biopsed";

const char kPadRealRow[] =
    "PAT_46,881,False,False,POMERANIA,POMERANIA,55,False,FEMALE,True,True,True,True,3.0,NECK,"
    "6.0,5.0,BCC,True,True,False,True,True,True,PAT_46_881_14.png,True";

void WritePadDataset(const TempDir& dir, const std::vector<std::string>& rows,
                     const std::vector<std::string>& images) {
  std::vector<std::string> lines = {kPadHeader};
  lines.insert(lines.end(), rows.begin(), rows.end());
  dir.Write("metadata.csv", CrlfLines(lines));
  for (size_t i = 0; i < images.size(); ++i) {
    dir.Write((i % 2 == 0 ? "imgs_part_1/" : "imgs_part_2/") + images[i], "\x89PNG\r\n");
  }
}

std::vector<std::string> PadRows() {
  return {
      kPadRealRow,
      // Patients without the full questionnaire: most fields empty.
      "PAT_1516,1765,,,,,8,,,,,,,,ARM,,,NEV,False,False,False,False,False,False,"
      "PAT_1516_1765_530.png,False",
      // Symptoms the patient did not know: UNK.
      "PAT_771,1151,False,True,GERMANY,BRAZIL,77,True,MALE,False,True,True,False,2.0,FACE,"
      "10.0,8.0,ACK,UNK,UNK,False,UNK,False,True,PAT_771_1151_213.png,False",
      // A second lesion of PAT_46.
      "PAT_46,882,False,False,POMERANIA,POMERANIA,55,False,FEMALE,True,True,True,True,3.0,"
      "BACK,4.0,3.0,SEK,False,False,False,False,False,True,PAT_46_882_15.png,False",
      "PAT_9,12,True,False,ITALY,UNK,68,True,MALE,True,False,False,False,1.0,CHEST,12.0,9.0,"
      "MEL,True,True,True,True,False,True,PAT_9_12_77.png,True",
  };
}

std::vector<std::string> PadImages() {
  return {"PAT_46_881_14.png", "PAT_1516_1765_530.png", "PAT_771_1151_213.png", "PAT_46_882_15.png",
          "PAT_9_12_77.png"};
}

void WriteIsicDataset(const TempDir& dir, const std::vector<std::string>& truth_rows,
                      const std::vector<std::string>& metadata_rows,
                      const std::vector<std::string>& images) {
  std::vector<std::string> truth = {"image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK"};
  truth.insert(truth.end(), truth_rows.begin(), truth_rows.end());
  dir.Write("ISIC_2019_Training_GroundTruth.csv", CrlfLines(truth));
  std::vector<std::string> metadata = {"image,age_approx,anatom_site_general,lesion_id,sex"};
  metadata.insert(metadata.end(), metadata_rows.begin(), metadata_rows.end());
  dir.Write("ISIC_2019_Training_Metadata.csv", CrlfLines(metadata));
  for (const std::string& image : images) {
    dir.Write("ISIC_2019_Training_Input/" + image, "\xFF\xD8\xFF\xE0");
  }
}

std::vector<std::string> IsicTruthRows() {
  return {
      "ISIC_0000000,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
      "ISIC_0000002,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
      "ISIC_0000004_downsampled,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
      "ISIC_0010491,0.0,0.0,0.0,0.0,1.0,0.0,0.0,0.0,0.0",
      "ISIC_0024306,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
      "ISIC_0024307,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
      "ISIC_0053453,0.0,0.0,0.0,1.0,0.0,0.0,0.0,0.0,0.0",
      "ISIC_0060001,0.0,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0",
      "ISIC_0060002,0.0,0.0,0.0,0.0,0.0,1.0,0.0,0.0,0.0",
      "ISIC_0060003,0.0,0.0,0.0,0.0,0.0,0.0,1.0,0.0,0.0",
      "ISIC_0060004,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,0.0",
  };
}

std::vector<std::string> IsicMetadataRows() {
  return {
      "ISIC_0000000,55.0,anterior torso,,female",
      "ISIC_0000002,60.0,upper extremity,,female",
      "ISIC_0000004_downsampled,80.0,posterior torso,,male",
      "ISIC_0010491,,,,",
      "ISIC_0024306,45.0,,HAM_0000550,male",
      "ISIC_0024307,50.0,lower extremity,HAM_0000550,male",
      "ISIC_0053453,70.0,head/neck,BCN_0003925,male",
      "ISIC_0060001,65.0,lateral torso,BCN_0000001,",
      "ISIC_0060002,35.0,palms/soles,BCN_0000002,female",
      "ISIC_0060003,40.0,oral/genital,BCN_0000003,female",
      "ISIC_0060004,85.0,head/neck,BCN_0000004,male",
  };
}

std::vector<std::string> IsicImages() {
  // ISIC_0000002 is only there as <image>_downsampled.jpg; the last one is one folder deeper,
  // as when the archive is unpacked into a folder of its own name.
  return {"ISIC_0000000.jpg",
          "ISIC_0000002_downsampled.jpg",
          "ISIC_0000004_downsampled.jpg",
          "ISIC_0010491.jpg",
          "ISIC_0024306.jpg",
          "ISIC_0024307.jpg",
          "ISIC_0053453.jpg",
          "ISIC_0060001.jpg",
          "ISIC_0060002.jpg",
          "ISIC_0060003.jpg",
          "ISIC_2019_Training_Input/ISIC_0060004.jpg"};
}

}  // namespace dermfed::client::testing
