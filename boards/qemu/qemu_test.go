package qemu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/firmwaretest/fwbuild"
	"github.com/batteryless/harness/harness/testenv"
)

const firmwareDir = "../../firmware"

// firmware builds the STM32F405 firmware (make stm32f4, fwbuild: once,
// shared by the test binaries) and returns the path of name in its build
// folder; it skips without qemu-system-arm, make or arm-none-eabi-gcc.
func firmware(t *testing.T, name string) string {
	t.Helper()
	testenv.NeedTool(t, "qemu-system-arm", "qemu-system-arm")
	elf := filepath.Join(fwbuild.Build(t, "stm32f4"), "stm32f4", name)
	if _, err := os.Stat(elf); err != nil {
		t.Fatalf("no %s after make stm32f4: %v", name, err)
	}
	return elf
}

func start(t *testing.T, ctx context.Context, cfg Config) *Machine {
	t.Helper()
	m, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// gone says whether process pid no longer exists (Close reaps it).
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestMissingBinary(t *testing.T) {
	_, err := Start(context.Background(), Config{Binary: "qemu-system-arm-not-here", ELF: "x.elf"})
	if err == nil || !strings.Contains(err.Error(), "Debian package: qemu-system-arm") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Start with a missing binary: %v, want one line naming the Debian package qemu-system-arm", err)
	}
}

func TestParseLoader(t *testing.T) {
	l, err := ParseLoader("/tmp/a@b/plan.bin@0x08080000")
	if err != nil || l != (Loader{"/tmp/a@b/plan.bin", 0x08080000}) || l.String() != "/tmp/a@b/plan.bin@0x8080000" {
		t.Errorf("ParseLoader: %+v %v", l, err)
	}
	for _, bad := range []string{"plan.bin", "@0x10", "plan.bin@x", "plan.bin@0x100000000"} {
		if _, err := ParseLoader(bad); err == nil {
			t.Errorf("ParseLoader(%q) did not fail", bad)
		}
	}
}

func TestScrubOverlapsKept(t *testing.T) {
	elf := firmware(t, "firmware.elf")
	for _, s := range []Scrub{
		{Addr: SRAMAddr, Size: PersistAddr - SRAMAddr + 4}, // into .ih_persist
		{Addr: NVMAddr + NVMSize - 4, Size: 8},             // into the NVM region
		{Addr: PersistAddr},                                // no size
	} {
		m, err := Start(context.Background(), Config{ELF: elf, ICountShift: -1, Scrub: &s})
		if err == nil {
			m.Close()
			t.Errorf("a scrub of %#x+%#x started", s.Addr, s.Size)
		}
	}
}

// TestStartStopCont: the pty exists, query-status follows stop and cont, and
// Close leaves no process and no folder.
func TestStartStopCont(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := start(t, ctx, Config{ELF: firmware(t, "firmware.elf"), ICountShift: -1})
	if fi, err := os.Stat(m.SerialPath()); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("serial path %q: %v", m.SerialPath(), err)
	}
	t.Logf("serial0 on %s, QEMU pid %d", m.SerialPath(), m.PID())
	want := func(running bool) {
		t.Helper()
		s, err := m.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Running != running {
			t.Fatalf("status %+v, want running=%v", s, running)
		}
	}
	want(true)
	t0 := time.Now()
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop took %v", time.Since(t0))
	want(false)
	if err := m.Cont(ctx); err != nil {
		t.Fatal(err)
	}
	want(true)
	if err := m.SystemReset(ctx); err != nil {
		t.Fatal(err)
	}
	want(true)

	pid, dir := m.PID(), m.Dir()
	m.Close()
	m.Close() // twice is fine
	if !gone(pid) {
		t.Errorf("QEMU (pid %d) still exists after Close", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the temporary folder %s is still there: %v", dir, err)
	}
	if m.Err() != nil {
		t.Errorf("Err after Close: %v, want nil", m.Err())
	}
	if err := m.Stop(ctx); err == nil {
		t.Error("Stop after Close did not fail")
	}
}

// waitNVM waits until the firmware has written the NVM region (it is all zero
// at power-up).
func waitNVM(t *testing.T, m *Machine) []byte {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := m.ReadMemory(ctx, NVMAddr, NVMSize)
		if err != nil {
			t.Fatal(err)
		}
		if !allBytes(b, 0) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatal("the firmware did not write the NVM region within 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func allBytes(b []byte, v byte) bool {
	for _, c := range b {
		if c != v {
			return false
		}
	}
	return true
}

// TestResetKeepsNVM runs the text-log firmware, which runs the bundled
// inference in the NVM region at boot; with the guest paused, the region read
// before and after system_reset is the same, and not all zero.
func TestResetKeepsNVM(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := start(t, ctx, Config{ELF: firmware(t, "firmware-text.elf"), ICountShift: -1})
	waitNVM(t, m)
	time.Sleep(300 * time.Millisecond) // let the inference go on
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := m.ReadMemory(ctx, NVMAddr, NVMSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SystemReset(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := m.Status(ctx); err != nil || s.Running {
		t.Fatalf("after system_reset of a paused guest: %+v, %v (want paused)", s, err)
	}
	after, err := m.ReadMemory(ctx, NVMAddr, NVMSize)
	if err != nil {
		t.Fatal(err)
	}
	if allBytes(before, 0) {
		t.Fatal("the NVM region is all zero")
	}
	if !bytes.Equal(before, after) {
		t.Fatal("system_reset changed the NVM region")
	}
	nz := 0
	for _, c := range after {
		if c != 0 {
			nz++
		}
	}
	t.Logf("NVM region kept across system_reset: %d of %d bytes non-zero", nz, len(after))
	if err := m.Cont(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestScrubSRAM: with Config.Scrub, a reset fills volatile SRAM with the
// pattern and keeps the NVM region; the firmware then boots again.
func TestScrubSRAM(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := start(t, ctx, Config{ELF: firmware(t, "firmware-text.elf"), ICountShift: -1,
		Scrub: &Scrub{Addr: SRAMAddr, Pattern: 0xA5}})
	if err := (&Machine{}).ScrubSRAM(ctx); err == nil {
		t.Error("ScrubSRAM without Config.Scrub did not fail")
	}
	waitNVM(t, m)
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	s := m.ScrubRange()
	vol, err := m.ReadMemory(ctx, s.Addr, s.Size)
	if err != nil {
		t.Fatal(err)
	}
	if allBytes(vol, 0xA5) {
		t.Fatal("volatile SRAM is all pattern before the scrub: the firmware did not run")
	}
	if s.Addr != SRAMAddr || s.Addr+s.Size != PersistAddr {
		t.Errorf("default scrub range %#x+%#x, want %#x up to %#x", s.Addr, s.Size, SRAMAddr, PersistAddr)
	}
	before, err := m.ReadMemory(ctx, PersistAddr, NVMAddr+NVMSize-PersistAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ScrubSRAM(ctx); err != nil {
		t.Fatal(err)
	}
	if vol, err = m.ReadMemory(ctx, s.Addr, s.Size); err != nil {
		t.Fatal(err)
	}
	if !allBytes(vol, 0xA5) {
		t.Errorf("volatile SRAM %#x+%#x is not all 0xA5 after ScrubSRAM", s.Addr, s.Size)
	}
	after, err := m.ReadMemory(ctx, PersistAddr, NVMAddr+NVMSize-PersistAddr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("ScrubSRAM changed .ih_persist or the NVM region")
	}
	if err := m.Cont(ctx); err != nil {
		t.Fatal(err)
	}
	// The firmware boots again: its startup code writes .data/.bss/stack.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if vol, err = m.ReadMemory(ctx, s.Addr, s.Size); err != nil {
			t.Fatal(err)
		}
		if !allBytes(vol, 0xA5) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the firmware did not boot after the scrub")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKilledOutside: QEMU killed by someone else is reported by Done and Err.
func TestKilledOutside(t *testing.T) {
	t.Parallel()
	m := start(t, context.Background(), Config{ELF: firmware(t, "firmware.elf"), ICountShift: 6})
	if err := syscall.Kill(m.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed 5 s after QEMU was killed")
	}
	if m.Err() == nil {
		t.Fatal("Err is nil after QEMU was killed from outside")
	}
	t.Logf("Err: %v", m.Err())
	if _, err := m.Status(context.Background()); err == nil {
		t.Error("Status of a dead QEMU did not fail")
	}
}

// TestContextCancel: cancelling Start's context closes the machine: no
// process, no folder.
func TestContextCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := start(t, ctx, Config{ELF: firmware(t, "firmware.elf"), ICountShift: -1})
	pid, dir := m.PID(), m.Dir()
	cancel()
	select {
	case <-m.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed 5 s after the context was cancelled")
	}
	// Close runs in the AfterFunc; calling it here waits for it to finish.
	m.Close()
	if !gone(pid) {
		t.Errorf("QEMU (pid %d) still exists after the context was cancelled", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the temporary folder %s is still there: %v", dir, err)
	}
}

// TestQMPTimeout: a command whose context is already done fails at once.
func TestQMPTimeout(t *testing.T) {
	t.Parallel()
	m := start(t, context.Background(), Config{ELF: firmware(t, "firmware.elf"), ICountShift: -1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Status(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Status with a cancelled context: %v", err)
	}
}

// TestSerial: the pty carries USART1: after a reset the text-log firmware's
// boot line comes out of it.
func TestSerial(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := start(t, ctx, Config{ELF: firmware(t, "firmware-text.elf"), ICountShift: -1})
	f, err := os.OpenFile(m.SerialPath(), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.SystemReset(ctx); err != nil {
		t.Fatal(err)
	}
	f.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte("ih boot plan")) {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("reading %s: %v (got %q)", m.SerialPath(), err, got)
		}
	}
}
