# kiln_add_aot_library: a static library compiled ahead of time from a saved model by `kiln aot`
# (docs/aot.md). The installed kilnConfig.cmake includes this file; inside Kiln's own build it
# works too (it runs the `kiln` target when there is no imported kiln::kiln).
#
#   kiln_add_aot_library(<target> SAVED_MODEL <dir> SIGNATURES <sig>... [NAME <ident>] [ONEDNN])
#
# runs `kiln aot <dir> -o ${CMAKE_CURRENT_BINARY_DIR}/<target> --name <ident> --signature <sig>...`
# whenever <dir>/manifest.json changes (saved_model::save writes it last, so every save touches it)
# or the kiln command changes, and makes <target> a STATIC library of the generated <target>.o.
# Targets linking <target> can `#include "<target>.h"` (the binary directory is a PUBLIC include
# directory) and need nothing of Kiln at run time: the library links libsleef, libm, libstdc++ (its
# linker language is CXX) and, with ONEDNN, libdnnl.
#   <dir>     the saved model directory (relative paths are relative to the current source dir)
#   <sig>     NAME or NAME:SHAPES, as `kiln aot --signature`: one shape per input, dims separated
#             by 'x', `scalar` for a rank-0 input, e.g. serve:8x64. Inputs are separated by ';' on
#             the command line; in CMake, where ';' separates list elements, write ',' instead
#             (train:32x64,32) — or a quoted "train:32x64;32", whose pieces are joined back.
#   <ident>   the generated class and C function prefix; default: <target> with every character
#             that is not a letter, digit or '_' replaced by '_'
#   ONEDNN    passes --onednn (large matmuls call oneDNN) and links libdnnl
include_guard(GLOBAL)

function(kiln_add_aot_library target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "ONEDNN;WEIGHTS_FILE" "SAVED_MODEL;NAME" "SIGNATURES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "kiln_add_aot_library(${target}): unexpected arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_SAVED_MODEL)
    message(FATAL_ERROR "kiln_add_aot_library(${target}): SAVED_MODEL <dir> is required")
  endif()
  if(NOT arg_SIGNATURES)
    message(FATAL_ERROR "kiln_add_aot_library(${target}): SIGNATURES <sig>... is required")
  endif()
  if(TARGET kiln::kiln)
    set(kiln_exe kiln::kiln)
  elseif(TARGET kiln)
    set(kiln_exe kiln)
  else()
    message(FATAL_ERROR "kiln_add_aot_library(${target}): no kiln::kiln target (call find_package(kiln) first)")
  endif()

  if(DEFINED arg_NAME)
    if(NOT arg_NAME MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
      message(FATAL_ERROR "kiln_add_aot_library(${target}): NAME '${arg_NAME}' is not a C identifier")
    endif()
    set(ident "${arg_NAME}")
  else()
    string(REGEX REPLACE "[^A-Za-z0-9_]" "_" ident "${target}")
    if(ident MATCHES "^[0-9]")
      message(FATAL_ERROR "kiln_add_aot_library(${target}): the target name starts with a digit; give a NAME")
    endif()
  endif()

  # One --signature per signature. A piece that is only a shape ("32", "scalar") continues the
  # previous NAME:SHAPES, which CMake split at its ';' (an unquoted train:32x64\;32). $<SEMICOLON>
  # reaches the command as a literal ';' inside one argument.
  set(sigs "")
  foreach(piece IN LISTS arg_SIGNATURES)
    list(LENGTH sigs n)
    if(n GREATER 0 AND piece MATCHES "^(scalar|[0-9]+(x[0-9]+)*)$")
      list(POP_BACK sigs last)
      if(last MATCHES ":")
        list(APPEND sigs "${last}$<SEMICOLON>${piece}")
        continue()
      endif()
      list(APPEND sigs "${last}")
    endif()
    if(NOT piece MATCHES "^[A-Za-z0-9_-]+(:.+)?$")
      message(FATAL_ERROR "kiln_add_aot_library(${target}): bad signature '${piece}' (expected NAME or NAME:SHAPES)")
    endif()
    # a quoted "train:32x64;32" arrives whole; its ';' must not split the list of signatures
    string(REPLACE ";" "$<SEMICOLON>" piece "${piece}")
    string(REPLACE "," "$<SEMICOLON>" piece "${piece}")
    list(APPEND sigs "${piece}")
  endforeach()
  set(sig_args "")
  foreach(sig IN LISTS sigs)
    list(APPEND sig_args --signature "${sig}")
  endforeach()

  get_filename_component(model_dir "${arg_SAVED_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  set(prefix "${CMAKE_CURRENT_BINARY_DIR}/${target}")
  set(onednn_arg "")
  if(arg_ONEDNN)
    set(onednn_arg --onednn)
  endif()
  # WEIGHTS_FILE: the weights go to <target>.safetensors next to the object; the class's
  # constructor takes its path
  set(weights_arg "")
  set(weights_out "")
  if(arg_WEIGHTS_FILE)
    set(weights_arg --weights-file)
    set(weights_out "${prefix}.safetensors")
  endif()
  add_custom_command(
    OUTPUT "${prefix}.o" "${prefix}.h" ${weights_out}
    COMMAND ${kiln_exe} aot "${model_dir}" -o "${prefix}" --name "${ident}" ${sig_args} ${onednn_arg} ${weights_arg}
    DEPENDS "${model_dir}/manifest.json" "$<TARGET_FILE:${kiln_exe}>"
    COMMENT "kiln aot: ${model_dir} -> ${target}.o, ${target}.h"
    VERBATIM)

  add_library(${target} STATIC "${prefix}.o" "${prefix}.h")
  set_source_files_properties("${prefix}.o" PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
  set_source_files_properties("${prefix}.h" PROPERTIES HEADER_FILE_ONLY TRUE GENERATED TRUE)
  set_target_properties(${target} PROPERTIES LINKER_LANGUAGE CXX)
  target_include_directories(${target} PUBLIC "${CMAKE_CURRENT_BINARY_DIR}")
  # generated loops call SLEEF's vector math (log, sin, pow, ...); linking --as-needed, as
  # Debian's GCC does, drops it when the object calls none
  find_library(KILN_AOT_SLEEF_LIBRARY sleef)
  if(NOT KILN_AOT_SLEEF_LIBRARY)
    message(FATAL_ERROR "kiln_add_aot_library(${target}): the objects need libsleef (Debian's libsleef-dev), which was not found")
  endif()
  target_link_libraries(${target} PUBLIC "${KILN_AOT_SLEEF_LIBRARY}" m)
  if(arg_ONEDNN)
    find_library(KILN_AOT_DNNL_LIBRARY dnnl)
    if(NOT KILN_AOT_DNNL_LIBRARY)
      message(FATAL_ERROR "kiln_add_aot_library(${target}): ONEDNN needs libdnnl, which was not found")
    endif()
    target_link_libraries(${target} PUBLIC "${KILN_AOT_DNNL_LIBRARY}")
  endif()
endfunction()
