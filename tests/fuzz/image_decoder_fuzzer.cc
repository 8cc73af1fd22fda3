// Image bytes (PNG or JPEG, sniffed) through DecodeImage (client/image/codec.h), as a site's
// loader decodes every dataset image, and a decoded image through the training and
// validation transforms. The input's length picks the minimum side a JPEG is scaled to
// (0, 1, 32 or 224), so seeds stay real image files.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "client/image/codec.h"
#include "client/image/transforms.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  using namespace dermfed::client;
  static const int kMinSides[] = {0, 1, 32, 224};
  const int min_side = kMinSides[size % 4];
  auto image = DecodeImage(data, size, "fuzz.img", min_side);
  fuzz::Trace("decode", image.status());
  if (!image.ok()) {
    FUZZ_CHECK(image.status().message().find("fuzz.img") != std::string::npos,
               "error does not name the image: " + image.status().ToString());
    return 0;
  }
  FUZZ_CHECK(
      image->width >= 1 && image->height >= 1 && image->width <= kMaxImageSide &&
          image->height <= kMaxImageSide,
      "decoded image of " + std::to_string(image->width) + "x" + std::to_string(image->height));
  FUZZ_CHECK(static_cast<int64_t>(image->width) * image->height <= kMaxImagePixels,
             "decoded image above kMaxImagePixels");
  FUZZ_CHECK(image->rgb.size() == static_cast<size_t>(image->width) * image->height * 3,
             "pixel buffer does not match the image size");
  constexpr int kSize = 24;
  std::vector<float> out(3 * kSize * kSize);
  AugmentConfig config;
  Rng rng = RowRng(1, 0, size);
  TransformToTensor(*image, kSize, config, rng, out.data());
  config.enabled = false;
  TransformToTensor(*image, kSize, config, rng, out.data());
  for (float v : out) FUZZ_CHECK(std::isfinite(v), "transform produced a non-finite value");
  return 0;
}
