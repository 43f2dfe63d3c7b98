// The elementwise kernels built for the avx2 instruction set (flags set in CMakeLists.txt).
#define TS_ISA avx2
#include "elementwise_impl.inc"
