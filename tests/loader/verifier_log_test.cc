// loader/libbpf_log.h load_with_verifier_log: a program the kernel's verifier
// rejects (tests/loader/verifier_reject.bpf.c reads the packet unchecked)
// fails with EINVAL, a message naming the log file, and the verifier's own
// log in that file. `smtctl attach` loads the XDP program through the same
// function, so this is its "verifier rejection" path.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "loader/libbpf_log.h"
#include "support/test_support.h"
#include "verifier_reject.skel.h"

namespace smt::loader {
namespace {

// The test object, opened with `log` as its kernel log buffer.
verifier_reject_bpf* open_with_log(std::vector<char>& log) {
  struct bpf_object_open_opts oo;
  std::memset(&oo, 0, sizeof oo);
  oo.sz = sizeof oo;
  oo.kernel_log_buf = log.data();
  oo.kernel_log_size = log.size();
  return verifier_reject_bpf__open_opts(&oo);
}

TEST(VerifierLog, RejectedProgramFailsWithItsLogSavedToTheNamedFile) {
  SMT_REQUIRE_OR_SKIP(::geteuid() == 0, "loading BPF programs needs root");
  std::vector<char> log = verifier_log_buffer();
  struct verifier_reject_bpf* skel = open_with_log(log);
  ASSERT_NE(skel, nullptr) << std::strerror(errno);
  char path[] = "/tmp/smt-verifier-log-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);

  Status st = load_with_verifier_log(skel->obj, log, "the test program", path);
  verifier_reject_bpf__destroy(skel);
  ASSERT_FALSE(st.ok()) << "the verifier accepted an unchecked packet read";
  EXPECT_EQ(st.error().code, EINVAL);
  EXPECT_NE(st.error().message.find("verifier rejected the test program"), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find(std::string("its log is in ") + path), std::string::npos)
      << st.error().message;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  ::unlink(path);
  // The verifier's reason, in its own words.
  EXPECT_NE(text.str().find("invalid access to packet"), std::string::npos) << text.str();
}

TEST(VerifierLog, UnwritableLogPathIsReportedNotHidden) {
  SMT_REQUIRE_OR_SKIP(::geteuid() == 0, "loading BPF programs needs root");
  std::vector<char> log = verifier_log_buffer();
  struct verifier_reject_bpf* skel = open_with_log(log);
  ASSERT_NE(skel, nullptr);
  Status st = load_with_verifier_log(skel->obj, log, "the test program", "/nonexistent/dir/log");
  verifier_reject_bpf__destroy(skel);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("could not be written to /nonexistent/dir/log"),
            std::string::npos)
      << st.error().message;
}

}  // namespace
}  // namespace smt::loader
