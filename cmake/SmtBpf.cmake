# BPF objects and their libbpf skeletons (libbpf-bootstrap style).
#
#   smt_bpf_object(NAME SOURCE)
#
# compiles SOURCE (NAME.bpf.c) with clang for the BPF target into
# ${CMAKE_CURRENT_BINARY_DIR}/NAME.bpf.o, links it with `bpftool gen object`
# (which drops the DWARF the skeleton does not need, keeping BTF), generates
# ${CMAKE_CURRENT_BINARY_DIR}/NAME.skel.h with `bpftool gen skeleton` and
# defines the INTERFACE target NAME_skel: linking it puts the skeleton header
# on the include path, orders the build after its generation and links
# libbpf. The skeleton's C names are NAME_bpf (struct NAME_bpf,
# NAME_bpf__open(), ...). The object itself is kept as
# ${CMAKE_CURRENT_BINARY_DIR}/NAME.bpf.o for tools that want the file.
#
# No vmlinux.h: BPF sources use the uapi headers (<linux/bpf.h>,
# <bpf/bpf_helpers.h>) and include/smt/*.h.

include_guard(GLOBAL)

find_program(SMT_BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(SMT_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin /usr/local/sbin REQUIRED)
find_package(PkgConfig REQUIRED)
# GLOBAL: loader/ and tests/ link PkgConfig::LIBBPF too.
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET GLOBAL libbpf)

# asm/ headers live in the multiarch include directory, which clang does not
# search when targeting BPF.
# A cache variable: include_guard(GLOBAL) means directories that include this
# file after the first see only cached values.
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(SMT_BPF_MULTIARCH_INCLUDE /usr/include/${CMAKE_LIBRARY_ARCHITECTURE} CACHE INTERNAL "")
else()
  set(SMT_BPF_MULTIARCH_INCLUDE /usr/include/x86_64-linux-gnu CACHE INTERNAL "")
endif()

set(SMT_BPF_CFLAGS -target bpf -mcpu=v3 -O2 -g -Wall -Wextra -Werror
    CACHE STRING "Flags clang compiles the BPF objects with")

function(smt_bpf_object NAME SOURCE)
  cmake_path(ABSOLUTE_PATH SOURCE BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
             OUTPUT_VARIABLE src)
  set(out ${CMAKE_CURRENT_BINARY_DIR})
  set(raw_obj ${out}/${NAME}.tmp.bpf.o)
  set(obj ${out}/${NAME}.bpf.o)
  set(skel ${out}/${NAME}.skel.h)

  add_custom_command(
    OUTPUT ${raw_obj}
    COMMAND ${SMT_BPF_CLANG} ${SMT_BPF_CFLAGS}
            -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_CURRENT_SOURCE_DIR}
            -idirafter ${SMT_BPF_MULTIARCH_INCLUDE}
            -MD -MF ${raw_obj}.d
            -c ${src} -o ${raw_obj}
    DEPENDS ${src}
    DEPFILE ${raw_obj}.d
    COMMENT "BPF ${NAME}.bpf.c"
    VERBATIM)

  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${SMT_BPFTOOL} gen object ${obj} ${raw_obj}
    DEPENDS ${raw_obj}
    COMMENT "BPF link ${NAME}.bpf.o"
    VERBATIM)

  # Written to a temporary file first so a failed bpftool run never leaves a
  # truncated header behind that a later build would take as up to date.
  add_custom_command(
    OUTPUT ${skel}
    COMMAND sh -c "\"$0\" gen skeleton \"$1\" name \"$2\" > \"$3.tmp\" && mv \"$3.tmp\" \"$3\""
            ${SMT_BPFTOOL} ${obj} ${NAME}_bpf ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${NAME}.skel.h"
    VERBATIM)

  add_custom_target(${NAME}_skel_gen DEPENDS ${skel})
  add_library(${NAME}_skel INTERFACE)
  target_include_directories(${NAME}_skel INTERFACE ${out} ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${NAME}_skel INTERFACE PkgConfig::LIBBPF)
  add_dependencies(${NAME}_skel ${NAME}_skel_gen)
  set_target_properties(${NAME}_skel PROPERTIES SMT_BPF_OBJECT ${obj})
endfunction()
