/* Test harness for an exported policy. `harness N` reads N observations (float32) from stdin and
 * writes, for each, the raw network output then the action (float32) to stdout; pp_act runs
 * exactly once per observation, so callgrind can count one inference. `harness time N` reads one
 * observation, runs pp_act N / 10 + 1 times untimed (to warm the caches), then N times, and prints the
 * mean microseconds per call: one timed window. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const int pp_obs_size, pp_output_size, pp_action_size;
const float *pp_forward(const float *obs);
void pp_act(const float *obs, float *action);

static float obs[1 << 16], action[1 << 10];

static int read_observation(long n, long count) {
    if (fread(obs, sizeof(float), (size_t)pp_obs_size, stdin) != (size_t)pp_obs_size) {
        fprintf(stderr, "harness: stdin ended before observation %ld of %ld\n", n + 1, count);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    if (pp_obs_size > (1 << 16) || pp_action_size > (1 << 10)) {
        fprintf(stderr, "harness: observation or action larger than its buffers\n");
        return 2;
    }
    if (argc > 2 && strcmp(argv[1], "time") == 0) {
        long calls = atol(argv[2]);
        struct timespec start, end;
        if (!read_observation(0, 1)) return 3;
        for (long n = 0; n < calls / 10 + 1; ++n) pp_act(obs, action);
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (long n = 0; n < calls; ++n) {
            pp_act(obs, action);
            __asm__ volatile("" : : "r"(action) : "memory");  /* each call's result is used */
        }
        clock_gettime(CLOCK_MONOTONIC, &end);
        double ns = (double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec);
        printf("%.6f\n", ns / 1000.0 / (double)calls);
        return 0;
    }
    long count = argc > 1 ? atol(argv[1]) : 1;
    for (long n = 0; n < count; ++n) {
        if (!read_observation(n, count)) return 3;
        fwrite(pp_forward(obs), sizeof(float), (size_t)pp_output_size, stdout);
        pp_act(obs, action);
        fwrite(action, sizeof(float), (size_t)pp_action_size, stdout);
    }
    return 0;
}
