# tessera_add_library(<name> [SANITIZE])
# Builds the layers as object libraries <name>_core and <name>_cpu and links them into the
# shared library <name>. The SANITIZE variant is instrumented with ASan + UBSan; the unit
# tests are built against both variants.
function(tessera_add_library name)
  cmake_parse_arguments(ARG "SANITIZE" "" "" ${ARGN})
  set(san_flags "")
  if(ARG_SANITIZE)
    set(san_flags -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  endif()
  set(common_defs TESSERA_BUILDING_LIBRARY)
  set(common_opts -fvisibility=hidden -fvisibility-inlines-hidden -Wall -Wextra ${san_flags})

  add_library(${name}_core OBJECT ${TESSERA_CORE_SOURCES})
  add_library(${name}_cpu OBJECT ${TESSERA_CPU_SOURCES})
  foreach(layer ${name}_core ${name}_cpu)
    target_include_directories(${layer} PUBLIC ${PROJECT_SOURCE_DIR}/include PRIVATE ${PROJECT_SOURCE_DIR}/src)
    target_compile_definitions(${layer} PRIVATE ${common_defs})
    target_compile_options(${layer} PRIVATE ${common_opts})
    if(ARG_SANITIZE)
      target_compile_options(${layer} PRIVATE -O1 -g)
    endif()
  endforeach()
  # The sanitizer build checks logic, not speed: its CPU layer keeps the -O1 above instead of the
  # kernels' -O3 (CMake drops a repeated -O1, so appending one after -O3 would not undo it). With
  # ASan + UBSan at -O3 the reduction bodies took 2-3 minutes each to compile.
  set(kernel_flags ${TESSERA_KERNEL_FLAGS})
  if(ARG_SANITIZE)
    list(REMOVE_ITEM kernel_flags -O3)
  endif()
  # Vendor libraries stay behind the backend boundary: only the CPU layer sees them.
  target_compile_options(${name}_cpu PRIVATE ${kernel_flags} ${OpenMP_CXX_FLAGS})
  # zlib (gzip data sets) and nlohmann/json (safetensors headers) are used by the upper layers only.
  target_link_libraries(${name}_core PRIVATE ZLIB::ZLIB nlohmann_json::nlohmann_json)
  target_include_directories(${name}_cpu PRIVATE ${CBLAS_INCLUDE_DIR})
  target_link_libraries(${name}_cpu PRIVATE DNNL::dnnl OpenMP::OpenMP_CXX)

  add_library(${name} SHARED $<TARGET_OBJECTS:${name}_core> $<TARGET_OBJECTS:${name}_cpu>)
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${name} PRIVATE DNNL::dnnl ${OPENBLAS_OPENMP_LIB} OpenMP::OpenMP_CXX ZLIB::ZLIB Threads::Threads mvec m)
  target_link_options(${name} PRIVATE -Wl,--no-undefined ${san_flags})
  if(ARG_SANITIZE)
    target_link_options(${name} INTERFACE ${san_flags})
  endif()
  set_target_properties(${name} PROPERTIES BUILD_RPATH "${CMAKE_BINARY_DIR}")
endfunction()
