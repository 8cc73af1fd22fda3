#include "client/explain.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>
#include <optional>
#include <random>

#include "common/model/torch_call.h"

namespace dermfed::client {
namespace {

namespace F = torch::nn::functional;

// Rows scored per head pass: bounds the fusion layer's activations on large local datasets.
constexpr int64_t kHeadChunk = 8192;

// A seeded Fisher–Yates shuffle written out, so the same seed permutes the same way with
// every standard library (std::shuffle's algorithm is unspecified).
template <typename T>
void SeededShuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

torch::nn::SequentialImpl* Child(model::DualRefNetImpl& net, const char* name) {
  // named_children() returns its dictionary by value: look up in a copy that lives here,
  // not in a temporary (the modules themselves are owned by net).
  const auto children = net.named_children();
  const auto* child = children.find(name);
  return child ? (*child)->as<torch::nn::Sequential>() : nullptr;
}

// The part of DualRefNet after the image branch, with the image's share of the first fusion
// layer computed once: fusion.0(cat(e, m)) = W_e·e + b + W_m·m, so only W_m·m changes from
// one permutation to the next. This keeps a pass independent of the backbone's embedding
// width (4096 for VGG13).
struct CachedHead {
  torch::nn::SequentialImpl* metadata_mlp = nullptr;  // null without metadata
  torch::nn::SequentialImpl* fusion = nullptr;
  torch::Tensor metadata_weight;  // W_m: fusion_hidden x metadata_hidden (undefined without)
  torch::Tensor image_part;       // rows x fusion_hidden: W_e·e + b
};

StatusOr<CachedHead> PrepareHead(model::DualRefNetImpl& net, const torch::Tensor& embeddings) {
  CachedHead head;
  head.metadata_mlp = Child(net, "metadata");
  head.fusion = Child(net, "fusion");
  torch::nn::LinearImpl* first = head.fusion && !head.fusion->is_empty()
                                     ? head.fusion->ptr(0)->as<torch::nn::Linear>()
                                     : nullptr;
  if (first == nullptr || (net.options().metadata_dim > 0) != (head.metadata_mlp != nullptr)) {
    return InternalError(
        "DualRefNet's 'fusion' or 'metadata' submodule is not as "
        "client/explain.cc expects; it must follow DualRefNetImpl::Forward");
  }
  DF_RETURN_IF_ERROR(model::TorchCall("caching the image part of the head", [&] {
    torch::NoGradGuard no_grad;
    net.eval();
    const int64_t d = embeddings.size(1);
    TORCH_CHECK(first->weight.size(1) >= d, "fusion input ", first->weight.size(1),
                " is narrower than the image embedding ", d);
    head.image_part = F::linear(embeddings, first->weight.slice(1, 0, d), first->bias);
    if (head.metadata_mlp) head.metadata_weight = first->weight.slice(1, d);
  }));
  return head;
}

// Class probabilities (rows x K) for `metadata` (rows x width) with the cached image part.
StatusOr<torch::Tensor> HeadProbabilities(model::DualRefNetImpl& net, const CachedHead& head,
                                          const torch::Tensor& metadata) {
  return model::TorchCall("explanation forward", [&] {
    torch::NoGradGuard no_grad;
    net.eval();
    std::vector<torch::Tensor> out;
    const int64_t n = head.image_part.size(0);
    for (int64_t start = 0; start < n; start += kHeadChunk) {
      const int64_t end = std::min(n, start + kHeadChunk);
      torch::Tensor h = head.image_part.slice(0, start, end);
      if (head.metadata_mlp) {
        torch::Tensor m = metadata.slice(0, start, end).to(h.device(), torch::kFloat);
        h = h + F::linear(head.metadata_mlp->forward(m), head.metadata_weight);
      }
      // The rest of fusion (ReLU, Dropout: identity in eval) after its first Linear.
      for (auto it = std::next(head.fusion->begin()); it != head.fusion->end(); ++it) {
        h = it->forward(h);
      }
      out.push_back(torch::softmax(net.classifier()->forward(h), 1));
    }
    return torch::cat(out, 0);
  });
}

// p(true class) for every row, on the CPU.
StatusOr<std::vector<float>> TrueClassProbabilities(model::DualRefNetImpl& net,
                                                    const CachedHead& head,
                                                    const torch::Tensor& metadata,
                                                    const torch::Tensor& labels) {
  DF_ASSIGN_OR_RETURN(torch::Tensor probs, HeadProbabilities(net, head, metadata));
  return model::TorchCall("true-class probabilities", [&] {
    torch::Tensor p = probs.gather(1, labels.to(probs.device()).view({-1, 1}))
                          .view({-1})
                          .to(torch::kCPU, torch::kFloat)
                          .contiguous();
    return std::vector<float>(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
  });
}

// Per-class mean of `p` over the rows of each class (NaN for a class without rows).
std::vector<double> ClassMeans(const std::vector<float>& p, const std::vector<int64_t>& labels,
                               size_t k) {
  std::vector<double> sum(k, 0.0);
  std::vector<int64_t> n(k, 0);
  for (size_t i = 0; i < p.size(); ++i) {
    sum[labels[i]] += p[i];
    ++n[labels[i]];
  }
  for (size_t c = 0; c < k; ++c) sum[c] = n[c] > 0 ? sum[c] / static_cast<double>(n[c]) : NAN;
  return sum;
}

}  // namespace

StatusOr<std::vector<FeatureGroup>> FeatureGroupsOf(const MetadataSchema& schema,
                                                    const std::vector<std::string>& slot_names) {
  std::vector<FeatureGroup> groups;
  int offset = 0;
  for (const ColumnSpec& column : schema.columns) {
    if (!column.used) continue;
    FeatureGroup g;
    g.name = column.name;
    g.offset = offset;
    g.width =
        column.type == ColumnSpec::Type::kNumeric ? 2 : static_cast<int>(column.values.size()) + 1;
    for (int s = g.offset; s < g.offset + g.width; ++s) {
      if (s >= static_cast<int>(slot_names.size())) {
        return InvalidArgumentError("schema '" + schema.name + "': column '" + column.name +
                                    "' needs metadata slot " + std::to_string(s) +
                                    ", the encoding has only " + std::to_string(slot_names.size()));
      }
      const std::string& slot = slot_names[s];
      const bool named_after = slot.compare(0, column.name.size(), column.name) == 0 &&
                               (slot.size() == column.name.size() ||
                                slot[column.name.size()] == '=' || slot[column.name.size()] == ':');
      if (!named_after) {
        return InvalidArgumentError("schema '" + schema.name + "': metadata slot " +
                                    std::to_string(s) + " is '" + slot +
                                    "', expected one of column '" + column.name + "'");
      }
    }
    offset += g.width;
    groups.push_back(std::move(g));
  }
  if (offset != static_cast<int>(slot_names.size())) {
    return InvalidArgumentError("schema '" + schema.name + "' lays out " + std::to_string(offset) +
                                " metadata slots, the encoding has " +
                                std::to_string(slot_names.size()));
  }
  return groups;
}

void PermuteGroup(const FeatureGroup& group, const std::vector<int64_t>& perm, int width,
                  float* metadata) {
  const size_t n = perm.size();
  std::vector<float> original(n * static_cast<size_t>(group.width));
  for (size_t i = 0; i < n; ++i) {
    std::copy_n(metadata + i * width + group.offset, group.width, &original[i * group.width]);
  }
  for (size_t i = 0; i < n; ++i) {
    std::copy_n(&original[static_cast<size_t>(perm[i]) * group.width], group.width,
                metadata + i * width + group.offset);
  }
}

StatusOr<torch::Tensor> EmbedImages(model::DualRefNetImpl& net, const torch::Tensor& images) {
  return model::TorchCall("image embedding", [&] {
    torch::NoGradGuard no_grad;
    net.eval();
    // As DualRefNetImpl::Forward: the backbone sees the image downscaled by sr_factor.
    const int64_t f = net.options().sr_factor;
    torch::Tensor low_res = f > 1 ? F::avg_pool2d(images, F::AvgPool2dFuncOptions(f)) : images;
    return net.backbone().Embed(net.backbone().Features(low_res));
  });
}

StatusOr<torch::Tensor> ProbabilitiesFromEmbeddings(model::DualRefNetImpl& net,
                                                    const torch::Tensor& embeddings,
                                                    const torch::Tensor& metadata) {
  DF_ASSIGN_OR_RETURN(CachedHead head, PrepareHead(net, embeddings));
  return HeadProbabilities(net, head, metadata);
}

StatusOr<torch::Tensor> ImageEmbeddings(model::DualRefNetImpl& net, c10::Device device,
                                        const LoaderSource& source, const std::vector<int>& rows,
                                        const EvalConfig& config) {
  if (rows.empty()) return InvalidArgumentError("explanations: no rows to score");
  BatchLoader loader(source, rows, EvalLoaderConfig(config));
  loader.StartEpoch(0);
  std::vector<torch::Tensor> parts;
  bool checked = false;
  while (true) {
    DF_ASSIGN_OR_RETURN(std::optional<Batch> batch, loader.Next());
    if (!batch) break;
    torch::Tensor images = batch->images.to(device);
    DF_ASSIGN_OR_RETURN(torch::Tensor e, EmbedImages(net, images));
    if (!checked) {
      // The cached path re-implements the end of DualRefNetImpl::Forward; make sure, on a
      // few rows, that it still computes the same probabilities.
      checked = true;
      const int64_t few = std::min<int64_t>(4, images.size(0));
      torch::Tensor meta =
          batch->metadata.defined() ? batch->metadata.slice(0, 0, few) : torch::Tensor();
      DF_ASSIGN_OR_RETURN(torch::Tensor cached,
                          ProbabilitiesFromEmbeddings(net, e.slice(0, 0, few), meta));
      DF_ASSIGN_OR_RETURN(
          double gap, model::TorchCall("checking the cached forward", [&] {
            torch::NoGradGuard no_grad;
            torch::Tensor full = torch::softmax(
                net.forward(images.slice(0, 0, few), meta.defined() ? meta.to(device) : meta)
                    .logits,
                1);
            return (full - cached).abs().max().item<double>();
          }));
      if (!(gap < 1e-3)) {
        return InternalError(
            "explanations: the cached image-embedding path differs from "
            "DualRefNet's forward by " +
            std::to_string(gap) + "; client/explain.cc must follow DualRefNetImpl::Forward");
      }
    }
    parts.push_back(e);
  }
  return model::TorchCall("joining embeddings", [&] { return torch::cat(parts, 0); });
}

StatusOr<FeatureImportance> ImportanceFromEmbeddings(
    model::DualRefNetImpl& net, const torch::Tensor& embeddings, const std::vector<float>& metadata,
    const std::vector<int64_t>& labels, const std::vector<FeatureGroup>& groups,
    const std::vector<std::string>& class_names, const ImportanceConfig& config) {
  const int width = static_cast<int>(net.options().metadata_dim);
  const int64_t n = static_cast<int64_t>(labels.size());
  const size_t k = class_names.size();
  if (width <= 0) {
    return FailedPreconditionError(
        "explanations: the model takes no metadata, so there is no "
        "patient factor to explain");
  }
  if (static_cast<int64_t>(k) != net.options().num_classes) {
    return InvalidArgumentError("explanations: " + std::to_string(k) + " class names for a " +
                                std::to_string(net.options().num_classes) + "-class model");
  }
  if (n == 0 || embeddings.size(0) != n ||
      metadata.size() != static_cast<size_t>(n) * static_cast<size_t>(width)) {
    return InvalidArgumentError("explanations: " + std::to_string(n) + " labels, " +
                                std::to_string(embeddings.size(0)) + " embeddings and " +
                                std::to_string(metadata.size()) + " metadata values (width " +
                                std::to_string(width) + ") do not line up");
  }
  for (int64_t y : labels) {
    if (y < 0 || y >= static_cast<int64_t>(k)) {
      return InvalidArgumentError("explanations: label " + std::to_string(y) + " outside 0.." +
                                  std::to_string(k - 1));
    }
  }
  for (const FeatureGroup& g : groups) {
    if (g.offset < 0 || g.width < 1 || g.offset + g.width > width) {
      return InvalidArgumentError("explanations: feature '" + g.name + "' (slots " +
                                  std::to_string(g.offset) + "+" + std::to_string(g.width) +
                                  ") lies outside the " + std::to_string(width) +
                                  " metadata slots");
    }
  }
  if (config.repeats < 1) return InvalidArgumentError("explanations: repeats must be >= 1");

  DF_ASSIGN_OR_RETURN(torch::Tensor label_tensor, model::TorchCall("labels", [&] {
                        return torch::tensor(labels, torch::kLong);
                      }));
  auto as_tensor = [&](const std::vector<float>& m) {
    return model::TorchCall("metadata tensor", [&] {
      return torch::from_blob(const_cast<float*>(m.data()), {n, width}, torch::kFloat).clone();
    });
  };
  DF_ASSIGN_OR_RETURN(CachedHead head, PrepareHead(net, embeddings));
  DF_ASSIGN_OR_RETURN(torch::Tensor original, as_tensor(metadata));
  DF_ASSIGN_OR_RETURN(std::vector<float> p0,
                      TrueClassProbabilities(net, head, original, label_tensor));

  FeatureImportance out;
  out.classes = class_names;
  out.repeats = config.repeats;
  out.base_score = ClassMeans(p0, labels, k);
  out.rows.assign(k, 0);
  for (int64_t y : labels) ++out.rows[y];
  out.importance.assign(k, std::vector<double>(groups.size(), 0.0));

  std::mt19937_64 rng(config.seed);
  std::vector<float> permuted;
  std::vector<int64_t> perm(n);
  for (size_t f = 0; f < groups.size(); ++f) {
    out.features.push_back(groups[f].name);
    for (int r = 0; r < config.repeats; ++r) {
      std::iota(perm.begin(), perm.end(), 0);
      SeededShuffle(perm, rng);
      permuted = metadata;
      PermuteGroup(groups[f], perm, width, permuted.data());
      DF_ASSIGN_OR_RETURN(torch::Tensor m, as_tensor(permuted));
      DF_ASSIGN_OR_RETURN(std::vector<float> p, TrueClassProbabilities(net, head, m, label_tensor));
      const std::vector<double> score = ClassMeans(p, labels, k);
      for (size_t c = 0; c < k; ++c) {
        out.importance[c][f] += (out.base_score[c] - score[c]) / config.repeats;
      }
    }
  }
  out.overall.assign(groups.size(), 0.0);
  int classes_with_rows = 0;
  for (size_t c = 0; c < k; ++c) {
    if (out.rows[c] == 0) {
      std::fill(out.importance[c].begin(), out.importance[c].end(), NAN);
      continue;
    }
    ++classes_with_rows;
    for (size_t f = 0; f < groups.size(); ++f) out.overall[f] += out.importance[c][f];
  }
  for (double& v : out.overall) v /= classes_with_rows;
  return out;
}

StatusOr<FeatureImportance> ComputeImportance(model::DualRefNetImpl& net, c10::Device device,
                                              const LoaderSource& source,
                                              const std::vector<int>& rows,
                                              const std::vector<FeatureGroup>& groups,
                                              const std::vector<std::string>& class_names,
                                              const ImportanceConfig& config) {
  if (net.options().metadata_dim <= 0 || source.metadata_width <= 0) {
    return FailedPreconditionError(
        "explanations: the model takes no metadata, so there is no "
        "patient factor to explain");
  }
  if (source.metadata_width != net.options().metadata_dim) {
    return InvalidArgumentError("explanations: the data encodes " +
                                std::to_string(source.metadata_width) +
                                " metadata values per row, the model expects " +
                                std::to_string(net.options().metadata_dim));
  }
  std::vector<int> chosen = rows;
  if (config.max_rows > 0 && chosen.size() > static_cast<size_t>(config.max_rows)) {
    std::mt19937_64 rng(config.seed ^ 0x9e3779b97f4a7c15ull);
    SeededShuffle(chosen, rng);
    chosen.resize(static_cast<size_t>(config.max_rows));
    std::sort(chosen.begin(), chosen.end());
  }
  DF_ASSIGN_OR_RETURN(torch::Tensor embeddings,
                      ImageEmbeddings(net, device, source, chosen, config.eval));
  const size_t w = static_cast<size_t>(source.metadata_width);
  std::vector<float> metadata;
  std::vector<int64_t> labels;
  metadata.reserve(chosen.size() * w);
  labels.reserve(chosen.size());
  for (int r : chosen) {
    const float* row = &source.metadata[static_cast<size_t>(r) * w];
    metadata.insert(metadata.end(), row, row + w);
    labels.push_back(source.labels[r]);
  }
  return ImportanceFromEmbeddings(net, embeddings, metadata, labels, groups, class_names, config);
}

std::map<std::string, double> ImportanceMetrics(const FeatureImportance& importance) {
  std::map<std::string, double> m;
  for (size_t c = 0; c < importance.classes.size(); ++c) {
    const std::string& cls = importance.classes[c];
    m[kImportanceRowsPrefix + cls] = static_cast<double>(importance.rows[c]);
    if (importance.rows[c] == 0) continue;
    for (size_t f = 0; f < importance.features.size(); ++f) {
      m[kImportancePrefix + cls + "/" + importance.features[f]] = importance.importance[c][f];
    }
  }
  return m;
}

}  // namespace dermfed::client
