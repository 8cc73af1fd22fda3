// A one-line progress bar on a terminal (epoch, step, loss, images/s, ETA), redrawn in
// place; plain log lines every few seconds when stderr is not a TTY (CI logs, systemd).
//
// Not thread-safe: one training loop owns it.
#ifndef DERMFED_CLIENT_PROGRESS_H_
#define DERMFED_CLIENT_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace dermfed::client {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total_steps);
  // After each step: `images` processed in it, and the running mean loss.
  void Update(int64_t images, double mean_loss);
  // Ends the line (TTY) or prints the summary line.
  void Finish();

 private:
  std::string label_;
  int64_t total_;
  int64_t step_ = 0;
  int64_t images_ = 0;
  double loss_ = 0;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_PROGRESS_H_
