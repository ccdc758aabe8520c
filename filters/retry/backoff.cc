// See backoff.h.
#include "filters/retry/backoff.h"
