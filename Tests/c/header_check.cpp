// recur.h compiled as C++ (g++ -std=c++17 -Wall -Wextra -pedantic -Werror) and linked: a C++
// caller loads a model, runs it and reads the result through the C ABI.
#include "recur.h"
#include "recur_plugin.h"

#include <cstdio>
#include <cstring>
#include <string>

static_assert(RECUR_ABI_VERSION == 1, "ABI version");
static_assert(RECUR_PLUGIN_ABI_VERSION == 1, "plugin ABI version");
static_assert(sizeof(recur_tensor) == 8 + 4 + 4 + 8 * 8 + 8, "recur_tensor layout");

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: header_check MODEL (a features model of size 5)\n");
        return 2;
    }
    recur_model *model = nullptr;
    if (recur_model_load(argv[1], &model) != RECUR_OK) {
        std::fprintf(stderr, "load: %s\n", recur_last_error());
        return 1;
    }
    float x[2 * 3 * 5] = {};
    recur_tensor input{};
    input.name = "input";
    input.dtype = RECUR_F32;
    input.rank = 3;
    input.shape[0] = 2;
    input.shape[1] = 3;
    input.shape[2] = 5;
    input.data = x;
    recur_result *result = nullptr;
    recur_status status = recur_model_run(model, &input, 1, &result);
    recur_tensor output{};
    bool ok = status == RECUR_OK && recur_result_find(result, "output", &output) == RECUR_OK &&
              std::string(output.name) == "output" && output.rank == 3 && output.shape[0] == 2 && output.shape[1] == 3;
    recur_result_free(result);
    recur_model_free(model);
    std::printf("c++ header check: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
