/* Qwen2.5-VL's M-RoPE positions and the runs of image tokens (positions.h). */
#include "positions.h"

#include "error.h"

oc_status oc_mrope_positions(const oc_model_config *c, const int32_t *ids, size_t n,
                             const oc_tile_layout *layouts, size_t n_images, int32_t *pos,
                             int32_t *next) {
    int32_t *pt = pos, *ph = pos + n, *pw = pos + 2 * n;
    int64_t top = -1; /* the largest position so far */
    size_t k = 0, m = c->qvit.merge;
    for (size_t i = 0; i < n;) {
        if (ids[i] != c->image_token_id) {
            pt[i] = ph[i] = pw[i] = (int32_t)(top + 1);
            top++;
            i++;
            continue;
        }
        if (k >= n_images)
            return oc_err(OC_ERR_INVALID_ARG, "the prompt has more image tokens than its %zu "
                          "images", n_images);
        size_t gh = layouts[k].rows / m, gw = layouts[k].cols / m, count = gh * gw;
        if (count == 0 || i + count > n)
            return oc_err(OC_ERR_INVALID_ARG, "image %zu needs %zu tokens; the prompt has %zu "
                          "left", k, count, n - i);
        int64_t s = top + 1;
        for (size_t j = 0; j < count; j++) {
            if (ids[i + j] != c->image_token_id)
                return oc_err(OC_ERR_INVALID_ARG, "image %zu has %zu tokens in the prompt, "
                              "not %zu", k, j, count);
            pt[i + j] = (int32_t)s;
            ph[i + j] = (int32_t)(s + (int64_t)(j / gw));
            pw[i + j] = (int32_t)(s + (int64_t)(j % gw));
        }
        top = s + (int64_t)(gh > gw ? gh : gw) - 1;
        i += count;
        k++;
    }
    if (top + 1 > INT32_MAX)
        return oc_err(OC_ERR_LIMIT, "positions past 2^31");
    *next = (int32_t)(top + 1);
    return OC_OK;
}

void oc_image_run(const oc_model_config *c, const int32_t *ids, size_t n, size_t i,
                  size_t *begin, size_t *end) {
    int32_t img = c->image_token_id;
    if (i >= n || ids[i] != img) {
        *begin = *end = 0;
        return;
    }
    size_t a = i, b = i + 1;
    while (a > 0 && ids[a - 1] == img)
        a--;
    while (b < n && ids[b] == img)
        b++;
    *begin = a;
    *end = b;
}
