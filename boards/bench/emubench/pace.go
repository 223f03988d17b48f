package emubench

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// paceSource is the QEMU plugin that keeps the guest to the wall clock
// (pace/pace.c: QEMU 7.2's -icount align=on does not hold the guest back:
// measured here, the firmware ran 15 times faster than real time with it).
//
//go:embed pace/pace.c
var paceSource []byte

// pacePlugin returns the plugin's shared object, compiled once per source
// into the user's cache with the system's C compiler.
func pacePlugin() (string, error) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		if cc, err = exec.LookPath("gcc"); err != nil {
			return "", fmt.Errorf("emubench: no C compiler (cc or gcc; Debian package gcc) to build the QEMU plugin that keeps the board to real time")
		}
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	h := sha256.Sum256(paceSource)
	dir := filepath.Join(base, "batteryless-harness")
	so := filepath.Join(dir, "qemu-pace-"+hex.EncodeToString(h[:6])+".so")
	if _, err := os.Stat(so); err == nil {
		return so, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("emubench: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "pace")
	if err != nil {
		return "", fmt.Errorf("emubench: %w", err)
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "pace.c")
	if err := os.WriteFile(src, paceSource, 0o644); err != nil {
		return "", fmt.Errorf("emubench: %w", err)
	}
	out := filepath.Join(tmp, "pace.so")
	if b, err := exec.Command(cc, "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-o", out, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("emubench: building the QEMU pacing plugin: %v: %s", err, b)
	}
	// Renamed into place: processes that build it at once all succeed.
	if err := os.Rename(out, so); err != nil {
		return "", fmt.Errorf("emubench: %w", err)
	}
	return so, nil
}

// epoch is 8 bytes of a file that the pacing plugin maps: the bench
// increments it when the board's time starts again (a power-on, a wake, a list's start).
type epoch struct {
	path string
	mem  []byte
}

func newEpoch(path string) (*epoch, error) {
	if err := os.WriteFile(path, make([]byte, 8), 0o600); err != nil {
		return nil, fmt.Errorf("emubench: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("emubench: %w", err)
	}
	defer f.Close()
	mem, err := syscall.Mmap(int(f.Fd()), 0, 8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("emubench: mapping %s: %w", path, err)
	}
	return &epoch{path: path, mem: mem}, nil
}

func (e *epoch) bump() {
	atomic.AddUint64((*uint64)(unsafe.Pointer(&e.mem[0])), 1)
}

func (e *epoch) close() {
	if e.mem != nil {
		syscall.Munmap(e.mem)
		e.mem = nil
	}
}
