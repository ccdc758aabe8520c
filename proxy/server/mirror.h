// Request mirroring: a copy of a request goes to another cluster, fire-and-forget. The copy runs
// as its own coroutine on the worker, so the primary request never waits for it; its answer is
// read and discarded, and its connection goes back to the pool (mTLS to mesh peers, as for any
// request). A cluster whose upstream protocol is HTTP/2 gets the copy as a stream of the host's
// shared HTTP/2 connection (SendMirrorH2). Copies are dropped (counted) when the mirror cluster's
// circuit breaker is full, the cluster has no host, or the exchange fails or times out.
#ifndef OUTRIGGER_PROXY_SERVER_MIRROR_H_
#define OUTRIGGER_PROXY_SERVER_MIRROR_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proxy/http2/h2_codec.h"

namespace outrigger::proxy {

class Worker;

// `request` is the whole request as it goes on the wire (head and framed body). `timeout`
// bounds the whole exchange. Call on the worker's thread.
void SendMirror(Worker& worker, absl::string_view cluster, std::string request, bool head_request,
                absl::Duration timeout);
// To an HTTP/2 cluster: `head` as HTTP/2 fields (pseudo-headers first), `body` whole.
void SendMirrorH2(Worker& worker, absl::string_view cluster, http2::Headers head,
                  std::string body, absl::Duration timeout);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_MIRROR_H_
