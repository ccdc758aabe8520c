// See admission.h. The order matters and is the one docs/life-of-a-request.md describes: route,
// redirect, STRICT, authorization, the listener's then the route's rate limit, fault abort, fault
// delay.
#include "proxy/server/admission.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "proxy/server/worker.h"
#include "xds/common/log.h"

namespace outrigger::proxy {

namespace {

Admission Reply(int status, absl::string_view body, uint16_t flag) {
  Admission a;
  a.verdict = Admission::Verdict::kReply;
  a.status = status;
  a.body = std::string(body);
  a.flag = flag;
  return a;
}

}  // namespace

Admission Admit(Worker& worker, const ListenerConfig& listener, ListenerStats& stats,
                const RequestFacts& request, absl::FunctionRef<bool(double)> chance) {
  Admission out;
  // Route: the listener's route table (authority, path, method, headers, query), or its one
  // cluster.
  out.retry = &listener.retry;
  if (listener.routes) {
    const router::RequestView view{request.authority, request.path, request.method,
                                   request.header};
    const router::Route* route = listener.routes->Match(view);
    if (route == nullptr) return Reply(404, "", kNoRoute);
    if (route->redirect) {
      Admission a = Reply(route->redirect->status, "", 0);
      a.location = route->RedirectLocation(view);
      return a;
    }
    out.route = route;
    out.cluster = route->PickCluster(worker.Random());
    out.route_timeout = route->timeout;
    out.retry = &route->retry;
    if (route->rewrite_prefix || !route->path_rewrite.empty()) {
      out.rewritten_path = route->RewritePath(request.path);
    }
  } else {
    out.cluster = listener.cluster;
  }

  // A listener switched to STRICT mTLS also stops serving plaintext connections already open.
  if (listener.tls_mode == TlsMode::kStrict && request.peer_identity.empty() &&
      listener.direction == Direction::kInbound) {
    ++stats.tls_plaintext_refused;
    LogDebug("STRICT mTLS on ", listener.name, ": closing a connection from ", request.client_ip,
             " without a mesh identity");
    out.verdict = Admission::Verdict::kClose;
    return out;
  }

  // Authorization (inbound): who is calling, and may they?
  if (listener.authz) {
    const authz::Decision d = listener.authz->Decide(
        {request.peer_identity, request.path.empty() ? request.target : request.path,
         request.method, request.header});
    if (!d.dry_run_denied_by.empty()) {
      ++stats.authz_dry_run_denied;
      out.authz_note = absl::StrCat("dry-run deny ", d.dry_run_denied_by);
      LogInfo("authorization dry run: ", request.method, " ", request.path, " from ",
              request.peer_identity.empty() ? absl::string_view("an unauthenticated caller")
                                            : request.peer_identity,
              " would be denied (", d.dry_run_denied_by, ")");
    }
    if (!d.allowed) {
      ++stats.authz_denied;
      Admission a = Reply(403, "RBAC: access denied\n", kRbacDenied);
      a.authz_note = d.policy.empty() ? std::string("deny (no ALLOW policy matches)")
                                      : absl::StrCat("deny ", d.policy);
      return a;
    }
    if (out.authz_note.empty() && !d.policy.empty()) {
      out.authz_note = absl::StrCat("allow ", d.policy);
    }
  }

  // Local rate limits (the listener's, then the route's), then fault injection.
  const auto now = std::chrono::steady_clock::now();
  if ((listener.rate_limit && !worker.TakeToken(*listener.rate_limit, now)) ||
      (out.route != nullptr && out.route->rate_limit &&
       !worker.TakeToken(*out.route->rate_limit, now))) {
    Admission a = Reply(429, "local rate limited\n", kRateLimited);
    a.authz_note = std::move(out.authz_note);
    return a;
  }
  if (out.route != nullptr && out.route->fault) {
    const router::FaultConfig& fault = *out.route->fault;
    if (fault.abort_status != 0 && chance(fault.abort_percent)) {
      Admission a = Reply(fault.abort_status, "fault filter abort\n", kFaultAbort);
      a.authz_note = std::move(out.authz_note);
      return a;
    }
    if (fault.delay > absl::ZeroDuration() && chance(fault.delay_percent)) {
      out.fault_delay = fault.delay;
    }
  }
  return out;
}

}  // namespace outrigger::proxy
