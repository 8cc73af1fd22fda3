// Decoding and encoding of the images sites train on: PNG (libpng's simplified API) and
// JPEG (libjpeg-turbo's TurboJPEG API, which can decode at 1/2, 1/4 or 1/8 scale — much
// faster when the training size is far below the stored size). Input bytes are untrusted:
// dimensions are bounded and every codec error becomes a Status naming the image.
//
// Thread-safe: no shared state (each call uses its own codec handle).
#ifndef DERMFED_CLIENT_IMAGE_CODEC_H_
#define DERMFED_CLIENT_IMAGE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace dermfed::client {

// 8-bit RGB, row-major, height x width x 3.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
};

// Images larger than this on either side are refused (a decompression bomb guard)...
inline constexpr int kMaxImageSide = 16384;
// ...and so are images that would decode to more pixels than this: 64 Mi pixels (192 MiB of
// RGB), far above any dermoscopic image, so that a 70-byte PNG cannot make a site allocate
// 768 MiB per decoding thread. A JPEG counts at the scale it is decoded at.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

// Decodes PNG or JPEG (sniffed from the bytes, not the name). With `min_side` > 0, a JPEG
// is decoded at the smallest libjpeg-turbo scale whose shorter side is still >= min_side.
// `name` only labels errors.
StatusOr<Image> DecodeImage(const uint8_t* data, size_t size, const std::string& name,
                            int min_side = 0);
StatusOr<Image> DecodeImageFile(const std::string& path, int min_side = 0);

StatusOr<std::vector<uint8_t>> EncodePng(const Image& image);
StatusOr<std::vector<uint8_t>> EncodeJpeg(const Image& image, int quality = 90);

// Writes bytes to `path` (whole file); errors name the path.
Status WriteFileBytes(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_IMAGE_CODEC_H_
