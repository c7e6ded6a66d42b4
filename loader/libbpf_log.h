// libbpf's diagnostics, routed through the loader: quiet by default (our own
// error messages say what went wrong), everything on stderr when verbose.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

struct bpf_object;

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

/// A buffer for the kernel's verifier log: pass data()/size() as
/// bpf_object_open_opts.kernel_log_buf/kernel_log_size when opening.
std::vector<char> verifier_log_buffer();

/// Loads `obj`, opened with `log` as its kernel log buffer. If the verifier
/// rejects a program, its log is written to `log_path` and the error (EINVAL)
/// says so; other failures say why (EPERM: needs root). `what` names the
/// object in messages ("the XDP program").
Status load_with_verifier_log(struct bpf_object* obj, const std::vector<char>& log,
                              const std::string& what, const std::string& log_path);

}  // namespace smt::loader
