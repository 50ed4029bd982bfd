/* The k highest logits of a vocabulary, as llama.cpp candidates (see models/top_k.py).
 *
 * One pass over the logits with a min-heap of the best k seen so far. Most blocks of 64 logits
 * hold nothing above the heap's smallest, and that test is a comparison the compiler vectorises,
 * so the pass costs about one read of the logits. Logits are numbers (-inf included), as
 * llama.cpp's are.
 */

#include <stdint.h>

/* llama.cpp's llama_token_data. */
typedef struct {
    int32_t id;
    float logit;
    float p;
} quipu_token_data;

#define QUIPU_BLOCK 64

static void sift_down(quipu_token_data *heap, int size, int i) {
    for (;;) {
        int left = 2 * i + 1, right = left + 1, least = i;
        if (left < size && heap[left].logit < heap[least].logit) least = left;
        if (right < size && heap[right].logit < heap[least].logit) least = right;
        if (least == i) return;
        quipu_token_data swap = heap[i];
        heap[i] = heap[least];
        heap[least] = swap;
        i = least;
    }
}

static inline void offer(quipu_token_data *heap, int size, float *floor, int32_t id, float logit) {
    if (logit > *floor) {
        heap[0].id = id;
        heap[0].logit = logit;
        sift_down(heap, size, 0);
        *floor = heap[0].logit;
    }
}

/* Write the min(k, n) highest of logits[0..n) to out (in no particular order, p = 0); return
 * how many were written. */
int quipu_top_k(const float *logits, int n, int k, quipu_token_data *out) {
    if (k > n) k = n;
    if (k <= 0) return 0;
    for (int i = 0; i < k; i++) {
        out[i].id = i;
        out[i].logit = logits[i];
        out[i].p = 0.0f;
    }
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(out, k, i);
    float floor = out[0].logit;
    int i = k;
    for (; i + QUIPU_BLOCK <= n; i += QUIPU_BLOCK) {
        int above = 0;
        for (int j = 0; j < QUIPU_BLOCK; j++) above |= logits[i + j] > floor;
        if (above) {
            for (int j = 0; j < QUIPU_BLOCK; j++) offer(out, k, &floor, i + j, logits[i + j]);
        }
    }
    for (; i < n; i++) offer(out, k, &floor, i, logits[i]);
    return k;
}
