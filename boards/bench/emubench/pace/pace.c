/*
 * pace: a QEMU TCG plugin that keeps the guest's instruction clock to the
 * wall clock. Under -icount shift=N every instruction is 2^N ns of the
 * guest's virtual time; this plugin counts the instructions of every
 * translation block as it runs and, when the guest gets ahead of the wall
 * clock by more than 50 us, sleeps the difference.
 *
 * A guest falls behind in three ways. The host did not run QEMU's vCPU
 * thread (a busy machine), or QEMU translated code (after every reset:
 * QEMU copies the firmware's image into memory again): that time is owed,
 * and the guest catches it up at full speed, as a real chip is never
 * late. Or the thread ran code already translated, slower than real time
 * (polling a device register, which is slow under -icount, while the
 * firmware idles): that time is forgiven, since catching it up would run
 * the board's next task faster than real time, ahead of what its last
 * event told the harness. They are told apart by the thread's CPU time and
 * by whether blocks were translated meanwhile. A debt beyond behind=
 * (default 50 ms) is forgiven too, and the count starts again from now when the
 * epoch word changes (the bench changes it when it powers the board on,
 * wakes it from the rule's sleep, or a list starts its program).
 *
 * QEMU 7.2 ships no plugin header in Debian; the few declarations below
 * are the plugin API's C interface (API version 1).
 *
 * Arguments: ns=N (ns per instruction, default 64), behind=N (ns),
 * epoch=FILE (8 bytes the bench maps and increments).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_info_t;
typedef void (*tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*udata_cb_t)(unsigned int, void *);
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb_t);
extern void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *, udata_cb_t, int, void *);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);

#define EXPORT __attribute__((visibility("default")))

EXPORT int qemu_plugin_version = 1;

static int64_t ns_per_insn = 64;
static int64_t ahead_ns = 50000;
static int64_t behind_ns = 50000000;
static volatile uint64_t *epoch; /* shared with the bench; 0: none */
static uint64_t last_epoch;
static const uint64_t check_insns = 1024;

/* One vCPU (TCG round-robin under -icount): no locking needed. */
static uint64_t insns, next_check, last_insns, translated, last_translated;
static int64_t base_ns, last_wall, last_cpu;
static int marked; /* the interval was started on the vCPU thread */

static int64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* mark starts the next interval the thread's running time is measured on. */
static void mark(void)
{
    last_wall = now_ns();
    last_cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    last_insns = insns;
    last_translated = translated;
    marked = 1;
}

/* rebase starts the count again; the next check starts the interval on
 * the vCPU thread (the plugin is installed from another). */
static void rebase(void)
{
    base_ns = now_ns();
    insns = 0;
    next_check = check_insns;
    marked = 0;
}

static void on_exec(unsigned int vcpu, void *udata)
{
    int64_t ahead;
    (void)vcpu;
    insns += (uintptr_t)udata;
    if (insns < next_check) {
        return;
    }
    next_check = insns + check_insns;
    if (epoch && *epoch != last_epoch) {
        last_epoch = *epoch;
        rebase();
        return;
    }
    if (!marked) {
        mark();
        return;
    }
    {
        /* Forgive the time the thread ran translated code without the
         * guest keeping pace. */
        int64_t wall = now_ns(), cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        int64_t ran = cpu - last_cpu, virt = (int64_t)(insns - last_insns) * ns_per_insn;
        int64_t slow = (ran < wall - last_wall ? ran : wall - last_wall) - virt;
        if (slow > 0 && translated == last_translated) {
            base_ns += slow;
        }
        ahead = (int64_t)insns * ns_per_insn - (wall - base_ns);
    }
    if (ahead > ahead_ns) {
        struct timespec d;
        d.tv_sec = ahead / 1000000000;
        d.tv_nsec = ahead % 1000000000;
        nanosleep(&d, 0);
    } else if (-ahead > behind_ns) {
        rebase();
        return;
    }
    mark();
}

static void on_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    translated++;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, 0, (void *)(uintptr_t)qemu_plugin_tb_n_insns(tb));
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info, int argc, char **argv)
{
    int i;
    (void)info;
    for (i = 0; i < argc; i++) {
        if (strncmp(argv[i], "ns=", 3) == 0) {
            ns_per_insn = atoll(argv[i] + 3);
        } else if (strncmp(argv[i], "behind=", 7) == 0) {
            behind_ns = atoll(argv[i] + 7);
        } else if (strncmp(argv[i], "epoch=", 6) == 0) {
            int fd = open(argv[i] + 6, O_RDONLY);
            void *p;
            if (fd < 0) {
                return -1;
            }
            p = mmap(0, 8, PROT_READ, MAP_SHARED, fd, 0);
            close(fd);
            if (p == MAP_FAILED) {
                return -1;
            }
            epoch = (volatile uint64_t *)p;
            last_epoch = *epoch;
        }
    }
    if (ns_per_insn <= 0 || behind_ns < 0) {
        return -1;
    }
    rebase();
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_trans);
    return 0;
}
