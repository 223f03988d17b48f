// Package fwbuild builds the firmware for tests: `make -C firmware TARGETS`
// into one build folder per checkout, shared by every test binary of a run
// and by later runs (make rebuilds what changed), under a file lock so that
// the packages `go test ./...` runs in parallel do not build over each other.
// A missing tool skips the test with the Debian package to install.
package fwbuild

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/batteryless/harness/harness/testenv"
)

// tools are what each make target needs besides make, with the Debian
// packages that provide them.
var tools = map[string][][2]string{
	"stm32f4":        {{"arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi"}},
	"stm32f4-broken": {{"arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi"}},
	"host":           {{"gcc", "gcc"}},
	"host-san":       {{"gcc", "gcc"}},
	"msp430-check":   {{"clang", "clang"}},
}

var (
	mu    sync.Mutex
	built = map[string]error{} // per target set, in this process
	outs  = map[string][]byte{}
)

// Build makes targets (stm32f4, stm32f4-broken, host, host-san,
// msp430-check) and returns the build folder (BUILD=): the STM32 ELFs are in
// its stm32f4/ subfolder, the host programs in host/. It skips t when make
// or a target's tool is missing, and fails it when make fails.
func Build(t testing.TB, targets ...string) string {
	t.Helper()
	need := [][2]string{{"make", "make"}}
	for _, tg := range targets {
		need = append(need, tools[tg]...)
	}
	for _, tool := range need {
		testenv.NeedTool(t, tool[0], tool[1])
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := buildDir(root)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.Join(sortedCopy(targets), " ")
	mu.Lock()
	defer mu.Unlock()
	if err, ok := built[key]; ok {
		if err != nil {
			t.Fatalf("make %s: %v\n%s", key, err, outs[key])
		}
		return dir
	}
	out, err := makeLocked(root, dir, targets)
	built[key], outs[key] = err, out
	if err != nil {
		t.Fatalf("make %s: %v\n%s", key, err, out)
	}
	return dir
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// makeLocked runs make under an exclusive lock on the build folder.
func makeLocked(root, dir string, targets []string) ([]byte, error) {
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	args := append([]string{"-C", filepath.Join(root, "firmware"), "BUILD=" + dir}, targets...)
	return exec.Command("make", args...).CombinedOutput()
}

// buildDir is the checkout's build folder in the user's cache (a folder per
// checkout: make's timestamps compare sources of one tree only).
func buildDir(root string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	h := sha256.Sum256([]byte(root))
	dir := filepath.Join(base, "batteryless-harness", "firmware-"+hex.EncodeToString(h[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// moduleRoot finds the folder of go.mod above the working directory (a
// test runs in its package's folder).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("fwbuild: no go.mod above %s", dir)
		}
		dir = up
	}
}
