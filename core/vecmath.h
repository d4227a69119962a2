/* Constants of the SIMD exp used by the vector kernels (kern_avx2.c, kern_avx512.c):
 * exp(x) = 2^n * p(r) with n = round(x * log2 e), r = x - n ln2 (ln2 split in two for
 * an exact product), p the degree-6 Taylor polynomial, relative error below 1.2e-7 on
 * |r| <= ln2 / 2. Arguments are clamped to [-88, 88]. */
#ifndef OC_VECMATH_H
#define OC_VECMATH_H

#define OC_LOG2E 1.44269504088896341f
#define OC_LN2_HI 0.693359375f
#define OC_LN2_LO -2.12194440e-4f
#define OC_EXP_C2 (1.0f / 2)
#define OC_EXP_C3 (1.0f / 6)
#define OC_EXP_C4 (1.0f / 24)
#define OC_EXP_C5 (1.0f / 120)
#define OC_EXP_C6 (1.0f / 720)

/* gelu(x) = 0.5 x (1 + tanh(K0 (x + K1 x^3))) */
#define OC_GELU_K0 0.7978845608028654f /* sqrt(2 / pi) */
#define OC_GELU_K1 0.044715f
#endif
