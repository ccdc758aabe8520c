// The decisions every request goes through before anything is sent upstream, whatever protocol
// carried it: the route (or the listener's one cluster) and a redirect, STRICT mTLS on an
// already-open plaintext connection, authorization, local rate limits and fault injection. They
// only decide (and count in the listener's stats); the protocol session carries them out: a local
// reply, closing the connection, or forwarding (after the fault delay, if any).
#ifndef OUTRIGGER_PROXY_SERVER_ADMISSION_H_
#define OUTRIGGER_PROXY_SERVER_ADMISSION_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "filters/router/route_table.h"
#include "proxy/config/snapshot.h"
#include "proxy/server/stats.h"

namespace outrigger::proxy {

class Worker;

// What the decisions look at.
struct RequestFacts {
  absl::string_view authority;
  absl::string_view path;    // origin-form path with query ("" for an asterisk-form target)
  absl::string_view target;  // the request target as received
  absl::string_view method;
  absl::FunctionRef<std::optional<absl::string_view>(absl::string_view)> header;
  absl::string_view peer_identity;  // the client's SPIFFE ID (inbound mTLS), or ""
  absl::string_view client_ip;
};

struct Admission {
  enum class Verdict {
    kForward,  // send it to `cluster`
    kReply,    // answer locally with `status`, `body`, `flag` (and `location`)
    kClose,    // close the connection without an answer (STRICT on a plaintext connection)
  };
  Verdict verdict = Verdict::kForward;
  int status = 0;
  std::string body;
  uint16_t flag = 0;
  std::string location;
  // kForward:
  const router::Route* route = nullptr;  // null for a listener with one cluster
  absl::string_view cluster;
  std::string rewritten_path;  // non-empty when the route rewrites the path
  absl::Duration route_timeout = absl::ZeroDuration();
  const router::RetryPolicy* retry = nullptr;
  absl::Duration fault_delay = absl::ZeroDuration();  // wait this long first (flag DI)
  // For the access log: "allow NS/NAME", "deny NS/NAME", "dry-run deny NS/NAME", or "".
  std::string authz_note;
};

// `chance(percent)` draws the fault-injection dice.
Admission Admit(Worker& worker, const ListenerConfig& listener, ListenerStats& stats,
                const RequestFacts& request, absl::FunctionRef<bool(double)> chance);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_ADMISSION_H_
