// The part of a site's data loading (client/site_data.cc) that needs no LibTorch, for the
// dataset fuzz targets: read a dataset folder with the format's reader, check what the
// reader promises about its rows, encode the metadata with the schema, split by group.
// Used with skip_bad_rows off and on, as dermfed-site runs with either.
//
// Thread-compatible.
#ifndef DERMFED_TESTS_FUZZ_DATASET_FUZZ_H_
#define DERMFED_TESTS_FUZZ_DATASET_FUZZ_H_

#include <string>
#include <vector>

#include "client/data/metadata_schema.h"

namespace dermfed::fuzz {

// Reads `path` as `format` and runs the rows through MetadataEncoder and SplitByGroup.
// Crashes (FUZZ_CHECK) only on a broken invariant; every error is an expected outcome.
void ReadEncodeSplit(const std::string& format, const std::string& path,
                     const client::MetadataSchema& schema);

// Creates (once per process) a folder below ScratchDir() holding a small file for each
// relative path in `images` (the readers only check that images exist), and returns it.
std::string ImageFolder(const std::string& name, const std::vector<std::string>& images);

}  // namespace dermfed::fuzz

#endif  // DERMFED_TESTS_FUZZ_DATASET_FUZZ_H_
