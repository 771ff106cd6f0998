/* Using librecur from C: load a token language model, run a sequence, stream the same sequence
   through a session in two chunks, and generate text ids greedily and by sampling.
   Build and run: make run (MODEL=path/to/model.safetensors to choose the model). */
#include "recur.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reports a failed call with the library's message; returns 1 when the call succeeded. */
static int succeeded(recur_status status, const char *call) {
    if (status == RECUR_OK) return 1;
    fprintf(stderr, "%s failed with status %d: %s\n", call, (int)status, recur_last_error());
    return 0;
}

/* Arg-max over the last step of an output [1, T, V]. */
static int32_t last_step_argmax(const recur_tensor *output) {
    const int64_t steps = output->shape[1], vocabulary = output->shape[2];
    const float *last = (const float *)output->data + (steps - 1) * vocabulary;
    int32_t best = 0;
    for (int32_t v = 1; v < vocabulary; v++)
        if (last[v] > last[best]) best = v;
    return best;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.safetensors (a token model with an output over its vocabulary)\n", argv[0]);
        return 2;
    }
    printf("librecur %s, ABI %d\n", recur_version(), (int)recur_abi_version());
    int ok = 0;
    recur_model *model = NULL;
    recur_result *whole = NULL, *first = NULL, *second = NULL;
    recur_session *session = NULL;
    char *description = NULL;

    if (!succeeded(recur_model_load(argv[1], &model), "recur_model_load")) goto done;
    if (!succeeded(recur_model_describe(model, &description), "recur_model_describe")) goto done;
    printf("model: %s\n", description);

    /* Whole-sequence inference: token ids [B = 1, T = 6]. */
    const int64_t tokens[6] = {1, 2, 3, 4, 5, 6};
    recur_tensor input = {"input", RECUR_I64, 2, {1, 6}, (void *)tokens};
    if (!succeeded(recur_model_run(model, &input, 1, &whole), "recur_model_run")) goto done;
    recur_tensor output;
    if (!succeeded(recur_result_find(whole, "output", &output), "recur_result_find")) goto done;
    printf("run: %zu tensors; output [%lld, %lld, %lld]; most likely next token %d\n", recur_result_count(whole),
           (long long)output.shape[0], (long long)output.shape[1], (long long)output.shape[2],
           (int)last_step_argmax(&output));

    /* Streaming: the same six tokens as 4 + 2; state carries over, so the last step agrees. */
    if (!succeeded(recur_session_open(model, &session), "recur_session_open")) goto done;
    recur_tensor chunk = {"input", RECUR_I64, 2, {1, 4}, (void *)tokens};
    if (!succeeded(recur_session_step(session, &chunk, 1, &first), "recur_session_step")) goto done;
    chunk.shape[1] = 2;
    chunk.data = (void *)(tokens + 4);
    if (!succeeded(recur_session_step(session, &chunk, 1, &second), "recur_session_step")) goto done;
    recur_tensor streamed;
    if (!succeeded(recur_result_get(second, 0, &streamed), "recur_result_get")) goto done;
    printf("session: streamed 4 + 2 tokens; most likely next token %d\n", (int)last_step_argmax(&streamed));

    /* Generation: greedy, then sampled (same seed, same tokens). */
    const int32_t prompt[3] = {1, 2, 3};
    int32_t generated[16];
    size_t n = 0;
    recur_sampling greedy = {0.0f, 0, 1.0f, 0};
    if (!succeeded(recur_generate(model, prompt, 3, &greedy, NULL, 0, 16, generated, &n), "recur_generate")) goto done;
    printf("greedy:  ");
    for (size_t i = 0; i < n; i++) printf(" %d", (int)generated[i]);
    recur_sampling sampled = {0.8f, 5, 0.95f, 42};
    if (!succeeded(recur_generate(model, prompt, 3, &sampled, NULL, 0, 16, generated, &n), "recur_generate")) goto done;
    printf("\nsampled: ");
    for (size_t i = 0; i < n; i++) printf(" %d", (int)generated[i]);
    printf("\n");

    /* Errors come back as a status and a message, never a crash. */
    const int32_t outside[1] = {1000000};
    recur_status status = recur_generate(model, outside, 1, &greedy, NULL, 0, 16, generated, &n);
    printf("out-of-vocabulary prompt: status %d, \"%s\"\n", (int)status, recur_last_error());
    ok = status == RECUR_ERR_INVALID_INPUT;

done:
    recur_result_free(second);
    recur_result_free(first);
    recur_result_free(whole);
    recur_session_free(session);
    recur_string_free(description);
    recur_model_free(model);
    return ok ? 0 : 1;
}
