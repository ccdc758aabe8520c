// The `discovery.k8s.io/v1` `EndpointSlice` kind: static endpoints of a Service, for workloads
// that have no sidecar to register them. The Service is named by the label
// kubernetes.io/service-name, in the slice's namespace, as in Kubernetes. hostname, nodeName and
// zone are accepted and ignored.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/policy/field_checks.h"
#include "controlplane/policy/kinds/kind_support.h"

namespace outrigger::policy {
namespace {

// Addresses are checked against the address type when that is known.
void ConvertEndpoints(const v1::EndpointSlice& msg, bool check_addresses, EndpointSlice* slice,
                      FieldErrors* err) {
  for (int i = 0; i < msg.endpoints_size(); ++i) {
    const v1::Endpoint& in = msg.endpoints(i);
    const std::string path = Item("endpoints", i);
    SliceEndpoint e;
    if (in.addresses().empty()) {
      err->Add(absl::StrCat(path, ".addresses"), "at least one address is required");
    }
    for (int j = 0; check_addresses && j < in.addresses_size(); ++j) {
      err->Check(Item(absl::StrCat(path, ".addresses"), j),
                 CheckIpAddress(in.addresses(j), slice->address_type == AddressType::kIPv6));
    }
    if (!in.addresses().empty()) e.address = in.addresses(0);
    // Unset conditions mean ready and serving, as Kubernetes reads them.
    e.ready = !in.conditions().has_ready() || in.conditions().ready();
    e.serving = in.conditions().has_serving() ? in.conditions().serving() : e.ready;
    e.terminating = in.conditions().terminating();
    slice->endpoints.push_back(std::move(e));
  }
}

void ConvertPorts(const v1::EndpointSlice& msg, EndpointSlice* slice, FieldErrors* err) {
  std::map<std::string, int> names;
  for (int i = 0; i < msg.ports_size(); ++i) {
    const v1::EndpointPort& in = msg.ports(i);
    const std::string path = Item("ports", i);
    SlicePort p;
    p.name = in.name();
    if (!p.name.empty()) err->Check(absl::StrCat(path, ".name"), CheckDnsLabel(p.name));
    if (auto [it, fresh] = names.emplace(p.name, i); !fresh) {
      err->Add(absl::StrCat(path, ".name"),
               absl::StrCat("duplicate port name '", p.name, "' (also ports[", it->second, "])"));
    }
    if (!in.has_port()) {
      err->Add(absl::StrCat(path, ".port"), "required");
    } else {
      p.port = in.port();
      err->Check(absl::StrCat(path, ".port"), CheckPort(in.port()));
    }
    if (!in.protocol().empty() && in.protocol() != "TCP") {
      err->Add(absl::StrCat(path, ".protocol"),
               absl::StrCat("'", in.protocol(), "': only TCP is carried by the mesh"));
    }
    p.app_protocol = in.app_protocol();
    slice->ports.push_back(std::move(p));
  }
}

void Load(const PolicyDocument& doc, PolicySet* set, PolicyErrors* errors) {
  v1::EndpointSlice msg;
  auto fields = ParseDocument(doc, &msg, errors);
  if (fields == nullptr) return;
  FieldErrors err(*fields, errors);
  EndpointSlice slice;
  slice.meta = ConvertMeta(doc, msg.metadata(), fields, &err);
  if (auto it = slice.meta.labels.find(std::string(kServiceNameLabel));
      it != slice.meta.labels.end() && !it->second.empty()) {
    slice.service_name = it->second;
  } else {
    err.Add("metadata.labels", absl::StrCat("needs the label ", kServiceNameLabel,
                                            ": SERVICE naming the Service of these endpoints"));
  }
  if (msg.address_type() == "IPv4") {
    slice.address_type = AddressType::kIPv4;
  } else if (msg.address_type() == "IPv6") {
    slice.address_type = AddressType::kIPv6;
  } else if (msg.address_type() == "FQDN") {
    err.Add("addressType", "FQDN endpoints are not supported; use IPv4 or IPv6 addresses");
  } else if (msg.address_type().empty()) {
    err.Add("addressType", "required: IPv4 or IPv6");
  } else {
    err.Add("addressType", absl::StrCat("'", msg.address_type(), "' is not IPv4 or IPv6"));
  }
  const bool known_type = msg.address_type() == "IPv4" || msg.address_type() == "IPv6";
  ConvertEndpoints(msg, known_type, &slice, &err);
  ConvertPorts(msg, &slice, &err);
  set->endpoint_slices.emplace(slice.meta.key(), std::move(slice));
}

// The Service must exist, and each port must be one of its ports by name (how Kubernetes pairs
// slice ports with service ports).
void Check(const PolicySet& set, PolicyErrors* errors) {
  for (const auto& [key, slice] : set.endpoint_slices) {
    if (slice.service_name.empty()) continue;
    FieldErrors err(*slice.meta.fields, errors);
    const std::string label_path = absl::StrCat("metadata.labels.", kServiceNameLabel);
    const ObjectKey service_key{key.ns, slice.service_name};
    const Service* svc = set.FindService(service_key);
    if (svc == nullptr) {
      if (!Declared(set, "Service", service_key)) {
        err.Add(label_path,
                absl::StrCat("Service ", service_key.ToString(), " is not defined in the policy"));
      }
      continue;
    }
    for (size_t i = 0; i < slice.ports.size(); ++i) {
      const std::string& name = slice.ports[i].name;
      bool found = false;
      for (const ServicePort& p : svc->ports) found = found || p.name == name;
      if (!found) {
        err.Add(absl::StrCat(Item("ports", i), ".name"),
                absl::StrCat("'", name, "' is not the name of a port of Service ",
                             service_key.ToString(), " (its ports: ",
                             absl::StrJoin(svc->ports, ", ",
                                           [](std::string* out, const ServicePort& p) {
                                             absl::StrAppend(out, "'", p.name, "'");
                                           }),
                             ")"));
      }
    }
  }
}

}  // namespace

const PolicyKind& EndpointSliceKind() {
  static const PolicyKind kind{"discovery.k8s.io/v1", "EndpointSlice", /*namespaced=*/true, &Load,
                               &Check};
  return kind;
}

}  // namespace outrigger::policy
