/* What the CPU can do, read once at run time, so that one binary uses AVX-512 where it
 * exists and still runs everywhere else (and under valgrind, which hides AVX-512). */
#ifndef OC_CPU_H
#define OC_CPU_H

/* Kernel levels, each implying the ones below it. */
typedef enum {
    OC_ISA_SCALAR = 0, /* plain C: the reference versions */
    OC_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
    OC_ISA_AVX512 = 2, /* AVX-512 F/BW/VL/DQ */
} oc_isa;

typedef struct {
    oc_isa isa;        /* the best level the CPU and OS support (or the forced one) */
    int avx512_bf16;   /* vdpbf16ps */
    int avx512_vnni;   /* vpdpbusd */
    int amx;           /* AMX tiles with BF16 and INT8, granted by the kernel */
    int reference;     /* forced to OC_ISA_SCALAR: the plain C versions, not OpenBLAS */
    char name[64];     /* "avx512+bf16+vnni", for benchmarks */
} oc_cpu_caps;

/* The capabilities in use (detected once; thread-safe). */
const oc_cpu_caps *oc_cpu(void);
/* Tests and benchmarks: cap the level (and turn off the extensions above it); returns the
 * previous level. OC_ISA_SCALAR selects the plain C reference kernels (a CPU without AVX2
 * runs matrix products through OpenBLAS instead). Not for use while other threads run
 * kernels. */
oc_isa oc_cpu_force(oc_isa max);
#endif
