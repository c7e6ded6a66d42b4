// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The object the loader creates the global maps from (see global_maps.bpf.h).
 * It holds maps only: its skeleton gives loader/ the one definition of each
 * map's type, sizes and flags, and loading it creates the maps with BTF so
 * `bpftool map dump` prints the structs.
 */
#include "global_maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
