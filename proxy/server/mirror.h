// Request mirroring: a copy of a request goes to another cluster, fire-and-forget. The copy runs
// as its own coroutine on the worker, so the primary request never waits for it; its answer is
// read and discarded, and its connection goes back to the pool. Copies are dropped (counted)
// when the mirror cluster's circuit breaker is full or the cluster has no host.
#ifndef OUTRIGGER_PROXY_SERVER_MIRROR_H_
#define OUTRIGGER_PROXY_SERVER_MIRROR_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace outrigger::proxy {

class Worker;

// `request` is the whole request as it goes on the wire (head and framed body). `timeout`
// bounds the whole exchange. Call on the worker's thread.
void SendMirror(Worker& worker, absl::string_view cluster, std::string request, bool head_request,
                absl::Duration timeout);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_MIRROR_H_
