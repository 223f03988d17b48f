package emubench

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Boost is the scheduling priority (nice) the harness asks for on a bench
// run: a busy host then runs it first when it wakes, which keeps its
// edges' timing. Only a user allowed to (root, CAP_SYS_NICE) gets it.
// (QEMU is not boosted: its guest polls its UART flat out while idle, and
// would take a core from everything else.)
const Boost = -10

// Renice sets the nice value of every thread of process pid (0: this
// process) to n, best effort: it reports whether every thread got it.
func Renice(pid, n int) bool {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = filepath.Join("/proc", strconv.Itoa(pid), "task")
	}
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	ok := true
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if syscall.Setpriority(syscall.PRIO_PROCESS, tid, n) != nil {
			ok = false
		}
	}
	return ok
}
