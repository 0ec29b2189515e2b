/* Test harness for an exported policy: reads observations (float32) from stdin and writes, for
 * each, the raw network output then the action (float32) to stdout. `harness N` handles N
 * observations; pp_act runs exactly once per observation, so callgrind can count one inference. */
#include <stdio.h>
#include <stdlib.h>

extern const int pp_obs_size, pp_output_size, pp_action_size;
const float *pp_forward(const float *obs);
void pp_act(const float *obs, float *action);

int main(int argc, char **argv) {
    static float obs[1 << 16], action[1 << 10];
    long count = argc > 1 ? atol(argv[1]) : 1;
    if (pp_obs_size > (1 << 16) || pp_action_size > (1 << 10)) {
        fprintf(stderr, "harness: observation or action larger than its buffers\n");
        return 2;
    }
    for (long n = 0; n < count; ++n) {
        if (fread(obs, sizeof(float), (size_t)pp_obs_size, stdin) != (size_t)pp_obs_size) {
            fprintf(stderr, "harness: stdin ended before observation %ld of %ld\n", n + 1, count);
            return 3;
        }
        fwrite(pp_forward(obs), sizeof(float), (size_t)pp_output_size, stdout);
        pp_act(obs, action);
        fwrite(action, sizeof(float), (size_t)pp_action_size, stdout);
    }
    return 0;
}
