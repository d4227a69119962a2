#include "cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

/* Linux grants AMX tile data only on request (arch_prctl ARCH_REQ_XCOMP_PERM). */
static int request_amx(void) {
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */,
                   18 /* XFEATURE_XTILEDATA */) == 0;
}

static void detect(oc_cpu_caps *c) {
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d))
        return;
    int osxsave = (cx >> 27) & 1, fma = (cx >> 12) & 1, f16c = (cx >> 29) & 1;
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    int ymm_os = (xcr0 & 0x6) == 0x6, zmm_os = (xcr0 & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &cx, &d))
        return;
    int avx2 = (b >> 5) & 1;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    int vnni = (cx >> 11) & 1;
    int amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1, amx_int8 = (d >> 25) & 1;
    unsigned a1 = 0, b1, c1, d1;
    __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
    int bf16 = (a1 >> 5) & 1;
    if (avx2 && fma && f16c && ymm_os)
        c->isa = OC_ISA_AVX2;
    if (c->isa == OC_ISA_AVX2 && f && dq && bw && vl && zmm_os) {
        c->isa = OC_ISA_AVX512;
        c->avx512_bf16 = bf16;
        c->avx512_vnni = vnni;
        int tile_os = (xcr0 & 0x60000) == 0x60000;
        c->amx = amx_tile && amx_bf16 && amx_int8 && tile_os && bf16 && vnni && request_amx();
    }
}
#else
static void detect(oc_cpu_caps *c) { (void)c; }
#endif

static oc_cpu_caps caps, detected;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void set_name(oc_cpu_caps *c) {
    static const char *const isa[] = {"scalar", "avx2", "avx512"};
    snprintf(c->name, sizeof c->name, "%s%s%s%s", isa[c->isa], c->avx512_bf16 ? "+bf16" : "",
             c->avx512_vnni ? "+vnni" : "", c->amx ? "+amx" : "");
}

static void init(void) {
    memset(&detected, 0, sizeof detected);
    detect(&detected);
    set_name(&detected);
    caps = detected;
}

const oc_cpu_caps *oc_cpu(void) {
    pthread_once(&once, init);
    return &caps;
}

oc_isa oc_cpu_force(oc_isa max) {
    pthread_once(&once, init);
    oc_isa prev = caps.isa;
    caps = detected;
    if (max < caps.isa) {
        caps.isa = max;
        caps.avx512_bf16 = caps.avx512_vnni = caps.amx = 0;
    }
    caps.reference = max == OC_ISA_SCALAR;
    set_name(&caps);
    return prev;
}
