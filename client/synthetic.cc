#include "client/synthetic.h"

#include <torch/torch.h>

#include <cmath>

namespace dermfed::client {
namespace {

const std::vector<double> kPadUfesCounts = {845, 730, 244, 235, 192, 52};

}  // namespace

std::vector<int64_t> TensorDataset::ClassCounts(int64_t num_classes) const {
  std::vector<int64_t> counts(num_classes, 0);
  if (size() == 0) return counts;
  torch::Tensor bc = torch::bincount(labels.to(torch::kCPU), {}, num_classes);
  for (int64_t c = 0; c < num_classes && c < bc.size(0); ++c) counts[c] = bc[c].item<int64_t>();
  return counts;
}

TensorDataset TensorDataset::Slice(int64_t begin, int64_t end) const {
  TensorDataset out;
  out.images = images.slice(0, begin, end);
  if (metadata.defined()) out.metadata = metadata.slice(0, begin, end);
  out.labels = labels.slice(0, begin, end);
  return out;
}

TensorDataset TensorDataset::Select(const torch::Tensor& indices) const {
  TensorDataset out;
  out.images = images.index_select(0, indices);
  if (metadata.defined()) out.metadata = metadata.index_select(0, indices);
  out.labels = labels.index_select(0, indices);
  return out;
}

torch::Tensor DrawLesionImages(const torch::Tensor& labels, int64_t num_classes, int64_t image_size,
                               at::Generator& gen) {
  torch::NoGradGuard no_grad;
  const int64_t n = labels.size(0), k = num_classes, s = image_size;
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  // Per-class lesion colour (spread around the hue circle) and border ring frequency.
  torch::Tensor hue = torch::arange(k, torch::kFloat32) / static_cast<double>(k) * 2 * M_PI;
  torch::Tensor palette = torch::stack({0.45 + 0.3 * torch::cos(hue), 0.35 + 0.25 * torch::sin(hue),
                                        0.3 + 0.2 * torch::cos(hue + 2.1)},
                                       1);                              // K x 3
  torch::Tensor rings = 2.0 + torch::arange(k, torch::kFloat32) * 1.5;  // K

  torch::Tensor coords = torch::linspace(-1, 1, s, f32);
  torch::Tensor yy = coords.view({1, s, 1}).expand({n, s, s});
  torch::Tensor xx = coords.view({1, 1, s}).expand({n, s, s});
  torch::Tensor cx = (torch::rand({n, 1, 1}, gen, f32) - 0.5) * 0.6;
  torch::Tensor cy = (torch::rand({n, 1, 1}, gen, f32) - 0.5) * 0.6;
  torch::Tensor radius = 0.3 + 0.3 * torch::rand({n, 1, 1}, gen, f32);
  torch::Tensor dist = torch::sqrt((xx - cx).pow(2) + (yy - cy).pow(2)) / radius;
  torch::Tensor lesion = torch::sigmoid((1.0 - dist) * 12.0);  // soft disk, N x s x s
  torch::Tensor ring =
      0.5 + 0.5 * torch::cos(dist * rings.index_select(0, labels).view({n, 1, 1}) * M_PI);

  torch::Tensor skin = torch::tensor({0.85, 0.65, 0.55}, f32).view({1, 3, 1, 1}) *
                       (0.8 + 0.3 * torch::rand({n, 1, 1, 1}, gen, f32));
  torch::Tensor colour = palette.index_select(0, labels).view({n, 3, 1, 1});
  torch::Tensor lesion_pixels = colour * (0.75 + 0.25 * ring.unsqueeze(1));
  torch::Tensor image = skin * (1 - lesion.unsqueeze(1)) + lesion_pixels * lesion.unsqueeze(1);
  return (image + 0.06 * torch::randn({n, 3, s, s}, gen, f32)).clamp(0, 1);
}

TensorDataset MakeSyntheticDataset(const SyntheticSpec& spec) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(spec.seed);
  const int64_t n = spec.rows, k = spec.num_classes;
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);

  std::vector<double> w = spec.class_weights;
  if (w.empty()) {
    for (int64_t c = 0; c < k; ++c) w.push_back(kPadUfesCounts[c % kPadUfesCounts.size()]);
  }
  torch::Tensor probs = torch::tensor(w, torch::kFloat64);
  torch::Tensor labels = torch::multinomial(probs, n, /*replacement=*/true, gen);
  torch::Tensor image = DrawLesionImages(labels, k, spec.image_size, gen);

  torch::Tensor mean = torch::tensor({0.485, 0.456, 0.406}, f32).view({1, 3, 1, 1});
  torch::Tensor std = torch::tensor({0.229, 0.224, 0.225}, f32).view({1, 3, 1, 1});

  TensorDataset data;
  data.images = (image - mean) / std;
  data.labels = labels;
  if (spec.metadata_dim > 0) {
    // A noisy class signal: a few columns shifted by the class, the rest pure noise.
    torch::Tensor meta = torch::randn({n, spec.metadata_dim}, gen, f32);
    torch::Tensor shift = torch::randn({k, spec.metadata_dim}, gen, f32) * 0.8;
    data.metadata = meta + shift.index_select(0, labels);
  }
  return data;
}

}  // namespace dermfed::client
