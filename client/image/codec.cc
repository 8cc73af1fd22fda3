#include "client/image/codec.h"

#include <png.h>
#include <turbojpeg.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

namespace dermfed::client {
namespace {

struct TjFree {
  void operator()(void* h) const { tjDestroy(static_cast<tjhandle>(h)); }
};
using TjHandle = std::unique_ptr<void, TjFree>;

bool IsPng(const uint8_t* d, size_t n) {
  static const uint8_t kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return n >= 8 && std::memcmp(d, kSig, 8) == 0;
}
bool IsJpeg(const uint8_t* d, size_t n) { return n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff; }

Status CheckSize(int w, int h, const std::string& name) {
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide) {
    return InvalidArgumentError(name + ": image size " + std::to_string(w) + "x" +
                                std::to_string(h) + " is outside 1.." +
                                std::to_string(kMaxImageSide));
  }
  return OkStatus();
}

Status CheckPixels(int w, int h, const std::string& name) {
  if (static_cast<int64_t>(w) * h > kMaxImagePixels) {
    return InvalidArgumentError(name + ": image of " + std::to_string(w) + "x" +
                                std::to_string(h) + " pixels is above the limit of " +
                                std::to_string(kMaxImagePixels) + " pixels");
  }
  return OkStatus();
}

StatusOr<Image> DecodePng(const uint8_t* data, size_t size, const std::string& name) {
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, data, size)) {
    return InvalidArgumentError(name + ": not a readable PNG: " + png.message);
  }
  Status s = CheckSize(static_cast<int>(png.width), static_cast<int>(png.height), name);
  if (s.ok()) s = CheckPixels(static_cast<int>(png.width), static_cast<int>(png.height), name);
  if (!s.ok()) {
    png_image_free(&png);
    return s;
  }
  png.format = PNG_FORMAT_RGB;  // drops alpha against black, expands grey and palettes
  Image img;
  img.width = static_cast<int>(png.width);
  img.height = static_cast<int>(png.height);
  img.rgb.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, img.rgb.data(), 0, nullptr)) {
    std::string msg = png.message;
    png_image_free(&png);
    return InvalidArgumentError(name + ": PNG is truncated or corrupt: " + msg);
  }
  return img;
}

StatusOr<Image> DecodeJpeg(const uint8_t* data, size_t size, const std::string& name,
                           int min_side) {
  TjHandle tj(tjInitDecompress());
  if (!tj) return InternalError("cannot create a JPEG decoder");
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.get(), data, static_cast<unsigned long>(size), &w, &h, &subsamp,
                          &colorspace) != 0) {
    return InvalidArgumentError(name + ": not a readable JPEG: " +
                                tjGetErrorStr2(tj.get()));
  }
  DF_RETURN_IF_ERROR(CheckSize(w, h, name));
  int out_w = w, out_h = h;
  if (min_side > 0) {
    // Scaling factors come largest first; keep the smallest one that still covers min_side.
    int n = 0;
    tjscalingfactor* factors = tjGetScalingFactors(&n);
    for (int i = 0; i < n; ++i) {
      const tjscalingfactor f = factors[i];
      if (f.num > f.denom) continue;  // never upscale
      const int sw = TJSCALED(w, f), sh = TJSCALED(h, f);
      if (std::min(sw, sh) >= min_side && sw * sh < out_w * out_h) {
        out_w = sw;
        out_h = sh;
      }
    }
  }
  DF_RETURN_IF_ERROR(CheckPixels(out_w, out_h, name));
  Image img;
  img.width = out_w;
  img.height = out_h;
  img.rgb.resize(static_cast<size_t>(out_w) * out_h * 3);
  if (tjDecompress2(tj.get(), data, static_cast<unsigned long>(size), img.rgb.data(), out_w, 0,
                    out_h, TJPF_RGB, TJFLAG_ACCURATEDCT) != 0) {
    // Warnings (e.g. premature end of data) still produce an image in libjpeg-turbo, but a
    // truncated file means missing pixels: refuse it rather than train on grey.
    return InvalidArgumentError(name + ": JPEG is truncated or corrupt: " +
                                tjGetErrorStr2(tj.get()));
  }
  return img;
}

}  // namespace

StatusOr<Image> DecodeImage(const uint8_t* data, size_t size, const std::string& name,
                            int min_side) {
  if (IsPng(data, size)) return DecodePng(data, size, name);
  if (IsJpeg(data, size)) return DecodeJpeg(data, size, name, min_side);
  return InvalidArgumentError(name + ": neither PNG nor JPEG (" + std::to_string(size) +
                              " bytes)");
}

StatusOr<Image> DecodeImageFile(const std::string& path, int min_side) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return NotFoundError(path + ": cannot open image: " + std::strerror(errno));
  const std::streamoff size = in.tellg();
  // 512 MB is far above any dermoscopic image; bigger is an attack or a mistake.
  if (size < 0 || size > (512ll << 20)) {
    return InvalidArgumentError(path + ": image file of " + std::to_string(size) +
                                " bytes is too large");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), size);
  if (!in) return DataLossError(path + ": read failed");
  return DecodeImage(bytes.data(), bytes.size(), path, min_side);
}

StatusOr<std::vector<uint8_t>> EncodePng(const Image& image) {
  DF_RETURN_IF_ERROR(CheckSize(image.width, image.height, "PNG encode"));
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(png, size, 0, image.rgb.data(), 0, nullptr)) {
    return InternalError(std::string("PNG encode failed: ") + png.message);
  }
  std::vector<uint8_t> out(size);
  if (!png_image_write_to_memory(&png, out.data(), &size, 0, image.rgb.data(), 0, nullptr)) {
    return InternalError(std::string("PNG encode failed: ") + png.message);
  }
  out.resize(size);
  return out;
}

StatusOr<std::vector<uint8_t>> EncodeJpeg(const Image& image, int quality) {
  DF_RETURN_IF_ERROR(CheckSize(image.width, image.height, "JPEG encode"));
  TjHandle tj(tjInitCompress());
  if (!tj) return InternalError("cannot create a JPEG encoder");
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  if (tjCompress2(tj.get(), image.rgb.data(), image.width, 0, image.height, TJPF_RGB, &buf, &size,
                  TJSAMP_420, quality, TJFLAG_ACCURATEDCT) != 0) {
    std::string msg = tjGetErrorStr2(tj.get());
    tjFree(buf);
    return InternalError("JPEG encode failed: " + msg);
  }
  std::vector<uint8_t> out(buf, buf + size);
  tjFree(buf);
  return out;
}

Status WriteFileBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return InternalError(path + ": cannot create: " + std::strerror(errno));
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) return InternalError(path + ": write failed: " + std::strerror(errno));
  return OkStatus();
}

}  // namespace dermfed::client
