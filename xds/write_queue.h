// Outgoing messages of one gRPC callback stream. gRPC allows one write in flight per stream, but
// several threads want to send (responses to pushes, ACKs from the main loop): this queues them
// and tells the caller when to call StartWrite. Used by the proxy's ADS client, the control
// plane's discovery streams and the fan-out benchmark.
//
//   if (const auto* m = queue.Push(msg)) StartWrite(m);      // anywhere
//   void OnWriteDone(bool ok) { if (const auto* m = queue.Done(ok)) StartWrite(m); }
//
// StartWrite is called outside the queue's lock; the message stays in place until Done().
#ifndef OUTRIGGER_XDS_WRITE_QUEUE_H_
#define OUTRIGGER_XDS_WRITE_QUEUE_H_

#include <deque>
#include <mutex>
#include <utility>

namespace outrigger::xds {

template <typename Message>
class WriteQueue {
 public:
  // Queues `m`; returns the message to StartWrite now, or nullptr when a write is in flight (or
  // the queue is closed).
  const Message* Push(Message m) {
    return PushOrReplace(std::move(m), [](const Message&) { return false; });
  }

  // As Push, but a waiting (not yet written) message for which `replaces(waiting)` holds is
  // replaced in its place instead.
  template <typename Pred>
  const Message* PushOrReplace(Message m, Pred replaces) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return nullptr;
    for (size_t i = writing_ ? 1 : 0; i < queue_.size(); ++i) {
      if (replaces(queue_[i])) {
        queue_[i] = std::move(m);
        return nullptr;
      }
    }
    queue_.push_back(std::move(m));
    if (writing_) return nullptr;
    writing_ = true;
    return &queue_.front();
  }

  // From OnWriteDone: returns the next message to StartWrite, or nullptr.
  const Message* Done(bool ok) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.pop_front();
    if (!ok || queue_.empty() || closed_) {
      writing_ = false;
      return nullptr;
    }
    return &queue_.front();
  }

  // Accepts nothing more. Returns true for the call that closed it.
  bool Close() {
    std::lock_guard<std::mutex> lock(mu_);
    return !std::exchange(closed_, true);
  }

 private:
  std::mutex mu_;
  std::deque<Message> queue_;
  bool writing_ = false;
  bool closed_ = false;
};

}  // namespace outrigger::xds

#endif  // OUTRIGGER_XDS_WRITE_QUEUE_H_
