// The `gateway.networking.k8s.io/v1` `HTTPRoute` kind, in the Gateway API's mesh form (GAMMA):
// parentRefs name the Service whose traffic the route takes over; rules match requests, filter
// them and split them over weighted Service backends (the canary split), with timeouts and
// retries. Matches, filters and retries are converted in http_route_matches.cc,
// http_route_filters.cc and http_route_retry.cc.
#include <algorithm>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "controlplane/policy/duration.h"
#include "controlplane/policy/field_checks.h"
#include "controlplane/policy/kinds/http_route_parts.h"

namespace outrigger::policy {
namespace {

constexpr int64_t kMaxWeight = 1000000;

// group "" (or "core") and kind "Service", as the mesh form writes a Service reference.
void CheckServiceRef(const std::string& path, absl::string_view group, absl::string_view kind,
                     bool kind_required, FieldErrors* err) {
  if (!group.empty() && group != "core") {
    err->Add(absl::StrCat(path, ".group"),
             absl::StrCat("'", group, "': a Service is in the core group (\"\")"));
  }
  if (kind.empty() && kind_required) {
    err->Add(absl::StrCat(path, ".kind"),
             "required: Service (a mesh route's parent is a Service; Gateways are not "
             "supported)");
  } else if (!kind.empty() && kind != "Service") {
    err->Add(absl::StrCat(path, ".kind"),
             absl::StrCat("'", kind, "' is not supported: only Service references are"));
  }
}

void CheckRefName(const std::string& path, absl::string_view name, absl::string_view ns,
                  FieldErrors* err) {
  if (name.empty()) {
    err->Add(absl::StrCat(path, ".name"), "required");
  } else {
    err->Check(absl::StrCat(path, ".name"), CheckDnsLabel(name));
  }
  if (!ns.empty()) err->Check(absl::StrCat(path, ".namespace"), CheckDnsLabel(ns));
}

std::vector<ParentRef> ConvertParents(const v1::HTTPRouteSpec& spec, const std::string& route_ns,
                                      FieldErrors* err) {
  std::vector<ParentRef> out;
  if (spec.parent_refs().empty()) {
    err->Add("spec.parentRefs",
             "required: the Service whose traffic this route takes (group: \"\", kind: Service, "
             "name: ...)");
  }
  for (int i = 0; i < spec.parent_refs_size(); ++i) {
    const v1::ParentReference& in = spec.parent_refs(i);
    const std::string path = Item("spec.parentRefs", i);
    CheckServiceRef(path, in.group(), in.kind(), /*kind_required=*/true, err);
    CheckRefName(path, in.name(), in.namespace_(), err);
    ParentRef p;
    p.name = in.name();
    p.ns = in.namespace_().empty() ? route_ns : in.namespace_();
    if (in.has_port()) {
      err->Check(absl::StrCat(path, ".port"), CheckPort(in.port()));
      p.port = in.port();
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<BackendRef> ConvertBackends(const std::string& path, const v1::HTTPRouteRule& rule,
                                        const std::string& route_ns, FieldErrors* err) {
  std::vector<BackendRef> out;
  std::set<std::tuple<std::string, std::string, int>> seen;
  for (int i = 0; i < rule.backend_refs_size(); ++i) {
    const v1::HTTPBackendRef& in = rule.backend_refs(i);
    const std::string item = Item(absl::StrCat(path, ".backendRefs"), i);
    BackendRef b =
        ConvertBackend(item, in.group(), in.kind(), in.name(), in.namespace_(),
                       in.has_port() ? std::optional<int>(in.port()) : std::nullopt, route_ns, err);
    if (in.has_weight()) {
      if (in.weight() < 0 || in.weight() > kMaxWeight) {
        err->Add(absl::StrCat(item, ".weight"),
                 absl::StrCat(in.weight(), " is not a weight (0 to 1000000)"));
      } else {
        b.weight = static_cast<uint32_t>(in.weight());
      }
    }
    if (!b.name.empty() && !seen.emplace(b.ns, b.name, b.port).second) {
      err->Add(absl::StrCat(item, ".name"),
               absl::StrCat("Service ", b.key().ToString(), " port ", b.port,
                            " is already a backend of this rule; give it one backendRef"));
    }
    out.push_back(std::move(b));
  }
  return out;
}

RouteTimeouts ConvertTimeouts(const std::string& path, const v1::HTTPRouteTimeouts& in,
                              FieldErrors* err) {
  RouteTimeouts out;
  if (!in.request().empty()) {
    out.request = DurationField(absl::StrCat(path, ".request"), in.request(), err);
  }
  if (!in.backend_request().empty()) {
    out.backend_request =
        DurationField(absl::StrCat(path, ".backendRequest"), in.backend_request(), err);
  }
  // As the Gateway API: one try cannot outlast the whole request (unless that has no limit).
  if (out.request && out.backend_request && *out.request != absl::ZeroDuration() &&
      *out.backend_request > *out.request) {
    err->Add(absl::StrCat(path, ".backendRequest"),
             absl::StrCat(in.backend_request(), " is longer than the request timeout (",
                          in.request(), ")"));
  }
  return out;
}

void Load(const PolicyDocument& doc, PolicySet* set, PolicyErrors* errors) {
  v1::HTTPRoute msg;
  auto fields = ParseDocument(doc, &msg, errors);
  if (fields == nullptr) return;
  FieldErrors err(*fields, errors);
  HttpRoute route;
  route.meta = ConvertMeta(doc, msg.metadata(), fields, &err);
  const v1::HTTPRouteSpec& spec = msg.spec();
  route.parent_refs = ConvertParents(spec, route.meta.ns, &err);
  for (int i = 0; i < spec.hostnames_size(); ++i) {
    err.Check(Item("spec.hostnames", i), CheckHostname(spec.hostnames(i), true));
    route.hostnames.push_back(spec.hostnames(i));
  }
  if (spec.rules().empty()) err.Add("spec.rules", "a route needs at least one rule");
  std::set<std::string> rule_names;
  for (int i = 0; i < spec.rules_size(); ++i) {
    const v1::HTTPRouteRule& in = spec.rules(i);
    const std::string path = Item("spec.rules", i);
    RouteRule rule;
    rule.name = in.name();
    if (!rule.name.empty()) {
      err.Check(absl::StrCat(path, ".name"), CheckDnsSubdomain(rule.name));
      if (!rule_names.insert(rule.name).second) {
        err.Add(absl::StrCat(path, ".name"),
                absl::StrCat("rule name '", rule.name, "' is used twice"));
      }
    }
    rule.matches = ConvertMatches(path, in, &err);
    rule.filters = ConvertFilters(path, in, rule.matches, route.meta.ns, &err);
    rule.backend_refs = ConvertBackends(path, in, route.meta.ns, &err);
    rule.timeouts = ConvertTimeouts(absl::StrCat(path, ".timeouts"), in.timeouts(), &err);
    rule.retry = ConvertRetry(path, in, &err);
    const bool redirects = std::any_of(rule.filters.begin(), rule.filters.end(),
                                       [](const RouteFilter& f) { return f.request_redirect; });
    // A redirect is answered by the sidecar: nothing is forwarded to retry or to copy.
    if (redirects && rule.retry) {
      err.Add(absl::StrCat(path, ".retry"),
              "a rule with a RequestRedirect filter forwards nothing to retry");
    }
    for (size_t f = 0; redirects && f < rule.filters.size(); ++f) {
      if (rule.filters[f].request_mirror) {
        err.Add(absl::StrCat(Item(absl::StrCat(path, ".filters"), f), ".type"),
                "a rule with a RequestRedirect filter forwards nothing to mirror");
      }
    }
    if (rule.backend_refs.empty() && !redirects && in.backend_refs_size() == 0) {
      // The Gateway API answers such a rule with 500; the proxies cannot yet, so refuse it here
      // rather than have every proxy reject the routes.
      err.Add(path, "needs backendRefs or a RequestRedirect filter");
    }
    route.rules.push_back(std::move(rule));
  }
  set->http_routes.emplace(route.meta.key(), std::move(route));
}

// A referenced Service must be in the policy, and a port given must be one of its ports.
void CheckServiceExists(const PolicySet& set, const std::string& path, const ObjectKey& key,
                        std::optional<int> port, FieldErrors* err) {
  if (key.name.empty()) return;  // reported already
  const Service* svc = set.FindService(key);
  if (svc == nullptr) {
    if (!Declared(set, "Service", key)) {
      err->Add(absl::StrCat(path, ".name"),
               absl::StrCat("Service ", key.ToString(), " is not defined in the policy"));
    }
    return;
  }
  if (port && *port > 0 && svc->FindPort(*port) == nullptr) {
    err->Add(absl::StrCat(path, ".port"),
             absl::StrCat(*port, " is not a port of Service ", key.ToString(),
                          " (its ports: ", PortList(*svc), ")"));
  }
}

// An ExtensionRef must name a document of its kind in the route's namespace.
void CheckExtensionExists(const PolicySet& set, const std::string& path, const ExtensionRef& ref,
                          FieldErrors* err) {
  if (ref.name.empty()) return;  // reported already
  const bool found = ref.kind == "HTTPFault" ? set.FindHttpFault(ref.key()) != nullptr
                                             : set.FindLocalRateLimit(ref.key()) != nullptr;
  if (!found && !Declared(set, ref.kind, ref.key())) {
    err->Add(absl::StrCat(path, ".name"),
             absl::StrCat(ref.kind, " ", ref.key().ToString(),
                          " is not defined in the policy (an extensionRef names a document of "
                          "the route's namespace)"));
  }
}

void Check(const PolicySet& set, PolicyErrors* errors) {
  for (const auto& [key, route] : set.http_routes) {
    FieldErrors err(*route.meta.fields, errors);
    for (size_t i = 0; i < route.parent_refs.size(); ++i) {
      const ParentRef& p = route.parent_refs[i];
      CheckServiceExists(set, Item("spec.parentRefs", i), p.key(), p.port, &err);
    }
    for (size_t r = 0; r < route.rules.size(); ++r) {
      const std::string rule_path = Item("spec.rules", r);
      const RouteRule& rule = route.rules[r];
      // The Gateway API's rule (backendRequest <= request) against the request timeout the rule
      // inherits from the Mesh when it writes none.
      const std::optional<absl::Duration>& mesh_timeout = set.mesh.default_timeout;
      if (rule.timeouts.backend_request && !rule.timeouts.request && mesh_timeout &&
          *mesh_timeout > absl::ZeroDuration() && *rule.timeouts.backend_request > *mesh_timeout) {
        err.Add(absl::StrCat(rule_path, ".timeouts.backendRequest"),
                absl::StrCat(FormatGatewayDuration(*rule.timeouts.backend_request),
                             " is longer than the request timeout this rule takes from "
                             "Mesh.spec.defaultTimeout (",
                             FormatGatewayDuration(*mesh_timeout), ")"));
      }
      for (size_t b = 0; b < rule.backend_refs.size(); ++b) {
        const BackendRef& ref = rule.backend_refs[b];
        CheckServiceExists(set, Item(absl::StrCat(rule_path, ".backendRefs"), b), ref.key(),
                           ref.port, &err);
      }
      for (size_t f = 0; f < rule.filters.size(); ++f) {
        const std::string filter_path = Item(absl::StrCat(rule_path, ".filters"), f);
        if (rule.filters[f].request_mirror) {
          const BackendRef& ref = rule.filters[f].request_mirror->backend_ref;
          CheckServiceExists(set, absl::StrCat(filter_path, ".requestMirror.backendRef"), ref.key(),
                             ref.port, &err);
        }
        if (rule.filters[f].extension_ref) {
          CheckExtensionExists(set, absl::StrCat(filter_path, ".extensionRef"),
                               *rule.filters[f].extension_ref, &err);
        }
      }
    }
  }
}

}  // namespace

BackendRef ConvertBackend(const std::string& path, absl::string_view group, absl::string_view kind,
                          absl::string_view name, absl::string_view ns, std::optional<int> port,
                          const std::string& route_ns, FieldErrors* err) {
  CheckServiceRef(path, group, kind, /*kind_required=*/false, err);
  CheckRefName(path, name, ns, err);
  BackendRef b;
  b.name = std::string(name);
  b.ns = ns.empty() ? route_ns : std::string(ns);
  if (!port) {
    err->Add(absl::StrCat(path, ".port"), "required for a Service backend");
  } else {
    err->Check(absl::StrCat(path, ".port"), CheckPort(*port));
    b.port = *port;
  }
  return b;
}

const PolicyKind& HttpRouteKind() {
  static const PolicyKind kind{"gateway.networking.k8s.io/v1", "HTTPRoute", /*namespaced=*/true,
                               &Load, &Check};
  return kind;
}

}  // namespace outrigger::policy
