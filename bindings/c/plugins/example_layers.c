/* example-layers: a Recur plugin (Include/recur_plugin.h) with three layer types.
 *
 *   mgu            minimal gated unit (Zhou et al., 2016), recurrent, state "h" [H]:
 *                    f  = σ(W_if x + b_if + W_hf h + b_hf)
 *                    n  = tanh(W_in x + b_in + W_hn (f ⊙ h) + b_hn)
 *                    h' = (1 − f) ⊙ h + f ⊙ n            output: h'
 *                  config: input_size, hidden_size, bias (true)
 *                  parameters: weight_ih [2H, F], weight_hh [2H, H], bias_ih [2H], bias_hh [2H]
 *                  (gate blocks f, n, in the layout of PyTorch's nn.GRU)
 *   peephole_lstm  LSTM whose gates also see the cell (Gers & Schmidhuber, 2000), states "h", "c":
 *                    i = σ(..i + p_i ⊙ c), f = σ(..f + p_f ⊙ c), g = tanh(..g)
 *                    c' = f ⊙ c + i ⊙ g, o = σ(..o + p_o ⊙ c'), h' = o ⊙ tanh(c')
 *                  where ..x is W_ix x + b_ix + W_hx h + b_hx (PyTorch's i, f, g, o order)
 *                  config: as mgu; parameters: weight_ih [4H, F], weight_hh [4H, H],
 *                  bias_ih [4H], bias_hh [4H], weight_peephole [3, H] (rows i, f, o)
 *   layer_norm     per step, as torch.nn.LayerNorm(normalized_shape, eps, elementwise_affine):
 *                    y = (x − mean(x)) / sqrt(var(x) + eps) ⊙ weight + bias   (biased variance)
 *                  config: normalized_shape, eps (1e-5), elementwise_affine (true)
 *                  parameters: weight [F], bias [F] (when elementwise_affine)
 *
 * Every function is reentrant: layer objects are read-only after create, scratch memory is the
 * workspace Recur passes, and there is no global state. */
#include "recur_plugin.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- recurrent layers ---------------------------------------------------------------------- */

/* What mgu and peephole_lstm read from their config. */
typedef struct recurrent_layer {
    int64_t input_size; /* F */
    int64_t hidden;     /* H */
    int bias;
} recurrent_layer;

/* Reads input_size, hidden_size and bias; declares features, the gates·H weights, state "h"
   (and "c"), and the workspace. */
static recur_plugin_status create_recurrent(recur_layer_builder *b, int64_t gates, int cell_state,
                                            void **layer, char *error, size_t error_capacity) {
    const int32_t with_bias = 1;
    int64_t input_size, hidden;
    int32_t bias;
    recur_plugin_status status;
    if ((status = b->get_integer(b, "input_size", NULL, 1, &input_size)) ||
        (status = b->get_integer(b, "hidden_size", NULL, 1, &hidden)) ||
        (status = b->get_boolean(b, "bias", &with_bias, &bias)))
        return status;
    if (hidden > (INT64_MAX / 8) / (input_size + hidden)) {
        snprintf(error, error_capacity, "input_size %lld and hidden_size %lld are too large",
                 (long long)input_size, (long long)hidden);
        return RECUR_PLUGIN_ERR_CONFIG;
    }
    const int64_t ih[2] = {gates * hidden, input_size}, hh[2] = {gates * hidden, hidden}, gh[1] = {gates * hidden};
    if ((status = b->set_features(b, input_size, hidden)) || (status = b->add_parameter(b, "weight_ih", 2, ih)) ||
        (status = b->add_parameter(b, "weight_hh", 2, hh)) ||
        (bias && ((status = b->add_parameter(b, "bias_ih", 1, gh)) || (status = b->add_parameter(b, "bias_hh", 1, gh)))) ||
        (status = b->add_state(b, "h", hidden)) || (cell_state && (status = b->add_state(b, "c", hidden))) ||
        (status = b->set_workspace(b, gates * hidden)))
        return status;
    recurrent_layer *made = malloc(sizeof *made);
    if (!made) {
        snprintf(error, error_capacity, "out of memory");
        return RECUR_PLUGIN_ERR_OUT_OF_MEMORY;
    }
    *made = (recurrent_layer){input_size, hidden, bias};
    *layer = made;
    return RECUR_PLUGIN_OK;
}

static void destroy_layer(void *layer) { free(layer); }

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* out[j] = bias_ih[j] + bias_hh[j] + W_ih[j] · x, j < rows (biases may be NULL). W_ih [rows, F]. */
static void input_projection(int64_t rows, int64_t f, const float *w_ih, const float *bias_ih,
                             const float *bias_hh, const float *x, float *out) {
    for (int64_t j = 0; j < rows; j++) {
        float sum = bias_ih ? bias_ih[j] + bias_hh[j] : 0.0f;
        const float *w = w_ih + j * f;
        for (int64_t k = 0; k < f; k++) sum += w[k] * x[k];
        out[j] = sum;
    }
}

/* out[j] += W[j] · v for j < rows; W [rows, H]. */
static void add_product(int64_t rows, int64_t h, const float *w, const float *v, float *out) {
    for (int64_t j = 0; j < rows; j++) {
        float sum = 0.0f;
        for (int64_t k = 0; k < h; k++) sum += w[j * h + k] * v[k];
        out[j] += sum;
    }
}

static recur_plugin_status create_mgu(recur_layer_builder *b, void **layer, char *error, size_t error_capacity) {
    return create_recurrent(b, 2, 0, layer, error, error_capacity);
}

static recur_plugin_status step_mgu(const void *layer, const recur_step_args *a, char *error, size_t error_capacity) {
    (void)error, (void)error_capacity;
    const recurrent_layer *l = layer;
    const int64_t F = l->input_size, H = l->hidden;
    const float *w_ih = a->parameters[0], *w_hh = a->parameters[1];
    const float *b_ih = l->bias ? a->parameters[2] : NULL, *b_hh = l->bias ? a->parameters[3] : NULL;
    for (int64_t b = 0; b < a->batch; b++) {
        if (a->active && !a->active[b]) continue;
        float *h = a->states[0] + b * H;
        float *gates = a->workspace + b * 2 * H; /* [2H]: f, then the input part of n */
        float *f = gates, *n = gates + H;
        input_projection(2 * H, F, w_ih, b_ih, b_hh, a->input + b * a->input_stride, gates);
        add_product(H, H, w_hh, h, f); /* W_hf h */
        for (int64_t j = 0; j < H; j++) f[j] = sigmoid(f[j]);
        /* W_hn (f ⊙ h): each row j of the n block reads every f[k] h[k], so h is updated after. */
        for (int64_t j = 0; j < H; j++) {
            const float *w = w_hh + (H + j) * H;
            float sum = 0.0f;
            for (int64_t k = 0; k < H; k++) sum += w[k] * f[k] * h[k];
            n[j] = tanhf(n[j] + sum);
        }
        float *y = a->output + b * a->output_stride;
        for (int64_t j = 0; j < H; j++) {
            h[j] = (1.0f - f[j]) * h[j] + f[j] * n[j];
            y[j] = h[j];
        }
    }
    return RECUR_PLUGIN_OK;
}

static recur_plugin_status create_peephole(recur_layer_builder *b, void **layer, char *error, size_t error_capacity) {
    int64_t hidden;
    recur_plugin_status status = create_recurrent(b, 4, 1, layer, error, error_capacity);
    if (status) return status;
    hidden = ((const recurrent_layer *)*layer)->hidden;
    const int64_t peephole[2] = {3, hidden};
    if ((status = b->add_parameter(b, "weight_peephole", 2, peephole))) {
        destroy_layer(*layer);
        *layer = NULL;
    }
    return status;
}

static recur_plugin_status step_peephole(const void *layer, const recur_step_args *a, char *error,
                                         size_t error_capacity) {
    (void)error, (void)error_capacity;
    const recurrent_layer *l = layer;
    const int64_t F = l->input_size, H = l->hidden;
    const float *w_ih = a->parameters[0], *w_hh = a->parameters[1];
    const float *b_ih = l->bias ? a->parameters[2] : NULL, *b_hh = l->bias ? a->parameters[3] : NULL;
    const float *peep = a->parameters[l->bias ? 4 : 2]; /* [3, H]: i, f, o */
    for (int64_t b = 0; b < a->batch; b++) {
        if (a->active && !a->active[b]) continue;
        float *h = a->states[0] + b * H, *c = a->states[1] + b * H;
        float *gates = a->workspace + b * 4 * H; /* [4H]: i, f, g, o pre-activations */
        input_projection(4 * H, F, w_ih, b_ih, b_hh, a->input + b * a->input_stride, gates);
        add_product(4 * H, H, w_hh, h, gates);
        float *y = a->output + b * a->output_stride;
        for (int64_t j = 0; j < H; j++) {
            float i = sigmoid(gates[j] + peep[j] * c[j]);
            float f = sigmoid(gates[H + j] + peep[H + j] * c[j]);
            float g = tanhf(gates[2 * H + j]);
            c[j] = f * c[j] + i * g;
            float o = sigmoid(gates[3 * H + j] + peep[2 * H + j] * c[j]);
            h[j] = o * tanhf(c[j]);
            y[j] = h[j];
        }
    }
    return RECUR_PLUGIN_OK;
}

/* ---- layer norm ----------------------------------------------------------------------------- */

typedef struct layer_norm {
    int64_t features;
    double eps;
    int affine;
} layer_norm;

static recur_plugin_status create_layer_norm(recur_layer_builder *b, void **layer, char *error,
                                             size_t error_capacity) {
    const double default_eps = 1e-5;
    const int32_t default_affine = 1;
    int64_t features;
    double eps;
    int32_t affine;
    recur_plugin_status status;
    if ((status = b->get_integer(b, "normalized_shape", NULL, 1, &features)) ||
        (status = b->get_number(b, "eps", &default_eps, &eps)) ||
        (status = b->get_boolean(b, "elementwise_affine", &default_affine, &affine)))
        return status;
    if (!(eps > 0)) {
        snprintf(error, error_capacity, "eps must be positive, found %g", eps);
        return RECUR_PLUGIN_ERR_CONFIG;
    }
    const int64_t shape[1] = {features};
    if ((status = b->set_features(b, features, features)) ||
        (affine && ((status = b->add_parameter(b, "weight", 1, shape)) || (status = b->add_parameter(b, "bias", 1, shape)))))
        return status;
    layer_norm *made = malloc(sizeof *made);
    if (!made) {
        snprintf(error, error_capacity, "out of memory");
        return RECUR_PLUGIN_ERR_OUT_OF_MEMORY;
    }
    *made = (layer_norm){features, eps, affine};
    *layer = made;
    return RECUR_PLUGIN_OK;
}

static recur_plugin_status forward_layer_norm(const void *layer, const recur_forward_args *a, char *error,
                                              size_t error_capacity) {
    (void)error, (void)error_capacity;
    const layer_norm *l = layer;
    const int64_t F = l->features;
    const float *weight = l->affine ? a->parameters[0] : NULL, *bias = l->affine ? a->parameters[1] : NULL;
    for (int64_t row = 0; row < a->batch * a->steps; row++) {
        const float *x = a->input + row * F;
        float *y = a->output + row * F;
        double mean = 0, variance = 0;
        for (int64_t k = 0; k < F; k++) mean += x[k];
        mean /= (double)F;
        for (int64_t k = 0; k < F; k++) variance += (x[k] - mean) * (x[k] - mean);
        variance /= (double)F;
        const double scale = 1.0 / sqrt(variance + l->eps);
        for (int64_t k = 0; k < F; k++) {
            float v = (float)((x[k] - mean) * scale);
            y[k] = weight ? v * weight[k] + bias[k] : v;
        }
    }
    return RECUR_PLUGIN_OK;
}

/* ---- the table ------------------------------------------------------------------------------ */

static const recur_layer_type types[] = {
    {.name = "mgu", .create = create_mgu, .destroy = destroy_layer, .step = step_mgu},
    {.name = "peephole_lstm", .create = create_peephole, .destroy = destroy_layer, .step = step_peephole},
    {.name = "layer_norm", .create = create_layer_norm, .destroy = destroy_layer, .forward = forward_layer_norm},
};

static const recur_plugin_info info = {
    .abi_version = RECUR_PLUGIN_ABI_VERSION,
    .info_size = sizeof(recur_plugin_info),
    .type_size = sizeof(recur_layer_type),
    .name = "example-layers",
    .type_count = sizeof types / sizeof types[0],
    .types = types,
};

RECUR_PLUGIN_EXPORT const recur_plugin_info *recur_plugin_init(uint32_t host_abi_version, char *error,
                                                               size_t error_capacity) {
    if (host_abi_version != RECUR_PLUGIN_ABI_VERSION) {
        snprintf(error, error_capacity, "built for plugin ABI %d, the host speaks %u", RECUR_PLUGIN_ABI_VERSION,
                 (unsigned)host_abi_version);
        return NULL;
    }
    return &info;
}
