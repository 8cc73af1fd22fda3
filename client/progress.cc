#include "client/progress.h"

#include <unistd.h>

#include <cstdio>

namespace dermfed::client {

ProgressBar::ProgressBar(std::string label, int64_t total_steps)
    : label_(std::move(label)),
      total_(total_steps),
      tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

void ProgressBar::Update(int64_t images, double mean_loss) {
  ++step_;
  images_ += images;
  loss_ = mean_loss;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  const double rate = elapsed > 0 ? images_ / elapsed : 0;
  const double eta = step_ > 0 ? elapsed / step_ * (total_ - step_) : 0;
  if (tty_) {
    if (since < 0.1 && step_ < total_) return;
    constexpr int kWidth = 24;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * step_ / total_) : kWidth;
    std::string bar(filled, '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r%s [%s] %lld/%lld loss %.4f %.1f img/s ETA %d:%02d  ", label_.c_str(),
                 bar.c_str(), static_cast<long long>(step_), static_cast<long long>(total_), loss_,
                 rate, static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
  } else {
    if (since < 10 && step_ < total_) return;
    std::fprintf(stderr, "%s step %lld/%lld loss %.4f %.1f img/s eta %ds\n", label_.c_str(),
                 static_cast<long long>(step_), static_cast<long long>(total_), loss_, rate,
                 static_cast<int>(eta));
  }
  last_print_ = now;
}

void ProgressBar::Finish() {
  if (tty_) std::fprintf(stderr, "\n");
}

}  // namespace dermfed::client
