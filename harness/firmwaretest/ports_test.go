package firmwaretest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/firmwaretest/fwbuild"
	"github.com/batteryless/harness/harness/testenv"

	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/wire"
)

// The STM32F405 port's memory (firmware/ports/stm32f4/stm32f4.ld): the chip's
// 1 MiB of flash, and the 128 KiB of main SRAM the port assumes (its NVM is
// the top 64 KiB of it).
const (
	stm32Flash  = 1 << 20
	stm32SRAM   = 128 << 10
	stm32NVM    = 64 << 10
	stm32Plan   = 0x08080000
	stm32Input  = 0x080E0000
	stm32NVMAt  = 0x20010000
	inputHeader = 16
)

// stm32Build builds the STM32F405 firmware (`make stm32f4`, fwbuild: once,
// shared by the test binaries) and returns BUILD/stm32f4.
func stm32Build(t *testing.T) string {
	t.Helper()
	return filepath.Join(fwbuild.Build(t, "stm32f4"), "stm32f4")
}

// section is one line of `arm-none-eabi-size -A -d`.
type section struct {
	name       string
	size, addr uint64
}

func sizeSections(t *testing.T, elf string) map[string]section {
	t.Helper()
	out, err := exec.Command("arm-none-eabi-size", "-A", "-d", elf).CombinedOutput()
	if err != nil {
		t.Fatalf("arm-none-eabi-size -A %s: %v\n%s", elf, err, out)
	}
	secs := map[string]section{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasPrefix(f[0], ".") {
			continue
		}
		size, err1 := strconv.ParseUint(f[1], 10, 64)
		addr, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		secs[f[0]] = section{f[0], size, addr}
	}
	return secs
}

var berkeleyRE = regexp.MustCompile(`(?m)^\s*(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+[0-9a-f]+\s+\S+`)

// TestSTM32Build builds the STM32F405 firmware with the bundled model's plan
// image and input linked in, and checks that it fits the chip: text + data
// (flash) within 1 MiB, data + bss (which holds .bss, the stack and the NVM
// region) within the 128 KiB of SRAM the port assumes.
func TestSTM32Build(t *testing.T) {
	dir := stm32Build(t)
	elf := filepath.Join(dir, "firmware.elf")
	out, err := exec.Command("arm-none-eabi-size", elf).CombinedOutput()
	if err != nil {
		t.Fatalf("arm-none-eabi-size: %v\n%s", err, out)
	}
	m := berkeleyRE.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("cannot parse arm-none-eabi-size's output:\n%s", out)
	}
	text, _ := strconv.ParseUint(m[1], 10, 64)
	data, _ := strconv.ParseUint(m[2], 10, 64)
	bss, _ := strconv.ParseUint(m[3], 10, 64)
	flash, sram := text+data, data+bss
	secs := sizeSections(t, elf)
	t.Logf("wire loop: flash %d of %d bytes (code and constants %d, plan image %d, input %d); SRAM %d of %d bytes (.data %d, .bss %d, stack %d, persist %d, NVM %d)",
		flash, stm32Flash, secs[".isr_vector"].size+secs[".text"].size+secs[".ARM.exidx"].size, secs[".plan"].size, secs[".input"].size,
		sram, stm32SRAM, secs[".data"].size, secs[".bss"].size, secs[".stack"].size, secs[".ih_persist"].size, secs[".nvm"].size)
	if flash > stm32Flash {
		t.Errorf("text + data = %d bytes: more than the STM32F405's %d bytes of flash", flash, stm32Flash)
	}
	if sram > stm32SRAM {
		t.Errorf("data + bss (.data, .bss, stack, NVM) = %d bytes: more than the %d bytes of SRAM the port assumes", sram, stm32SRAM)
	}

	// The regions are where the linker script (and ports/README.md) say.
	plan, err := os.ReadFile(filepath.Join(dir, "plan.bin"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]section{
		".plan":  {".plan", uint64(len(plan)), stm32Plan},
		".input": {".input", uint64(inputHeader + len(bundled.Input())), stm32Input},
		".nvm":   {".nvm", stm32NVM, stm32NVMAt},
	}
	for name, w := range want {
		if got, ok := secs[name]; !ok || got.size != w.size || got.addr != w.addr {
			t.Errorf("section %s: %+v, want %d bytes at %#x", name, got, w.size, w.addr)
		}
	}
	blob, err := os.ReadFile(filepath.Join(dir, "input.blob"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blob) != inputHeader+len(bundled.Input()) || string(blob[:4]) != "IHIN" || string(blob[inputHeader:]) != string(bundled.Input()) {
		t.Errorf("input.blob (%d bytes) is not the IHIN header and the bundled input", len(blob))
	}

	// The *-noplan.elf leave the plan and input regions to -device loader.
	for _, name := range []string{"firmware-noplan.elf", "firmware-text-noplan.elf"} {
		np := sizeSections(t, filepath.Join(dir, name))
		if _, ok := np[".plan"]; ok {
			t.Errorf("%s has a .plan section", name)
		}
		if _, ok := np[".input"]; ok {
			t.Errorf("%s has an .input section", name)
		}
	}
	// The text-log variant links too, and fits.
	tsecs := sizeSections(t, filepath.Join(dir, "firmware-text.elf"))
	t.Logf("text log (firmware-text.elf): code and constants %d bytes, .bss %d",
		tsecs[".isr_vector"].size+tsecs[".text"].size+tsecs[".ARM.exidx"].size, tsecs[".bss"].size)
}

// TestMSP430Check compiles every MSP430 source (runtime and port) with
// clang --target=msp430 (Debian has no MSP430 linker).
func TestMSP430Check(t *testing.T) {
	testenv.NeedTool(t, "make", "make")
	testenv.NeedTool(t, "clang", "clang")
	dir := t.TempDir()
	out, err := exec.Command("make", "-C", firmwareDir, "BUILD="+dir, "msp430-check").CombinedOutput()
	if err != nil {
		t.Fatalf("make msp430-check: %v\n%s", err, out)
	}
	objs, _ := filepath.Glob(filepath.Join(dir, "msp430-check", "*", "*.o"))
	more, _ := filepath.Glob(filepath.Join(dir, "msp430-check", "*", "*", "*.o"))
	if n := len(objs) + len(more); n < 10 {
		t.Errorf("make msp430-check made %d objects, want every runtime and port source\n%s", n, out)
	}
}

// qemu runs the STM32 firmware on QEMU's netduinoplus2 with USART1 on a pipe
// and a QMP socket; the process is killed when the test ends.
type qemu struct {
	t     *testing.T
	lines chan string
	log   []string
	qmp   *bufio.ReadWriter
}

func startQEMU(t *testing.T, elf string, extra ...string) *qemu {
	t.Helper()
	sock := qmpSocket(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	args := append([]string{"-M", "netduinoplus2", "-nographic", "-monitor", "none", "-serial", "stdio",
		"-icount", "shift=6", "-qmp", "unix:" + sock + ",server=on,wait=off", "-kernel", elf}, extra...)
	cmd := exec.CommandContext(ctx, "qemu-system-arm", args...)
	cmd.WaitDelay = 2 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("qemu-system-arm: %v", err)
	}
	q := &qemu{t: t, lines: make(chan string, 1024)}
	t.Cleanup(func() {
		cancel() // kills QEMU
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("UART:\n%s\nqemu stderr:\n%s", strings.Join(q.log, "\n"), stderr.String())
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			q.lines <- strings.TrimRight(sc.Text(), "\r")
		}
		close(q.lines)
	}()
	q.qmp = dialQMP(t, sock, func() string { return stderr.String() })
	q.command("qmp_capabilities") // after the greeting, which command skips
	return q
}

// qmpSocket returns a path for a QMP unix socket (short: at most 107 bytes),
// removed when the test ends.
func qmpSocket(t *testing.T) string {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "ihqmp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	return filepath.Join(sockDir, "qmp")
}

// dialQMP connects to QEMU's QMP socket (closed when the test ends).
func dialQMP(t *testing.T, sock string, diag func() string) *bufio.ReadWriter {
	t.Helper()
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("QMP socket: %v\n%s", err, diag())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { conn.Close() })
	return bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn))
}

// command sends a QMP command and waits for its return.
func (q *qemu) command(name string) {
	q.t.Helper()
	fmt.Fprintf(q.qmp, `{"execute": %q}`+"\n", name)
	if err := q.qmp.Flush(); err != nil {
		q.t.Fatalf("QMP %s: %v", name, err)
	}
	for {
		line, err := q.qmp.ReadString('\n')
		if err != nil {
			q.t.Fatalf("QMP %s: %v", name, err)
		}
		var msg map[string]json.RawMessage
		if json.Unmarshal([]byte(line), &msg) != nil {
			continue
		}
		if e, ok := msg["error"]; ok {
			q.t.Fatalf("QMP %s: %s", name, e)
		}
		if _, ok := msg["return"]; ok {
			return
		}
	}
}

// next returns the next UART line that holds prefix, from there on; every
// line read is kept in the log. A fault, an error line or the time limit fails the test.
func (q *qemu) next(prefix string, within time.Duration) string {
	q.t.Helper()
	timeout := time.After(within)
	for {
		select {
		case line, ok := <-q.lines:
			if !ok {
				q.t.Fatalf("QEMU exited while waiting for %q", prefix)
			}
			q.log = append(q.log, line)
			if strings.Contains(line, "ih fault") || strings.Contains(line, "ih error") {
				q.t.Fatalf("firmware: %s (waiting for %q)", line, prefix)
			}
			// A reset can cut a line: the next one then follows on the same line.
			if i := strings.Index(line, prefix); i >= 0 {
				return line[i:]
			}
		case <-timeout:
			q.t.Fatalf("no %q on the UART within %v", prefix, within)
		}
	}
}

var (
	bootRE   = regexp.MustCompile(`^ih boot plan [0-9a-f]{8} tasks (\d+) progress (\d+|-)$`)
	resultRE = regexp.MustCompile(`^ih result ([0-9a-f]+) cycles \d+$`)
	taskRE   = regexp.MustCompile(`^ih task (\d+) cycles \d+$`)
)

func parseBoot(t *testing.T, line string) (tasks, progress int) {
	t.Helper()
	m := bootRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("boot line %q", line)
	}
	tasks, _ = strconv.Atoi(m[1])
	progress = -1
	if m[2] != "-" {
		progress, _ = strconv.Atoi(m[2])
	}
	return tasks, progress
}

func checkResult(t *testing.T, line, want string) {
	t.Helper()
	m := resultRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("result line %q", line)
	}
	if m[1] != want {
		t.Errorf("QEMU's output differs from the reference executor\n got %s\nwant %s", m[1], want)
	}
}

// TestSTM32QEMU boots the STM32 firmware's text-log variant
// (firmware-text.elf) on QEMU's netduinoplus2 (a smoke test, skipped
// without qemu-system-arm): the bundled input's inference must
// give the reference executor's output; after QMP system_reset the NVM
// region (SRAM, which a reset keeps) still says the inference is done and a
// new one starts; a reset in the middle of that one resumes at the progress
// word and again gives the reference output.
func TestSTM32QEMU(t *testing.T) {
	testenv.NeedTool(t, "qemu-system-arm", "qemu-system-arm")
	dir := stm32Build(t)
	m := bundledModel(t)
	ref, err := refexec.New(m).Run(bundled.Input())
	if err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(ref)

	q := startQEMU(t, filepath.Join(dir, "firmware-text.elf"))
	tasks, _ := parseBoot(t, q.next("ih boot", 30*time.Second))
	q.next("ih load", 10*time.Second)
	checkResult(t, q.next("ih result", time.Minute), want)

	// A reset keeps SRAM: the NVM region says the inference is done.
	q.command("system_reset")
	if _, p := parseBoot(t, q.next("ih boot", 30*time.Second)); p != tasks {
		t.Fatalf("after system_reset the progress word is %d, want %d (the NVM region did not survive the reset)", p, tasks)
	}
	q.next("ih load", 10*time.Second)
	q.next("ih commit 1", time.Minute)
	q.command("system_reset") // in the middle of the inference
	_, p := parseBoot(t, q.next("ih boot", 30*time.Second))
	switch {
	case p >= 1 && p < tasks:
		line := q.next("ih ", 30*time.Second)
		if tm := taskRE.FindStringSubmatch(line); tm == nil || tm[1] != strconv.Itoa(p) {
			t.Errorf("after a reset at progress %d the next line is %q, want task %d", p, line, p)
		}
		t.Logf("reset at progress %d of %d: resumed", p, tasks)
	case p == tasks:
		t.Logf("the reset came after the inference had finished: resuming is not exercised")
	default:
		t.Fatalf("after a reset in the middle of the inference the progress word is %d", p)
	}
	checkResult(t, q.next("ih result", time.Minute), want)

	// The same firmware without the plan and input linked in, both put in
	// flash by -device loader (how the QEMU board deploys other plans).
	if t.Failed() {
		return
	}
	q2 := startQEMU(t, filepath.Join(dir, "firmware-text-noplan.elf"),
		"-device", fmt.Sprintf("loader,file=%s,addr=%#x", filepath.Join(dir, "plan.bin"), stm32Plan),
		"-device", fmt.Sprintf("loader,file=%s,addr=%#x", filepath.Join(dir, "input.blob"), stm32Input))
	parseBoot(t, q2.next("ih boot", 30*time.Second))
	checkResult(t, q2.next("ih result", time.Minute), want)
}

var ptyRE = regexp.MustCompile(`char device redirected to (/dev/pts/\d+) \(label serial0\)`)

// startQEMUPty runs the STM32 firmware on QEMU's netduinoplus2 with USART1
// on a pseudo-terminal and returns its path, and a QEMU whose QMP command
// works (its UART fields are unused); QEMU is killed when the test ends.
func startQEMUPty(t *testing.T, elf string) (string, *qemu) {
	t.Helper()
	sock := qmpSocket(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cmd := exec.CommandContext(ctx, "qemu-system-arm", "-M", "netduinoplus2", "-nographic",
		"-kernel", elf, "-serial", "pty", "-monitor", "none", "-qmp", "unix:"+sock+",server=on,wait=off")
	cmd.WaitDelay = 2 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // QEMU prints the pty's path on stderr or stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("qemu-system-arm: %v", err)
	}
	var mu sync.Mutex
	var out strings.Builder
	t.Cleanup(func() {
		cancel() // kills QEMU
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("qemu output:\n%s", out.String())
			mu.Unlock()
		}
	})
	path := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := ptyRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case path <- m[1]:
				default:
				}
			}
		}
	}()
	var p string
	select {
	case p = <-path:
	case <-time.After(20 * time.Second):
		t.Fatal("QEMU did not say which pty holds serial0 within 20s")
	}
	q := &qemu{t: t}
	q.qmp = dialQMP(t, sock, func() string { mu.Lock(); defer mu.Unlock(); return out.String() })
	q.command("qmp_capabilities")
	return p, q
}

// TestSTM32QEMUWire runs the STM32 firmware (the wire protocol's main loop,
// the default build) on QEMU's netduinoplus2 with USART1 on a pty, and
// drives it with harness/link: HELLO, SET_INPUT (the bundled input), START,
// the RESULT event, READ_OUTPUT; the output must be the reference
// executor's. DEPLOY must be refused (no writable image area on the STM32).
// After QMP system_reset the boot count (.ih_persist) and the NVM survive:
// BOOT says boot 2 with a valid NVM, and inference 2 gives the same output.
func TestSTM32QEMUWire(t *testing.T) {
	testenv.NeedTool(t, "qemu-system-arm", "qemu-system-arm")
	dir := stm32Build(t)
	m := bundledModel(t)
	input := bundled.Input()
	want, err := refexec.New(m).Run(input)
	if err != nil {
		t.Fatal(err)
	}

	path, q := startQEMUPty(t, filepath.Join(dir, "firmware.elf"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := link.Open(ctx, link.Config{Path: path})
	if err != nil {
		t.Fatalf("link.Open %s: %v", path, err)
	}
	t.Cleanup(func() { l.Close() })

	id, err := l.Hello(ctx)
	if err != nil {
		t.Fatalf("Hello: %v", err)
	}
	t.Logf("IDENTITY: %+v", *id)
	if id.Name != "stm32f405" {
		t.Errorf("IDENTITY name %q, want stm32f405", id.Name)
	}
	if id.Flags&wire.IdentityImageValid == 0 {
		t.Errorf("IDENTITY flags %#x: the image linked into flash is not valid", id.Flags)
	}
	if id.NVMBytes != stm32NVM {
		t.Errorf("IDENTITY NVM %d bytes, want %d", id.NVMBytes, stm32NVM)
	}

	// DEPLOY: the guest cannot write flash, so the board refuses it.
	var ce *link.CommandError
	if err := l.Deploy(ctx, []byte{1, 2, 3, 4}); err == nil {
		t.Error("Deploy succeeded on the STM32, which has no writable image area")
	} else if !errors.As(err, &ce) || ce.Status != wire.StatusFailed || ce.Detail != 1 {
		t.Errorf("Deploy: %v, want ACK FAILED detail 1", err)
	}

	if err := l.SetInput(ctx, input); err != nil {
		t.Fatalf("SetInput: %v", err)
	}
	for drained := false; !drained; { // events before START are not the inference's
		select {
		case <-l.Events():
		default:
			drained = true
		}
	}
	infer := func(n uint32) {
		t.Helper()
		if err := l.Start(ctx, n); err != nil {
			t.Fatalf("Start %d: %v", n, err)
		}
		var res *wire.Result
		tasks := 0
		for res == nil {
			select {
			case ev := <-l.Events():
				if ev.Kind != link.BoardEvent {
					continue
				}
				switch e := ev.Msg.(type) {
				case *wire.TaskDone:
					tasks++
				case *wire.Result:
					res = e
				}
			case <-ctx.Done():
				t.Fatalf("inference %d: no RESULT within the time limit (%d TASK_DONE)", n, tasks)
			}
		}
		if res.Inference != n || res.Length != uint32(len(want)) || res.CRC != crc32.ChecksumIEEE(want) {
			t.Errorf("RESULT %+v, want inference %d length %d crc %#08x", *res, n, len(want), crc32.ChecksumIEEE(want))
		}
		out, err := l.ReadOutput(ctx, 0, len(want))
		if err != nil {
			t.Fatalf("ReadOutput: %v", err)
		}
		if !bytes.Equal(out, want) {
			t.Errorf("inference %d: QEMU's output over the link differs from the reference executor\n got %x\nwant %x", n, out, want)
		} else {
			t.Logf("inference %d: %d tasks; output %x matches the reference executor", n, tasks, out)
		}
	}
	infer(1)

	// A reset keeps .ih_persist and the NVM region (SRAM under QEMU).
	q.command("system_reset")
	var boot *wire.Boot
	for boot == nil {
		select {
		case ev := <-l.Events():
			if b, ok := ev.Msg.(*wire.Boot); ok && ev.Kind == link.BoardEvent {
				boot = b
			}
		case <-ctx.Done():
			t.Fatal("no BOOT after system_reset")
		}
	}
	t.Logf("BOOT after system_reset: %+v", *boot)
	if boot.Boots != 2 {
		t.Errorf("BOOT after system_reset: boot %d, want 2 (.ih_persist did not survive the reset)", boot.Boots)
	}
	if boot.Flags&wire.BootNVMValid == 0 || boot.Flags&wire.BootImageValid == 0 {
		t.Errorf("BOOT after system_reset: flags %#x, want NVM and image valid", boot.Flags)
	}
	if err := l.SetInput(ctx, input); err != nil {
		t.Fatalf("SetInput after the reset: %v", err)
	}
	infer(2)
}
