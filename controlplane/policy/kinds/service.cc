// The `v1` `Service` kind: which workloads (by label selector) make a service, and its ports.
// Fields people copy from a live cluster (type, clusterIP, sessionAffinity, ipFamilies, ...,
// nodePort) are accepted and ignored: the mesh addresses a service by name and balances each
// request itself.
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "controlplane/policy/field_checks.h"
#include "controlplane/policy/kinds/kind_support.h"

namespace outrigger::policy {
namespace {

// targetPort is written as a string so that both `9080` and `http` load.
void ConvertTargetPort(const std::string& path, const v1::ServicePort& in, ServicePort* out,
                       FieldErrors* err) {
  const std::string& t = in.target_port();
  if (t.empty()) {
    out->target_port = out->port;
  } else if (absl::ascii_isdigit(static_cast<unsigned char>(t[0]))) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(t, &n)) {
      err->Add(path, absl::StrCat("'", t, "' is neither a port number nor a port name"));
    } else {
      err->Check(path, CheckPort(n));
      out->target_port = static_cast<int>(n);
    }
  } else {
    err->Check(path, CheckPortName(t));
    out->target_port_name = t;
  }
}

std::string Protocol(const std::string& path, const std::string& protocol, FieldErrors* err) {
  if (protocol.empty() || protocol == "TCP") return "TCP";
  if (protocol == "UDP" || protocol == "SCTP") {
    err->Add(path, absl::StrCat(protocol, " is not carried by the mesh; only TCP is"));
  } else {
    err->Add(path, absl::StrCat("'", protocol, "' is not a protocol (TCP, UDP or SCTP)"));
  }
  return protocol;
}

void ConvertPorts(const v1::ServiceSpec& spec, Service* svc, FieldErrors* err) {
  if (spec.ports().empty()) {
    err->Add("spec.ports", "a Service needs at least one port");
    return;
  }
  std::map<std::string, int> names;
  std::map<int, int> numbers;
  for (int i = 0; i < spec.ports_size(); ++i) {
    const v1::ServicePort& in = spec.ports(i);
    const std::string path = Item("spec.ports", i);
    ServicePort p;
    p.name = in.name();
    if (p.name.empty() && spec.ports_size() > 1) {
      err->Add(absl::StrCat(path, ".name"), "required when a Service has more than one port");
    } else if (!p.name.empty()) {
      err->Check(absl::StrCat(path, ".name"), CheckDnsLabel(p.name));
      if (auto [it, fresh] = names.emplace(p.name, i); !fresh) {
        err->Add(
            absl::StrCat(path, ".name"),
            absl::StrCat("duplicate port name '", p.name, "' (also spec.ports[", it->second, "])"));
      }
    }
    if (!in.has_port()) {
      err->Add(absl::StrCat(path, ".port"), "required");
    } else {
      p.port = in.port();
      err->Check(absl::StrCat(path, ".port"), CheckPort(in.port()));
      if (auto [it, fresh] = numbers.emplace(p.port, i); !fresh) {
        err->Add(absl::StrCat(path, ".port"),
                 absl::StrCat("duplicate port ", p.port, " (also spec.ports[", it->second, "])"));
      }
    }
    ConvertTargetPort(absl::StrCat(path, ".targetPort"), in, &p, err);
    p.protocol = Protocol(absl::StrCat(path, ".protocol"), in.protocol(), err);
    p.app_protocol = in.app_protocol();
    svc->ports.push_back(std::move(p));
  }
}

void Load(const PolicyDocument& doc, PolicySet* set, PolicyErrors* errors) {
  v1::Service msg;
  auto fields = ParseDocument(doc, &msg, errors);
  if (fields == nullptr) return;
  FieldErrors err(*fields, errors);
  Service svc;
  svc.meta = ConvertMeta(doc, msg.metadata(), fields, &err);
  // A Service name is also a DNS label (NAME.NAMESPACE.svc): no dots. (The loader has checked
  // the rest.)
  if (CheckDnsSubdomain(doc.key.name).empty())
    err.Check("metadata.name", CheckDnsLabel(doc.key.name));
  for (const auto& [k, v] : msg.spec().selector()) {
    const std::string path = absl::StrCat("spec.selector.", k);
    err.Check(path, CheckLabelKey(k));
    err.Check(path, CheckLabelValue(v));
    svc.selector.emplace(k, v);
  }
  ConvertPorts(msg.spec(), &svc, &err);
  set->services.emplace(svc.meta.key(), std::move(svc));
}

// An empty selector selects nothing (unlike an empty label selector elsewhere in Kubernetes):
// such a Service gets its endpoints only from EndpointSlices, so it needs one.
void Check(const PolicySet& set, PolicyErrors* errors) {
  for (const auto& [key, svc] : set.services) {
    if (key.name.empty() || !svc.selector.empty() || !set.EndpointSlicesOf(key).empty()) continue;
    FieldErrors err(*svc.meta.fields, errors);
    err.Add("spec.selector",
            absl::StrCat("empty: a Service selects its workloads by label (e.g. app: ", key.name,
                         "), or gets static endpoints from an EndpointSlice labelled ",
                         kServiceNameLabel, ": ", key.name));
  }
}

}  // namespace

const PolicyKind& ServiceKind() {
  static const PolicyKind kind{"v1", "Service", /*namespaced=*/true, &Load, &Check};
  return kind;
}

}  // namespace outrigger::policy
