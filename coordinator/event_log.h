// EventLog: the federation's recent history as a numbered stream of v1::Event, for the
// monitor service's live Watch. Publishers (the round engine) append; watchers block until
// something newer than what they have seen arrives. Only the last `capacity` events are
// kept; a watcher that fell further behind resumes from the oldest one retained.
//
// Thread-safe.
#ifndef DERMFED_COORDINATOR_EVENT_LOG_H_
#define DERMFED_COORDINATOR_EVENT_LOG_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "dermfed/v1/monitor.pb.h"

namespace dermfed::coordinator {

class EventLog {
 public:
  explicit EventLog(size_t capacity = 4096) : capacity_(capacity) {}

  // Stamps the event with the next sequence number and the time; returns the number.
  int64_t Publish(v1::Event event);
  // Convenience for the common fields.
  int64_t Publish(v1::Event::Kind kind, int64_t round, int64_t version, const std::string& site,
                  const std::string& message);
  // Retained events with seq > after_seq. If there are none, waits up to `wait` for one;
  // returns empty on timeout or once Close() was called.
  std::vector<v1::Event> After(int64_t after_seq, std::chrono::milliseconds wait);
  int64_t last_seq();
  // Wakes every watcher; After() no longer waits. Events can still be published.
  void Close();
  bool closed();

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::Event> events_;
  int64_t last_seq_ = 0;
  bool closed_ = false;
};

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_EVENT_LOG_H_
