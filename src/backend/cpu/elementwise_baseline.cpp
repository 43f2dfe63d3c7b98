// The elementwise kernels built for the baseline instruction set (flags set in CMakeLists.txt).
#define TS_ISA baseline
#include "elementwise_impl.inc"
