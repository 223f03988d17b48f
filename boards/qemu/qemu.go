// Package qemu owns the QEMU process that emulates the STM32F405 board
// (qemu-system-arm -M netduinoplus2): it starts QEMU with USART1 on a pty and
// a QMP socket, speaks QMP (stop, cont, system_reset, query-status,
// pmemsave), and kills QEMU and removes its temporary folder on every exit
// path (Close, the Start context's cancellation, QEMU dying by itself).
//
// Scrubbing volatile SRAM: QMP (and HMP) in QEMU 7.2 can read guest memory
// (pmemsave) but cannot write it. QEMU re-applies every -device loader blob at
// each system_reset, and a loader blob in RAM is copied again at each reset.
// So Config.Scrub adds a loader of a file filled with a pattern over the
// volatile SRAM range (by default 0x20000000 up to .ih_persist at 0x2000FFE0,
// the 32 bytes below the NVM region that, like NVM, survive a brown-out);
// every SystemReset then is a power failure: volatile SRAM gets the pattern,
// .ih_persist and the NVM region keep their bytes. The blob is also applied
// at QEMU's start, which is harmless: the startup code copies .data and
// zeroes .bss, and the stack is garbage on a real chip too.
// ScrubSRAM is a reset done for that reason. A scrub without a reset is not
// possible this way (the gdbstub's memory write would be the other way, not
// done).
package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The STM32F405 port's memory (firmware/ports/README.md).
const (
	SRAMAddr    = 0x20000000
	PersistAddr = 0x2000FFE0 // .ih_persist: kept across brown-outs
	PersistSize = 32
	NVMAddr     = 0x20010000
	NVMSize     = 64 << 10
	// PlanAddr is where firmware-noplan.elf expects the plan image (a
	// -device loader blob), InputAddr its deployed input (unused over the wire).
	PlanAddr  = 0x08080000
	InputAddr = 0x080E0000
)

// BoardICountShift is the -icount shift of the emulated board: one guest
// instruction advances the virtual clock by 2^6 = 64 ns, so the CPU runs
// 15.6 M instructions per virtual second, near the stm32f405 profile's
// 16 MHz, and the firmware's cycle counter (SysTick on the virtual clock)
// gives the same count for the same work on any host: the calibration and
// the emulated board both use it.
const BoardICountShift = 6

// CounterHz is the rate of the firmware's cycle counter in QEMU's virtual
// time: the STM32 port counts SysTick ticks of the core clock, which the
// netduinoplus2 machine sets to 168 MHz whatever -icount makes of the
// instruction rate (so a tick is not an instruction: at shift 6 one
// instruction is 64 ns, 10.75 ticks).
const CounterHz = 168e6

// DefaultTimeout bounds a QMP command whose context has no deadline.
const DefaultTimeout = 5 * time.Second

// Loader is one -device loader blob: File put at Addr (re-applied at every
// reset).
type Loader struct {
	File string
	Addr uint32
}

func (l Loader) String() string { return fmt.Sprintf("%s@%#x", l.File, l.Addr) }

// ParseLoader parses "file@addr" (addr in Go's integer syntax: 0x08080000).
func ParseLoader(s string) (Loader, error) {
	i := strings.LastIndex(s, "@")
	if i <= 0 {
		return Loader{}, fmt.Errorf("qemu: loader %q: want file@addr", s)
	}
	a, err := strconv.ParseUint(s[i+1:], 0, 32)
	if err != nil {
		return Loader{}, fmt.Errorf("qemu: loader %q: address: %w", s, err)
	}
	return Loader{File: s[:i], Addr: uint32(a)}, nil
}

// Scrub is the volatile SRAM range a reset fills with Pattern (a -device
// loader blob). Size 0 means from Addr up to PersistAddr. It may not overlap
// .ih_persist or the NVM region.
type Scrub struct {
	Addr, Size uint32
	Pattern    byte
}

// Config says how to start QEMU.
type Config struct {
	Binary      string   // default qemu-system-arm
	Machine     string   // default netduinoplus2
	ELF         string   // -kernel
	Loaders     []Loader // -device loader,file=F,addr=A
	ICountShift int      // -icount shift=N,sleep=off; -1: off (0 is shift=0)
	// ICountAlign paces the guest to the host's clock (-icount align=on,
	// with sleep on): a virtual second lasts a wall second.
	ICountAlign bool
	// GDB starts QEMU's gdbstub on a unix socket in Dir (ConnectGDB).
	GDB    bool
	Scrub  *Scrub // nil: SRAM is kept across resets
	Dir    string // for the QMP socket and pmemsave files; default a new os.MkdirTemp
	Stderr io.Writer
	// Args are more arguments for QEMU (e.g. a -plugin), after the others.
	Args []string
}

// Machine is a running QEMU.
type Machine struct {
	cmd     *exec.Cmd
	dir     string
	ownDir  bool
	serial  string
	scrub   *Scrub
	stderr  *tailBuffer
	stopCtx func() bool

	qmpMu  sync.Mutex
	connMu sync.Mutex // guards conn's assignment against Close
	conn   net.Conn
	rd     *bufio.Reader
	seq    int

	done    chan struct{}
	waitErr error
	closing chan struct{}
	once    sync.Once
	memSeq  int
	gdbSock string
}

// Start starts QEMU, connects QMP and finds the serial pty. Cancelling ctx
// later closes the machine.
func Start(ctx context.Context, cfg Config) (_ *Machine, err error) {
	if cfg.Binary == "" {
		cfg.Binary = "qemu-system-arm"
	}
	if cfg.Machine == "" {
		cfg.Machine = "netduinoplus2"
	}
	bin, lerr := exec.LookPath(cfg.Binary)
	if lerr != nil {
		return nil, fmt.Errorf("qemu: %s not found (Debian package: qemu-system-arm)", cfg.Binary)
	}
	if cfg.ELF == "" {
		return nil, errors.New("qemu: Config.ELF is empty")
	}
	if _, serr := os.Stat(cfg.ELF); serr != nil {
		return nil, fmt.Errorf("qemu: firmware: %w", serr)
	}
	m := &Machine{dir: cfg.Dir, done: make(chan struct{}), closing: make(chan struct{}), stderr: &tailBuffer{max: 8 << 10}}
	if m.dir == "" {
		// Short: a unix socket path is at most 107 bytes.
		if m.dir, err = os.MkdirTemp("", "ihqemu"); err != nil {
			return nil, fmt.Errorf("qemu: %w", err)
		}
		m.ownDir = true
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	sock := filepath.Join(m.dir, "qmp.sock")
	args := []string{"-M", cfg.Machine, "-nographic", "-monitor", "none", "-serial", "pty",
		"-kernel", cfg.ELF, "-qmp", "unix:" + sock + ",server=on,wait=off"}
	if cfg.GDB {
		m.gdbSock = filepath.Join(m.dir, "gdb.sock")
		args = append(args, "-gdb", "unix:"+m.gdbSock+",server=on,wait=off")
	}
	for _, l := range cfg.Loaders {
		args = append(args, "-device", fmt.Sprintf("loader,file=%s,addr=%#x", l.File, l.Addr))
	}
	if cfg.Scrub != nil {
		s := *cfg.Scrub
		if s.Size == 0 {
			if s.Addr >= PersistAddr {
				return nil, fmt.Errorf("qemu: scrub at %#x needs a Size", s.Addr)
			}
			s.Size = PersistAddr - s.Addr
		}
		if uint64(s.Addr) < NVMAddr+NVMSize && uint64(s.Addr)+uint64(s.Size) > PersistAddr {
			return nil, fmt.Errorf("qemu: scrub range %#x+%#x overlaps .ih_persist or the NVM region (%#x-%#x)", s.Addr, s.Size, PersistAddr, NVMAddr+NVMSize)
		}
		file := filepath.Join(m.dir, "scrub.bin")
		b := make([]byte, s.Size)
		for i := range b {
			b[i] = s.Pattern
		}
		if err := os.WriteFile(file, b, 0o600); err != nil {
			return nil, fmt.Errorf("qemu: %w", err)
		}
		args = append(args, "-device", fmt.Sprintf("loader,file=%s,addr=%#x", file, s.Addr))
		m.scrub = &s
	}
	if cfg.ICountShift >= 0 {
		if cfg.ICountAlign {
			args = append(args, "-icount", fmt.Sprintf("shift=%d,align=on", cfg.ICountShift))
		} else {
			args = append(args, "-icount", fmt.Sprintf("shift=%d,sleep=off", cfg.ICountShift))
		}
	}
	args = append(args, cfg.Args...)
	m.cmd = exec.Command(bin, args...)
	// If the harness dies without closing it (killed, or a panic on
	// another goroutine), the kernel kills QEMU too.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var w io.Writer = m.stderr
	if cfg.Stderr != nil {
		w = io.MultiWriter(m.stderr, cfg.Stderr)
	}
	m.cmd.Stdout, m.cmd.Stderr = w, w
	m.cmd.WaitDelay = 2 * time.Second
	if err := m.cmd.Start(); err != nil {
		m.cmd = nil
		return nil, fmt.Errorf("qemu: %w", err)
	}
	go func() {
		werr := m.cmd.Wait()
		select {
		case <-m.closing:
		default:
			if werr == nil {
				werr = errors.New("exited")
			}
			m.waitErr = fmt.Errorf("qemu: process %d died: %v: %s", m.cmd.Process.Pid, werr, m.stderr.String())
		}
		close(m.done)
	}()
	m.stopCtx = context.AfterFunc(ctx, func() { m.Close() })

	if err := m.dial(ctx, sock); err != nil {
		return nil, err
	}
	if _, err := m.execute(ctx, "qmp_capabilities", nil); err != nil {
		return nil, err
	}
	var devs []struct {
		Label    string `json:"label"`
		Filename string `json:"filename"`
	}
	if err := m.call(ctx, "query-chardev", nil, &devs); err != nil {
		return nil, err
	}
	for _, d := range devs {
		if d.Label == "serial0" {
			m.serial = strings.TrimPrefix(d.Filename, "pty:")
		}
	}
	if !strings.HasPrefix(m.serial, "/dev/") {
		return nil, fmt.Errorf("qemu: query-chardev has no pty for serial0: %+v", devs)
	}
	return m, nil
}

func (m *Machine) dial(ctx context.Context, sock string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("unix", sock)
		if err == nil {
			m.connMu.Lock()
			defer m.connMu.Unlock()
			select {
			case <-m.closing:
				conn.Close()
				return errors.New("qemu: closed while connecting QMP")
			default:
			}
			m.conn, m.rd = conn, bufio.NewReader(conn)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("qemu: QMP socket: %v: %s", err, m.stderr.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.done:
			return m.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// SerialPath is the pty that holds USART1 (serial0).
func (m *Machine) SerialPath() string { return m.serial }

// PID is QEMU's process id.
func (m *Machine) PID() int { return m.cmd.Process.Pid }

// Dir is the machine's temporary folder.
func (m *Machine) Dir() string { return m.dir }

// Done is closed when QEMU has exited (by Close or by itself).
func (m *Machine) Done() <-chan struct{} { return m.done }

// Err says why QEMU exited by itself: nil while it runs, or after Close.
func (m *Machine) Err() error {
	select {
	case <-m.done:
		return m.waitErr
	default:
		return nil
	}
}

// Close kills QEMU, waits for it and removes the temporary folder (if Start
// made it; in Config.Dir it removes only its socket and scrub file). It is safe to call more than once and concurrently.
func (m *Machine) Close() error {
	m.once.Do(func() {
		close(m.closing)
		if m.stopCtx != nil {
			m.stopCtx()
		}
		m.connMu.Lock()
		if m.conn != nil {
			m.conn.Close()
		}
		m.connMu.Unlock()
		if m.cmd != nil {
			m.cmd.Process.Kill()
			<-m.done
		} else {
			close(m.done)
		}
		if m.ownDir {
			os.RemoveAll(m.dir)
		} else if m.dir != "" {
			// A folder of the caller's: remove only what this package put there.
			os.Remove(filepath.Join(m.dir, "qmp.sock"))
			os.Remove(filepath.Join(m.dir, "scrub.bin"))
		}
	})
	return nil
}

// execute sends one QMP command and returns its "return" value; events are
// skipped.
func (m *Machine) execute(ctx context.Context, name string, args any) (json.RawMessage, error) {
	m.qmpMu.Lock()
	defer m.qmpMu.Unlock()
	if m.conn == nil {
		return nil, errors.New("qemu: QMP not connected")
	}
	select {
	case <-m.closing:
		return nil, errors.New("qemu: machine closed")
	default:
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultTimeout)
	}
	m.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { m.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	m.seq++
	id := m.seq
	req := map[string]any{"execute": name, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := m.conn.Write(append(b, '\n')); err != nil {
		return nil, m.qmpErr(ctx, name, err)
	}
	for {
		line, err := m.rd.ReadBytes('\n')
		if err != nil {
			return nil, m.qmpErr(ctx, name, err)
		}
		var msg struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			ID any `json:"id"`
		}
		if json.Unmarshal(line, &msg) != nil {
			continue
		}
		if msg.Error != nil {
			return nil, fmt.Errorf("qemu: QMP %s: %s: %s", name, msg.Error.Class, msg.Error.Desc)
		}
		if msg.Return != nil {
			return msg.Return, nil
		}
	}
}

func (m *Machine) qmpErr(ctx context.Context, name string, err error) error {
	if ctx.Err() == nil {
		// A socket that fails is most often QEMU dying: the process may
		// not be reaped yet, so give it a moment to say so.
		select {
		case <-m.done:
		case <-m.closing:
		case <-time.After(time.Second):
		}
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	} else if e := m.Err(); e != nil {
		err = e
	}
	return fmt.Errorf("qemu: QMP %s: %w", name, err)
}

func (m *Machine) call(ctx context.Context, name string, args, out any) error {
	ret, err := m.execute(ctx, name, args)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(ret, out); err != nil {
			return fmt.Errorf("qemu: QMP %s: %w", name, err)
		}
	}
	return nil
}

// Stop pauses the guest.
func (m *Machine) Stop(ctx context.Context) error { return m.call(ctx, "stop", nil, nil) }

// Cont resumes the guest.
func (m *Machine) Cont(ctx context.Context) error { return m.call(ctx, "cont", nil, nil) }

// SystemReset resets the guest. SRAM (the NVM region) is kept; the loaders,
// and the scrub blob with Config.Scrub, are re-applied. A paused guest stays
// paused.
func (m *Machine) SystemReset(ctx context.Context) error {
	return m.call(ctx, "system_reset", nil, nil)
}

// Status is QMP query-status.
type Status struct {
	Running bool   `json:"running"`
	Status  string `json:"status"` // "running", "paused", ...
}

// Status asks whether the guest runs.
func (m *Machine) Status(ctx context.Context) (Status, error) {
	var s Status
	err := m.call(ctx, "query-status", nil, &s)
	return s, err
}

// MemSave writes size bytes of guest physical memory at addr to path
// (pmemsave; QEMU writes the file, so path is QEMU's view of the file system).
func (m *Machine) MemSave(ctx context.Context, addr, size uint32, path string) error {
	return m.call(ctx, "pmemsave", map[string]any{"val": addr, "size": size, "filename": path}, nil)
}

// ReadMemory reads size bytes of guest physical memory at addr.
func (m *Machine) ReadMemory(ctx context.Context, addr, size uint32) ([]byte, error) {
	m.qmpMu.Lock()
	m.memSeq++
	path := filepath.Join(m.dir, fmt.Sprintf("mem%d.bin", m.memSeq))
	m.qmpMu.Unlock()
	defer os.Remove(path)
	if err := m.MemSave(ctx, addr, size, path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	if len(b) != int(size) {
		return nil, fmt.Errorf("qemu: pmemsave wrote %d bytes, want %d", len(b), size)
	}
	return b, nil
}

// ScrubSRAM fills the volatile SRAM range of Config.Scrub with its pattern,
// keeping the NVM region: QMP cannot write guest memory, so this is a
// system_reset, which re-applies the scrub blob (see the package comment).
// The guest therefore restarts, as after a power failure. Without
// Config.Scrub it returns an error.
func (m *Machine) ScrubSRAM(ctx context.Context) error {
	if m.scrub == nil {
		return errors.New("qemu: ScrubSRAM needs Config.Scrub (the scrub is a -device loader blob re-applied at reset)")
	}
	return m.SystemReset(ctx)
}

// ScrubRange is the scrubbed range (Size resolved), or nil.
func (m *Machine) ScrubRange() *Scrub { return m.scrub }

// tailBuffer keeps the last max bytes written (QEMU's output, for errors).
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
