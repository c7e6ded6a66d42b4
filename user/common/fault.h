// Deliberate security faults for the mutation gate.
//
// CI builds the record library once with each SMT_FAULT_* macro defined and
// requires the named tests to fail; a fault no test notices means the tests
// do not pin that rule. Never define these outside that CI stage: CMake warns
// loudly, and the demo refuses to run in such a build.
#pragma once

namespace smt {

#if defined(SMT_FAULT_NO_LENGTH_BIND) || defined(SMT_FAULT_NO_AEAD_CHECK) || \
    defined(SMT_FAULT_NO_REPLAY_WINDOW) || defined(SMT_FAULT_REUSE_ID) ||    \
    defined(SMT_FAULT_NO_CTL_MAC) || defined(SMT_FAULT_NO_CTL_REPLAY)
inline constexpr bool kFaultBuild = true;
#else
inline constexpr bool kFaultBuild = false;
#endif

}  // namespace smt
