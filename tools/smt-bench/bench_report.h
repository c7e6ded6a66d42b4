// What one smt-bench run measures and how it is printed: latency samples,
// CPU time, thread placement, and the one-line JSON result.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace smt::bench {

/// The p-th percentile (nearest rank) of sorted samples; 0 when empty.
double percentile(const std::vector<double>& sorted, double p);

/// This process's user + system CPU time, µs (getrusage RUSAGE_SELF).
uint64_t process_cpu_us();

/// The vCPUs this thread may run on, as a bit mask (vCPUs 0..63).
uint64_t allowed_cpus_mask();
/// Pins the calling thread (and threads it creates later) to `cpu`; -1 leaves it.
bool pin_to_cpu(int cpu);
/// "0,1" for a mask.
std::string cpu_list(uint64_t mask);
/// The bit of the vCPU the calling thread runs on now.
uint64_t current_cpu_bit();

/// A flat JSON object built field by field, printed on one line.
class JsonLine {
 public:
  JsonLine& add(const std::string& key, const std::string& value);
  JsonLine& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  JsonLine& add(const std::string& key, double value);
  JsonLine& add(const std::string& key, uint64_t value);
  JsonLine& add(const std::string& key, int value) { return add(key, uint64_t(value)); }
  JsonLine& add(const std::string& key, bool value);
  std::string str() const;

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

}  // namespace smt::bench
