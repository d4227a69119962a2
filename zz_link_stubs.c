/* TEMPORARY: weak stand-ins so the library links while the tokenizer and image modules
 * are being written; their real definitions override these. Removed before release. */
#include "ocellus.h"
#include "preprocess.h"
#include "tokenizer.h"

#define STUB __attribute__((weak))
STUB oc_status oc_tokenize(const oc_tokenizer *t, const char *x, size_t l, int a, int32_t **i,
                           size_t *n) { return OC_ERR_UNSUPPORTED; }
STUB oc_status oc_detokenize(const oc_tokenizer *t, const int32_t *i, size_t n, int k,
                             char **x) { return OC_ERR_UNSUPPORTED; }
STUB int32_t oc_tok_id(const oc_tokenizer *t, const char *p) { return -1; }
STUB void oc_tokenizer_free(oc_tokenizer *t) {}
STUB oc_status oc_tokenizer_load_file(const char *p, oc_tokenizer **o) { return OC_ERR_UNSUPPORTED; }
STUB oc_image_limits oc_image_default_limits(void) { oc_image_limits l = {0}; return l; }
STUB oc_status oc_idefics3_proc_from_json(const cJSON *j, const char *f, oc_idefics3_proc *o) { return OC_ERR_UNSUPPORTED; }
STUB oc_status oc_clip_proc_from_json(const cJSON *j, const char *f, oc_clip_proc *o) { return OC_ERR_UNSUPPORTED; }
STUB oc_status oc_clip_preprocess(const oc_clip_proc *p, const oc_image *i, float **x) { return OC_ERR_UNSUPPORTED; }
STUB oc_status oc_idefics3_preprocess(const oc_idefics3_proc *p, const oc_image *img, uint32_t m, float **px, uint32_t *n, uint32_t *r, uint32_t *c) { return OC_ERR_UNSUPPORTED; }
