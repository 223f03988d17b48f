/*
 * runplan - runs one inference of a plan image on the host port, with
 * brown-outs injected, and prints the output tensor.
 *
 *   runplan IMAGE INPUT [--brownouts-at-tasks] [--random-brownouts N --seed S] [--droop K]
 *                       [--supply FILE] [--nvm-out FILE]
 *
 * It loads the image and the raw input tensor, writes the input into NVM and
 * resets the progress word (as the host does over the wire), then boots the
 * runtime and runs until the progress word says the inference is done.
 *
 *   --brownouts-at-tasks   a brown-out after every task, the first time the
 *                          task completes (each boundary once, so a plan that
 *                          commits rarely still progresses)
 *   --brownouts-in-tasks   a brown-out inside every task, the first time it
 *                          runs: before the middle one of the NVM words it
 *                          writes (its output, partial sums, commits)
 *   --random-brownouts N   N brown-outs at seeded random NVM words of the run:
 *   --seed S               the power fails before that word is written, in the
 *                          middle of an output write, a partial-sum write or a
 *                          commit. The points are drawn over the words a clean
 *                          run writes (counted in a dry run first, on a
 *                          separate NVM).
 *   --droop K              before every K-th task the supply reads 1 mV (an
 *                          empty capacitor) twice (the run-time rule then
 *                          commits early and sleeps; just-in-time checkpoints
 *                          snapshot and sleep); otherwise 3.6 V.
 *   --supply FILE          the supply readings the run-time rule gets, per
 *                          task: lines "TASK MV [MV...]" give the readings
 *                          of task TASK in order (the k-th reading taken
 *                          before that task, counted over the run), a line
 *                          "* MV" the reading of any other (default 3600);
 *                          '#' starts a comment. Each early commit and sleep
 *                          is printed to stderr as "rule TASK early-commit"
 *                          or "rule TASK sleep", each just-in-time snapshot
 *                          (and its sleep) as "jit TASK snapshot CHUNKS",
 *                          in order.
 *   --nvm-out FILE         writes the final NVM image to FILE (tests compare
 *                          it with the simulated board's).
 *   --nvm-in FILE          starts from the NVM image in FILE (an --nvm-out; as
 *                          much of it as the plan's NVM holds) instead of an
 *                          erased NVM: a board that booted this or another
 *                          image before.
 *
 * A brown-out loses SRAM (the runtime's state and buffer are overwritten with
 * a pattern) and restarts at boot; NVM keeps every word written before it.
 * stdout: the output tensor in hex, one line. stderr: statistics.
 * Exit status: 0 done, 1 usage or I/O error, 2 image or input rejected,
 * 3 no progress (livelock) or a runtime error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "port.h"
#include "port_host.h"
#include "runtime.h"

static jmp_buf brownout;

/* State of the boot loop: static, so that it survives the longjmp. */
static uint32_t n_tasks;
static uint8_t *started, *injected, *cut_in;
static uint32_t *task_words; /* NVM words each task writes in a clean run */
static uint64_t runs, distinct, brownouts, boots, in_task;
static int at_tasks, in_tasks;
static uint32_t droop_every, droop_pending;

static uint16_t droop_supply(void)
{
    if (droop_pending > 0) {
        droop_pending--;
        return 1; /* an empty capacitor (0 would mean "cannot measure") */
    }
    return 3600;
}

/* --supply: readings (task, mV) in file order, a default, and per task the
 * readings taken so far. */
static struct reading {
    uint32_t task;
    uint16_t mv;
} *readings;
static uint32_t n_readings, cap_readings, *taken;
static uint16_t supply_default = 3600;

static uint16_t file_supply(void)
{
    uint32_t t = ih_rt_next(), k, i;
    if (t >= n_tasks) {
        return supply_default;
    }
    k = taken[t]++;
    for (i = 0; i < n_readings; i++) {
        if (readings[i].task == t && k-- == 0) {
            return readings[i].mv;
        }
    }
    return supply_default;
}

/* --supply on a jit plan: a sleep follows a snapshot, whose header says
 * which task and how many of its chunks. */
static void jit_sleep_event(void)
{
    const ih_image *img = ih_rt_image();
    const uint8_t *a;
    if (!img || img->jit_at == 0) {
        return;
    }
    a = port_nvm() + img->jit_snap_off;
    fprintf(stderr, "jit %lu snapshot %lu\n", (unsigned long)(a[4] | a[5] << 8 | (uint32_t)a[6] << 16 | (uint32_t)a[7] << 24),
            (unsigned long)(a[8] | a[9] << 8 | (uint32_t)a[10] << 16 | (uint32_t)a[11] << 24));
}

static int add_reading(uint32_t task, unsigned long mv)
{
    if (n_readings == cap_readings) {
        uint32_t cap = cap_readings ? 2 * cap_readings : 64;
        struct reading *r = realloc(readings, cap * sizeof *r);
        if (!r) {
            return -1;
        }
        readings = r;
        cap_readings = cap;
    }
    readings[n_readings].task = task;
    readings[n_readings].mv = (uint16_t)mv;
    n_readings++;
    return 0;
}

/* Reads --supply's file; on a bad line prints FILE:LINE and the reason. */
static int read_supply(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    unsigned long lineno = 0;
    if (!f) {
        fprintf(stderr, "runplan: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end, *hash = strchr(line, '#');
        unsigned long task = 0, mv;
        int any = 0, star = 0;
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            fprintf(stderr, "runplan: %s:%lu: line longer than %u bytes\n", path, lineno, (unsigned)sizeof line - 2);
            fclose(f);
            return -1;
        }
        if (hash) {
            *hash = 0;
        }
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p == '\n' || *p == '\r' || *p == 0) {
            continue;
        }
        if (*p == '*') {
            star = 1;
            p++;
        } else {
            errno = 0;
            task = strtoul(p, &end, 10);
            if (end == p || errno != 0 || task >= 0xFFFFFFFFul) {
                fprintf(stderr, "runplan: %s:%lu: want a task index or '*' first\n", path, lineno);
                fclose(f);
                return -1;
            }
            p = end;
        }
        for (;;) {
            while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
                p++;
            }
            if (*p == 0) {
                break;
            }
            errno = 0;
            mv = strtoul(p, &end, 10);
            if (end == p || errno != 0 || mv > 65535ul || *p == '-') {
                fprintf(stderr, "runplan: %s:%lu: a reading is a voltage in mV from 0 to 65535\n", path, lineno);
                fclose(f);
                return -1;
            }
            p = end;
            any = 1;
            if (star) {
                supply_default = (uint16_t)mv;
            } else if (add_reading((uint32_t)task, mv) != 0) {
                fprintf(stderr, "runplan: out of memory for %s\n", path);
                fclose(f);
                return -1;
            }
        }
        if (!any) {
            fprintf(stderr, "runplan: %s:%lu: no reading after the task\n", path, lineno);
            fclose(f);
            return -1;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "runplan: %s: read error\n", path);
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static uint8_t *read_file(const char *path, uint32_t *bytes)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (!f) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 || n > 0x7FFFFFFFL) {
        fclose(f);
        return NULL;
    }
    buf = malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *bytes = (uint32_t)n;
    return buf;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* n distinct points in [1, total), sorted (fewer if total is small). */
static uint32_t draw_points(uint64_t *pts, uint32_t n, uint64_t total, uint64_t seed)
{
    uint64_t s = seed;
    uint32_t k = 0, tries = 0;
    if (total < 2) {
        return 0;
    }
    if (n > total - 1) {
        n = (uint32_t)(total - 1);
    }
    while (k < n && tries < 100u * n + 1000u) {
        uint64_t p = 1 + splitmix64(&s) % (total - 1);
        uint32_t i;
        int dup = 0;
        tries++;
        for (i = 0; i < k; i++) {
            if (pts[i] == p) {
                dup = 1;
                break;
            }
        }
        if (!dup) {
            pts[k++] = p;
        }
    }
    qsort(pts, k, sizeof pts[0], cmp_u64);
    return k;
}

static void usage(void)
{
    fprintf(stderr, "usage: runplan IMAGE INPUT [--brownouts-at-tasks] [--brownouts-in-tasks] [--random-brownouts N --seed S] [--droop K] [--supply FILE] [--nvm-in FILE] [--nvm-out FILE]\n");
    exit(1);
}

/* The NVM an --nvm-in gives (NULL: an erased one). */
static uint8_t *nvm_in;
static uint32_t nvm_in_bytes;

static int setup_nvm(const uint8_t *img, uint32_t img_bytes)
{
    /* The NVM the plan asks for (the runtime checks the header; a nonsense
     * size gets a minimal NVM, which the runtime then refuses). */
    uint32_t nvm = IH_NVM_HEADER_BYTES;
    unsigned word = 4;
    if (img_bytes >= 32) {
        uint32_t want = (uint32_t)img[24] | ((uint32_t)img[25] << 8) | ((uint32_t)img[26] << 16) | ((uint32_t)img[27] << 24);
        if (want >= IH_NVM_HEADER_BYTES && want <= (64u << 20)) {
            nvm = want;
        }
        word = img[22] == 2 ? 2 : 4;
    }
    if (host_nvm_setup(nvm, word) != 0) {
        return -1;
    }
    if (nvm_in) {
        /* The saved bytes as they are, not written word by word: they are
         * the NVM's state before the run, not part of it. */
        memcpy(port_nvm(), nvm_in, nvm_in_bytes < nvm ? nvm_in_bytes : nvm);
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* static: main's state must survive the longjmp to the boot loop */
    static const char *image_path, *input_path, *nvm_path, *supply_path, *nvm_in_path;
    static uint8_t *img, *input;
    static uint32_t img_bytes, input_bytes, out_bytes, i;
    static uint32_t n_random, n_points;
    static uint64_t seed = 1, *points;
    static const uint8_t *out;
    static const ih_rt_stats *st;
    static int a, r;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--brownouts-at-tasks") == 0) {
            at_tasks = 1;
        } else if (strcmp(argv[a], "--brownouts-in-tasks") == 0) {
            in_tasks = 1;
        } else if (strcmp(argv[a], "--random-brownouts") == 0 && a + 1 < argc) {
            n_random = (uint32_t)strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--seed") == 0 && a + 1 < argc) {
            seed = strtoull(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--nvm-out") == 0 && a + 1 < argc) {
            nvm_path = argv[++a];
        } else if (strcmp(argv[a], "--nvm-in") == 0 && a + 1 < argc) {
            nvm_in_path = argv[++a];
        } else if (strcmp(argv[a], "--droop") == 0 && a + 1 < argc) {
            droop_every = (uint32_t)strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--supply") == 0 && a + 1 < argc) {
            supply_path = argv[++a];
        } else if (argv[a][0] == '-') {
            usage();
        } else if (!image_path) {
            image_path = argv[a];
        } else if (!input_path) {
            input_path = argv[a];
        } else {
            usage();
        }
    }
    if (!image_path || !input_path || (supply_path && droop_every > 0)) {
        usage();
    }
    if (supply_path && read_supply(supply_path) != 0) {
        return 1;
    }
    if (!(img = read_file(image_path, &img_bytes))) {
        fprintf(stderr, "runplan: %s: %s\n", image_path, strerror(errno ? errno : EIO));
        return 1;
    }
    if (!(input = read_file(input_path, &input_bytes))) {
        fprintf(stderr, "runplan: %s: %s\n", input_path, strerror(errno ? errno : EIO));
        return 1;
    }
    if (nvm_in_path && !(nvm_in = read_file(nvm_in_path, &nvm_in_bytes))) {
        fprintf(stderr, "runplan: %s: %s\n", nvm_in_path, strerror(errno ? errno : EIO));
        return 1;
    }
    host_image_set(img, img_bytes);
    if (setup_nvm(img, img_bytes) != 0) {
        fprintf(stderr, "runplan: out of memory for the NVM\n");
        return 1;
    }
    if ((r = ih_rt_boot(NULL)) != IH_OK) {
        fprintf(stderr, "runplan: %s: image rejected: %s (%d)\n", image_path, ih_strerror(r), r);
        return 2;
    }
    if (input_bytes != ih_rt_input_bytes()) {
        fprintf(stderr, "runplan: %s: input of %lu bytes, the plan's input tensor has %lu\n", input_path,
                (unsigned long)input_bytes, (unsigned long)ih_rt_input_bytes());
        return 2;
    }
    n_tasks = ih_rt_tasks();

    task_words = calloc(n_tasks, sizeof *task_words);
    taken = calloc(n_tasks, sizeof *taken);
    if (!task_words || !taken) {
        return 1;
    }
    if (n_random > 0 || in_tasks) {
        /* A dry run counts the words a clean inference writes, per task. */
        uint64_t total;
        if (ih_rt_load_input(input, input_bytes) != IH_OK) {
            return 3;
        }
        host_cut_reset();
        for (;;) {
            uint32_t t = ih_rt_next();
            uint64_t before = host_words_written();
            if ((r = ih_rt_step()) != IH_RT_RAN) {
                break;
            }
            task_words[t] = (uint32_t)(host_words_written() - before);
        }
        if (r != IH_RT_DONE) {
            fprintf(stderr, "runplan: dry run: %s (%d)\n", r < 0 ? ih_strerror(r) : "not done", r);
            return 3;
        }
        total = host_words_written();
        points = malloc(sizeof *points * (n_random ? n_random : 1));
        if (!points) {
            return 1;
        }
        n_points = draw_points(points, n_random, total, seed);
        setup_nvm(img, img_bytes);
        ih_rt_poison();
        if (ih_rt_boot(NULL) != IH_OK) {
            return 3;
        }
    }
    if (droop_every > 0) {
        host_supply_set(3600, droop_supply);
    }
    if (supply_path) {
        host_supply_set(3600, file_supply);
        host_sleep_hook(jit_sleep_event);
    }
    ih_rt_reset_stats();
    if ((r = ih_rt_load_input(input, input_bytes)) != IH_OK) {
        fprintf(stderr, "runplan: loading the input: %s (%d)\n", ih_strerror(r), r);
        return 2;
    }
    started = calloc(n_tasks, 1);
    injected = calloc(n_tasks, 1);
    cut_in = calloc(n_tasks, 1);
    if (!started || !injected || !cut_in) {
        return 1;
    }
    host_cut_reset();
    host_cut_arm(&brownout, points, n_points);

    /* The boot loop. A cut NVM write longjmps here. */
    switch (setjmp(brownout)) {
    case 0:
        break;
    case 2:
        in_task++;
        /* fall through */
    default:
        brownouts++;
        ih_rt_poison();
        break;
    }
    for (;;) {
        if (++boots > 4ull * n_tasks + 4ull * n_random + 100u) {
            fprintf(stderr, "runplan: no progress after %llu boots (progress word %lu of %lu)\n",
                    (unsigned long long)boots, (unsigned long)ih_rt_progress(), (unsigned long)n_tasks);
            return 3;
        }
        if ((r = ih_rt_boot(NULL)) != IH_OK) {
            fprintf(stderr, "runplan: boot: %s (%d)\n", ih_strerror(r), r);
            return 3;
        }
        for (;;) {
            uint32_t t = ih_rt_next();
            uint32_t early = ih_rt_get_stats()->early_commits, slept = host_sleeps();
            int brown = 0;
            if (droop_every > 0 && runs % droop_every == droop_every - 1) {
                droop_pending = 2;
            }
            if (t < n_tasks) {
                runs++;
                if (!started[t]) {
                    started[t] = 1;
                    distinct++;
                }
                if (in_tasks && !cut_in[t]) {
                    cut_in[t] = 1;
                    host_cut_once(host_words_written() + task_words[t] / 2);
                }
            }
            r = ih_rt_step();
            host_cut_once(0);
            droop_pending = 0;
            if (supply_path && t < n_tasks) {
                /* The rule acts before the task: an early commit, then at most one sleep. */
                if (ih_rt_get_stats()->early_commits != early) {
                    fprintf(stderr, "rule %lu early-commit\n", (unsigned long)t);
                }
                if (host_sleeps() != slept && ih_rt_image()->rule_at != 0) {
                    fprintf(stderr, "rule %lu sleep\n", (unsigned long)t);
                }
            }
            if (r == IH_RT_RAN) {
                if (at_tasks && !injected[t]) {
                    injected[t] = 1;
                    brown = 1;
                }
            } else {
                if (t < n_tasks) {
                    runs--; /* nothing ran */
                }
                break;
            }
            if (brown) {
                brownouts++;
                ih_rt_poison();
                break;
            }
        }
        if (r == IH_RT_DONE) {
            break;
        }
        if (r < 0) {
            fprintf(stderr, "runplan: task %lu: %s (%d)\n", (unsigned long)ih_rt_next(), ih_strerror(r), r);
            return 3;
        }
        if (r == IH_RT_IDLE) {
            fprintf(stderr, "runplan: the runtime is idle before the inference is done (progress word %lu of %lu)\n",
                    (unsigned long)ih_rt_progress(), (unsigned long)n_tasks);
            return 3;
        }
    }
    host_cut_disarm();

    if (nvm_path) {
        FILE *f = fopen(nvm_path, "wb");
        if (!f || fwrite(port_nvm(), 1, port_nvm_bytes(), f) != port_nvm_bytes() || fclose(f) != 0) {
            fprintf(stderr, "runplan: %s: cannot write the NVM image\n", nvm_path);
            return 1;
        }
    }
    out = ih_rt_output(&out_bytes);
    for (i = 0; i < out_bytes; i++) {
        printf("%02x", out[i]);
    }
    printf("\n");
    st = ih_rt_get_stats();
    fprintf(stderr,
            "runplan: tasks %lu, runs %llu, re-executions %llu, brown-outs %llu (%lu random), boots %llu, commits %lu, "
            "early-commits %lu, sleeps %lu, words %llu, in-task brown-outs %llu, snapshots %lu, restores %lu\n",
            (unsigned long)n_tasks, (unsigned long long)runs, (unsigned long long)(runs - distinct),
            (unsigned long long)brownouts, (unsigned long)host_cuts_fired(), (unsigned long long)boots,
            (unsigned long)st->commits, (unsigned long)st->early_commits, (unsigned long)host_sleeps(),
            (unsigned long long)host_words_written(), (unsigned long long)in_task, (unsigned long)st->snapshots,
            (unsigned long)st->restores);
    free(points);
    free(started);
    free(injected);
    free(cut_in);
    free(task_words);
    free(taken);
    free(readings);
    free(img);
    free(input);
    free(nvm_in);
    return 0;
}
