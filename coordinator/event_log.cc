#include "coordinator/event_log.h"

namespace dermfed::coordinator {

int64_t EventLog::Publish(v1::Event event) {
  int64_t seq;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = ++last_seq_;
    event.set_seq(seq);
    event.set_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count());
    events_.push_back(std::move(event));
    while (events_.size() > capacity_) events_.pop_front();
  }
  cv_.notify_all();
  return seq;
}

int64_t EventLog::Publish(v1::Event::Kind kind, int64_t round, int64_t version,
                          const std::string& site, const std::string& message) {
  v1::Event e;
  e.set_kind(kind);
  e.set_round(round);
  e.set_model_version(version);
  e.set_site(site);
  e.set_message(message);
  return Publish(std::move(e));
}

std::vector<v1::Event> EventLog::After(int64_t after_seq, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, wait, [&] { return closed_ || last_seq_ > after_seq; });
  std::vector<v1::Event> out;
  for (const auto& e : events_) {
    if (e.seq() > after_seq) out.push_back(e);
  }
  return out;
}

int64_t EventLog::last_seq() {
  std::lock_guard<std::mutex> lock(mu_);
  return last_seq_;
}

void EventLog::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

bool EventLog::closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

}  // namespace dermfed::coordinator
