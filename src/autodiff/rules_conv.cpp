// PENDING: rules for this family (being written).
#include "rules.h"

namespace tessera::autodiff {
void register_conv_rules(RuleTable&) {}
}  // namespace tessera::autodiff
