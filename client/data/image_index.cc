#include "client/data/image_index.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace dermfed::client {

namespace fs = std::filesystem;

StatusOr<ImageIndex> ImageIndex::Build(const std::string& root,
                                       const std::vector<std::string>& extensions,
                                       size_t max_files) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return NotFoundError(absl::StrCat(root, ": not a folder (looking for images)"));
  }
  ImageIndex index;
  index.root_ = root;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  if (ec) return NotFoundError(absl::StrCat(root, ": cannot list: ", ec.message()));
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return DataLossError(absl::StrCat(root, ": cannot list: ", ec.message()));
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    const fs::path& path = it->path();
    std::string extension = absl::AsciiStrToLower(path.extension().string());
    if (std::find(extensions.begin(), extensions.end(), extension) == extensions.end()) continue;
    if (index.paths_.size() >= max_files) {
      return OutOfRangeError(
          absl::StrCat(root, ": more than ", max_files, " image files below this folder"));
    }
    auto [entry, inserted] = index.paths_.try_emplace(path.filename().string());
    if (inserted) {
      entry->second.path = path.string();
    } else {
      // Keep the two smallest paths, so that messages do not depend on listing order.
      std::string found = path.string();
      if (found < entry->second.path) std::swap(found, entry->second.path);
      if (entry->second.duplicate.empty() || found < entry->second.duplicate) {
        entry->second.duplicate = std::move(found);
      }
    }
  }
  if (ec) return DataLossError(absl::StrCat(root, ": cannot list: ", ec.message()));
  return index;
}

const std::string* ImageIndex::Find(std::string_view file_name, const std::string** other) const {
  auto it = paths_.find(std::string(file_name));
  if (it == paths_.end()) return nullptr;
  if (other != nullptr) {
    *other = it->second.duplicate.empty() ? nullptr : &it->second.duplicate;
  }
  return &it->second.path;
}

}  // namespace dermfed::client
