// Every image file below a folder, by file name, found in one walk of the tree: the public
// datasets spread their images over sub-folders (PAD-UFES-20's imgs_part_1..3), and one
// walk is far cheaper than a stat per row.
//
// Thread-safe after Build (const).
#ifndef DERMFED_CLIENT_DATA_IMAGE_INDEX_H_
#define DERMFED_CLIENT_DATA_IMAGE_INDEX_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace dermfed::client {

class ImageIndex {
 public:
  // Walks `root` recursively (not following links to folders) and keeps the regular files
  // whose extension is one of `extensions` (lower case with the dot, e.g. ".png"; matched
  // case-insensitively). Fails naming `root` when it is not a readable folder or holds more
  // than `max_files` such files.
  static StatusOr<ImageIndex> Build(const std::string& root,
                                    const std::vector<std::string>& extensions,
                                    size_t max_files = 10'000'000);

  // The path of the file named `file_name`, or nullptr when none is. When two folders hold
  // a file of that name, sets `*other` (if given) to the second one.
  const std::string* Find(std::string_view file_name, const std::string** other = nullptr) const;

  const std::string& root() const { return root_; }
  size_t size() const { return paths_.size(); }

 private:
  struct Entry {
    std::string path;
    std::string duplicate;  // a second place with the same file name, if any
  };
  std::string root_;
  std::unordered_map<std::string, Entry> paths_;
};

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_DATA_IMAGE_INDEX_H_
