// Request mirroring: a copy of a request goes to another cluster, fire-and-forget. The copy runs
// as its own coroutine on the worker, so the primary request never waits for it; its answer is
// read and discarded. It connects like any request (mTLS to mesh peers, pooled connections) and
// travels as the mirror cluster speaks: HTTP/1.1, or a stream of the host's shared HTTP/2
// connection. Copies are dropped (counted) when the mirror cluster's circuit breaker is full, it
// has no host, the copy cannot be sent in its protocol (a chunked body to HTTP/2), or the
// exchange fails or times out.
#ifndef OUTRIGGER_PROXY_SERVER_MIRROR_H_
#define OUTRIGGER_PROXY_SERVER_MIRROR_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace outrigger::proxy {

class Worker;

// A copy of a request, written as it would go over HTTP/1.1.
struct MirrorCopy {
  std::string head;      // the request head as WriteUpstreamHead wrote it (Host "<host>-shadow")
  std::string body;      // the whole body, framed as the head says
  bool chunked = false;  // the body is chunked
  // For the HTTP/2 form of the copy.
  std::string method;
  std::string target;
  std::string authority;
  bool te_trailers = false;  // the client asked for trailers (gRPC)
};

// `timeout` bounds the whole exchange (15 s when zero or infinite). Call on the worker's thread.
void SendMirror(Worker& worker, absl::string_view cluster, MirrorCopy copy,
                absl::Duration timeout);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_MIRROR_H_
