// The elementwise kernels built for the avx512 instruction set (flags set in CMakeLists.txt).
#define TS_ISA avx512
#include "elementwise_impl.inc"
