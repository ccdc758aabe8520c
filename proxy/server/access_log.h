// The access log: one JSON object per request on stdout. Each worker formats into its own buffer
// and flushes whole lines (at most PIPE_BUF bytes per write, so lines from different workers never
// interleave) when the buffer fills or its flush timer fires; nothing on the request path blocks.
#ifndef OUTRIGGER_PROXY_SERVER_ACCESS_LOG_H_
#define OUTRIGGER_PROXY_SERVER_ACCESS_LOG_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace outrigger::proxy {

struct RequestInfo {
  absl::Time start_time;
  absl::string_view listener;
  absl::string_view method;
  absl::string_view authority;
  absl::string_view path;
  int version = 11;  // 10, 11, 20 (HTTP/2), or 0 for a raw TCP connection
  int status = 0;
  uint16_t flags = 0;
  absl::string_view cluster;
  absl::string_view upstream_host;
  double duration_ms = 0;
  double response_duration_ms = -1;  // to the upstream response head; -1: none came
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  absl::string_view request_id;
  absl::string_view trace_id;  // 32 hex digits, or ""
  absl::string_view forwarded_for;
  absl::string_view source_identity;  // the client's SPIFFE ID (inbound mTLS), or ""
  absl::string_view authz;  // "allow <policy>", "deny <policy>", "dry-run deny <policy>", or ""
};

class AccessLog {
 public:
  explicit AccessLog(bool enabled) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }
  // Formats one line into the buffer. Returns true when the caller should schedule a flush.
  bool Write(const RequestInfo& info);
  void Flush();
  bool empty() const { return buf_.empty(); }

 private:
  bool enabled_;
  std::string buf_;
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_ACCESS_LOG_H_
