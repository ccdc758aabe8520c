// The `outrigger.dev/v1alpha1` `HTTPFault` kind: delays and/or aborts injected into a share of
// the requests (chaos testing), applied by the HTTPRoute rules that name it in an ExtensionRef
// filter (group outrigger.dev, kind HTTPFault, same namespace). The calling sidecar injects them,
// before the request leaves it.
#include "absl/strings/str_cat.h"
#include "controlplane/policy/kinds/kind_support.h"

namespace outrigger::policy {
namespace {

void Load(const PolicyDocument& doc, PolicySet* set, PolicyErrors* errors) {
  v1::HTTPFault msg;
  auto fields = ParseDocument(doc, &msg, errors);
  if (fields == nullptr) return;
  FieldErrors err(*fields, errors);
  HttpFault fault;
  fault.meta = ConvertMeta(doc, msg.metadata(), fields, &err);
  const v1::HTTPFaultSpec& spec = msg.spec();
  if (!spec.has_delay() && !spec.has_abort()) {
    err.Add("spec", "needs a delay, an abort or both");
  }
  if (spec.has_delay()) {
    const v1::FaultDelaySpec& in = spec.delay();
    FaultDelay delay;
    std::optional<absl::Duration> d;
    if (in.fixed_delay().empty()) {
      err.Add("spec.delay.fixedDelay", "required: how long to delay (\"2s\")");
    } else {
      d = PositiveDurationField("spec.delay.fixedDelay", in.fixed_delay(), &err);
    }
    if (auto p =
            PercentField("spec.delay.percentage", in.has_percentage(), in.percentage(), &err)) {
      delay.percentage = *p;
    }
    if (d) {
      delay.fixed_delay = *d;
      fault.delay = delay;
    }
  }
  if (spec.has_abort()) {
    const v1::FaultAbortSpec& in = spec.abort();
    FaultAbort abort;
    if (!in.has_http_status()) {
      err.Add("spec.abort.httpStatus", "required: the status to answer (200 to 599)");
    }
    std::optional<uint32_t> status =
        RangeField("spec.abort.httpStatus", in.has_http_status(), in.http_status(), 200, 599, &err);
    if (auto p =
            PercentField("spec.abort.percentage", in.has_percentage(), in.percentage(), &err)) {
      abort.percentage = *p;
    }
    if (status) {
      abort.http_status = *status;
      fault.abort = abort;
    }
  }
  set->http_faults.emplace(fault.meta.key(), std::move(fault));
}

}  // namespace

const PolicyKind& HttpFaultKind() {
  static const PolicyKind kind{"outrigger.dev/v1alpha1", "HTTPFault", /*namespaced=*/true, &Load,
                               nullptr};
  return kind;
}

}  // namespace outrigger::policy
