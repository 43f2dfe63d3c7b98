// Vectorizable math for the CPU kernels.
//
// glibc's libmvec provides SIMD versions of the libm functions (SSE4, AVX2 and
// AVX-512 variants). Declaring the scalar functions with
// `omp declare simd` lets GCC call those variants from `#pragma omp simd`
// loops (the kernels are built with -fopenmp-simd -fno-math-errno). Only
// functions libmvec provides are declared here.
#pragma once

#include <cmath>

extern "C" {
#define TS_SIMD_DECL(ret, name, ...) _Pragma("omp declare simd notinbranch") ret name(__VA_ARGS__) noexcept;
TS_SIMD_DECL(float, expf, float)
TS_SIMD_DECL(float, expm1f, float)
TS_SIMD_DECL(float, logf, float)
TS_SIMD_DECL(float, log1pf, float)
TS_SIMD_DECL(float, sinf, float)
TS_SIMD_DECL(float, cosf, float)
TS_SIMD_DECL(float, tanf, float)
TS_SIMD_DECL(float, tanhf, float)
TS_SIMD_DECL(float, erff, float)
TS_SIMD_DECL(float, powf, float, float)
TS_SIMD_DECL(float, atan2f, float, float)
TS_SIMD_DECL(double, exp, double)
TS_SIMD_DECL(double, expm1, double)
TS_SIMD_DECL(double, log, double)
TS_SIMD_DECL(double, log1p, double)
TS_SIMD_DECL(double, sin, double)
TS_SIMD_DECL(double, cos, double)
TS_SIMD_DECL(double, tan, double)
TS_SIMD_DECL(double, tanh, double)
TS_SIMD_DECL(double, erf, double)
TS_SIMD_DECL(double, pow, double, double)
TS_SIMD_DECL(double, atan2, double, double)
#undef TS_SIMD_DECL
}
