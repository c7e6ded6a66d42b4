// The worked test vectors of docs/wire-format.md and docs/key-schedule.md,
// computed with the project's own code (smt_record and the shared C headers).
//
// Each vector has a name, the doc it belongs to, default inputs and a compute
// function from inputs to outputs. `smt-vectors` prints every vector from its
// default inputs; tests/spec recomputes every documented block from the inputs
// written in the doc and compares the outputs. Everything is deterministic:
// fixed inputs, no randomness, no clock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "vector_block.h"

namespace smt::vectors {

inline constexpr std::string_view kWireFormatDoc = "wire-format";
inline constexpr std::string_view kKeyScheduleDoc = "key-schedule";

struct VectorDef {
  std::string_view name;
  std::string_view doc;  ///< kWireFormatDoc or kKeyScheduleDoc
  /// Default inputs, in print order (may derive values from other vectors).
  Fields (*default_inputs)();
  /// Outputs, in print order, from inputs (any order, exactly the input keys).
  Fields (*compute)(const Fields& inputs);
};

/// Every vector, in the order the docs present them.
const std::vector<VectorDef>& vector_defs();
const VectorDef* find_vector_def(std::string_view name);

/// The block of `def` from its default inputs: inputs, then outputs.
Result<VectorBlock> generate_vector(const VectorDef& def);

/// Recomputes a documented block: the inputs are taken from `documented`
/// (which must hold exactly the def's input keys; every other key is an
/// output), the outputs computed. Error for an unknown name or bad inputs.
Result<VectorBlock> recompute_vector(const VectorBlock& documented);

/// Differences between a documented block and its recomputation, one line
/// each (missing, extra or different outputs); empty when they agree.
std::vector<std::string> compare_vector(const VectorBlock& documented, const VectorBlock& computed);

/// Checks every documented block of one doc's text: known name, belongs to
/// `doc`, inputs well-formed, outputs equal to the recomputation, no name
/// twice. Returns one line per problem; empty when the doc is right.
std::vector<std::string> check_vector_blocks(std::string_view markdown, std::string_view doc);

/// The packets of the `tso-segment` vector for the given inputs, as the
/// software TSO emulator cuts them (for tests that feed them to a receiver).
Result<std::vector<std::vector<uint8_t>>> tso_vector_packets(const Fields& inputs);

}  // namespace smt::vectors
