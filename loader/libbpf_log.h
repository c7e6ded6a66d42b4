// libbpf's diagnostics, routed through the loader: quiet by default (our own
// error messages say what went wrong), everything on stderr when verbose.
#pragma once

#include <string>

namespace smt::loader {

/// Installs the loader's libbpf print callback once per process; every loader
/// entry point calls it, so callers need not. Until set_libbpf_verbose(true)
/// libbpf prints nothing.
void install_libbpf_logging();

/// Verbose (`smtctl -v`, `smtd --verbose`): libbpf's messages go to stderr.
/// Also installs the callback.
void set_libbpf_verbose(bool verbose);

/// libbpf's warnings seen on this thread since the last call (the tail, at
/// most a few KiB), then forgets them. Lets an error message quote libbpf's
/// reason, e.g. the verifier's, even when not verbose.
std::string take_libbpf_warnings();

/// Message for a libbpf or errno error code (either sign).
std::string libbpf_error_string(int err);

}  // namespace smt::loader
