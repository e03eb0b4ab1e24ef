/* The C side of capi/tests/c_abi.rs: loads an explainer (an artifact through the C ABI, or,
 * compiled with -DLRPC_OBJECT, the explainer object file linked into this program), explains the
 * samples of a raw float32 file serially and then from several threads at once, checks the two
 * agree bitwise, checks the refusals of bad arguments, and writes relevance and logits as raw
 * float32 files.
 *
 * usage: explain ARTIFACT|- INPUT.f32 SAMPLES RELEVANCE.f32 LOGITS.f32
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lrpc.h"
#ifdef LRPC_OBJECT
#include "explainer.h"
#endif

#define THREADS 4

static const LrpcExplainer *explainer;
static const float *inputs;
static float *concurrent_relevance, *concurrent_logits;
static size_t input_len, classes, samples;
static int failures;

static void *worker(void *arg) {
    size_t t = (size_t)arg;
    for (int round = 0; round < 3; round++) {
        for (size_t s = t; s < samples; s += THREADS) {
            if (lrpc_explain(explainer, inputs + s * input_len, -1,
                             concurrent_relevance + s * input_len,
                             concurrent_logits + s * classes) != 0) {
                fprintf(stderr, "thread %zu: %s\n", t, lrpc_last_error());
                __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
            }
        }
    }
    return NULL;
}

static float *read_floats(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    float *v = malloc(n * sizeof(float));
    if (!f || !v || fread(v, sizeof(float), n, f) != n) {
        fprintf(stderr, "cannot read %zu floats from %s\n", n, path);
        exit(2);
    }
    fclose(f);
    return v;
}

static void write_floats(const char *path, const float *v, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(v, sizeof(float), n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

static void expect_error(int rc, const char *what) {
    if (rc == 0 || strlen(lrpc_last_error()) == 0) {
        fprintf(stderr, "%s was not refused\n", what);
        failures++;
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: explain ARTIFACT|- INPUT.f32 SAMPLES RELEVANCE.f32 LOGITS.f32\n");
        return 2;
    }
#ifdef LRPC_OBJECT
    LrpcExplainer *e = lrpc_explainer_from_object(&lrpc_explainer_explainer, 2);
#else
    LrpcExplainer *e = lrpc_explainer_load_with(argv[1], 2);
#endif
    if (!e) {
        fprintf(stderr, "load: %s\n", lrpc_last_error());
        return 1;
    }
    explainer = e;
    input_len = lrpc_explainer_input_len(e);
    classes = lrpc_explainer_classes(e);
    samples = (size_t)atol(argv[3]);
    inputs = read_floats(argv[2], samples * input_len);
    float *relevance = calloc(samples * input_len, sizeof(float));
    float *logits = calloc(samples * classes, sizeof(float));
    concurrent_relevance = calloc(samples * input_len, sizeof(float));
    concurrent_logits = calloc(samples * classes, sizeof(float));

    for (size_t s = 0; s < samples; s++) {
        if (lrpc_explain(e, inputs + s * input_len, -1, relevance + s * input_len,
                         logits + s * classes) != 0) {
            fprintf(stderr, "explain: %s\n", lrpc_last_error());
            return 1;
        }
    }
    pthread_t threads[THREADS];
    for (size_t t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, worker, (void *)t);
    for (size_t t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    if (memcmp(relevance, concurrent_relevance, samples * input_len * sizeof(float)) ||
        memcmp(logits, concurrent_logits, samples * classes * sizeof(float))) {
        fprintf(stderr, "concurrent results differ from serial ones\n");
        failures++;
    }

    /* Bad arguments: each refused with a message, nothing crashes. */
    expect_error(lrpc_explain(NULL, inputs, -1, relevance, logits), "a NULL explainer");
    expect_error(lrpc_explain(e, NULL, -1, relevance, logits), "a NULL input");
    expect_error(lrpc_explain(e, inputs, -1, NULL, logits), "a NULL relevance");
    expect_error(lrpc_explain(e, inputs, (int64_t)classes, relevance, logits), "a target out of range");
    expect_error(lrpc_explain_n(e, inputs, input_len + 1, 1, NULL, relevance, input_len, NULL, 0),
                 "an input of the wrong length");
    expect_error(lrpc_explain_n(e, inputs, input_len, 1, NULL, relevance, input_len - 1, NULL, 0),
                 "a relevance buffer of the wrong length");
    if (lrpc_explainer_load("/nonexistent/x.lrpx") != NULL) failures++;
    if (strstr(lrpc_last_error(), "/nonexistent/x.lrpx") == NULL) {
        fprintf(stderr, "the load error does not name the file: %s\n", lrpc_last_error());
        failures++;
    }
    if (lrpc_explainer_load(NULL) != NULL) failures++;
    if (lrpc_explainer_input_len(NULL) != 0) failures++;

    write_floats(argv[4], relevance, samples * input_len);
    write_floats(argv[5], logits, samples * classes);
    lrpc_explainer_free(e);
    lrpc_explainer_free(NULL);
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    return 0;
}
