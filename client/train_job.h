// `dermfed train` as a library call: read a site's data, split it by patient/lesion, train
// DualRefNet with the site's own class counts, keep the epoch with the best validation
// balanced accuracy, and write RUN/ (run_dir.h) with the test part's metrics.
//
// Not thread-safe.
#ifndef DERMFED_CLIENT_TRAIN_JOB_H_
#define DERMFED_CLIENT_TRAIN_JOB_H_

#include <string>

#include "client/data/split.h"
#include "client/site_data.h"
#include "client/trainer.h"
#include "common/metrics.h"
#include "common/status.h"

namespace dermfed::client {

struct TrainJobConfig {
  SiteDataOptions data;
  model::DualRefNetOptions model;  // num_classes and metadata_dim come from the data
  TrainerConfig trainer;
  SplitFractions split;
  int image_size = 224;
  int epochs = 10;
  int workers = 0;   // decoding threads; 0 = all cores
  std::string device = "auto";
  std::string pretrained;  // torchvision checkpoint for the backbone, "" = none
  std::string out;         // RUN folder
  bool augment = true;
  // Continue an interrupted run in `out` from its last finished epoch (RUN/resume/ holds the
  // weights, optimizer state and progress after every epoch).
  bool resume = false;
};

struct TrainJobResult {
  int best_epoch = 0;
  double best_validation_balanced_accuracy = 0;
  ClassificationReport test;
};

StatusOr<TrainJobResult> RunTrainJob(const TrainJobConfig& config);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_TRAIN_JOB_H_
