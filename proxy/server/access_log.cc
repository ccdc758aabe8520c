// See access_log.h.
#include "proxy/server/access_log.h"

#include <limits.h>
#include <unistd.h>

#include "absl/strings/string_view.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proxy/server/stats.h"
#include "xds/common/json.h"

namespace outrigger::proxy {

bool AccessLog::Write(const RequestInfo& r) {
  if (!enabled_) return false;
  const bool was_empty = buf_.empty();
  buf_ += "{\"start_time\":\"";
  buf_ += absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", r.start_time, absl::UTCTimeZone());
  buf_ += "\",\"listener\":";
  AppendJsonString(r.listener, &buf_);
  buf_ += ",\"method\":";
  AppendJsonString(r.method, &buf_);
  buf_ += ",\"authority\":";
  AppendJsonString(r.authority, &buf_);
  buf_ += ",\"path\":";
  AppendJsonString(r.path, &buf_);
  absl::StrAppend(&buf_, ",\"protocol\":\"",
                  r.version == 0    ? "TCP"
                  : r.version == 20 ? "HTTP/2"
                  : r.version == 10 ? "HTTP/1.0"
                                    : "HTTP/1.1",
                  "\",\"response_code\":", r.status, ",\"response_flags\":\"",
                  ResponseFlagsString(r.flags), "\",\"upstream_cluster\":");
  AppendJsonString(r.cluster, &buf_);
  buf_ += ",\"upstream_host\":";
  AppendJsonString(r.upstream_host, &buf_);
  absl::StrAppend(&buf_, ",\"duration_ms\":", absl::StrFormat("%.3f", r.duration_ms));
  if (r.response_duration_ms >= 0) {
    absl::StrAppend(&buf_, ",\"response_duration_ms\":",
                    absl::StrFormat("%.3f", r.response_duration_ms));
  } else {
    buf_ += ",\"response_duration_ms\":null";
  }
  absl::StrAppend(&buf_, ",\"bytes_received\":", r.bytes_received, ",\"bytes_sent\":",
                  r.bytes_sent, ",\"request_id\":");
  AppendJsonString(r.request_id, &buf_);
  buf_ += ",\"trace_id\":";
  AppendJsonString(r.trace_id, &buf_);
  buf_ += ",\"x_forwarded_for\":";
  AppendJsonString(r.forwarded_for, &buf_);
  buf_ += ",\"source_identity\":";
  AppendJsonString(r.source_identity, &buf_);
  buf_ += ",\"authz\":";
  AppendJsonString(r.authz, &buf_);
  buf_ += "}\n";
  if (buf_.size() >= 64 * 1024) {
    Flush();
    return false;
  }
  return was_empty;
}

void AccessLog::Flush() {
  size_t pos = 0;
  while (pos < buf_.size()) {
    // Whole lines, at most PIPE_BUF bytes per write (a longer line goes alone).
    size_t end = pos;
    while (end < buf_.size()) {
      size_t nl = buf_.find('\n', end);
      size_t next = nl == std::string::npos ? buf_.size() : nl + 1;
      if (end != pos && next - pos > PIPE_BUF) break;
      end = next;
    }
    size_t off = pos;
    while (off < end) {
      ssize_t n = ::write(STDOUT_FILENO, buf_.data() + off, end - off);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        buf_.clear();  // stdout is gone; dropping the log must not stop the proxy
        return;
      }
      off += static_cast<size_t>(n);
    }
    pos = end;
  }
  buf_.clear();
}

}  // namespace outrigger::proxy
