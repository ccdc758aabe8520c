// See retry_budget.h.
#include "filters/retry/retry_budget.h"
