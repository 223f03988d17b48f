package qemu

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// GDB is a connection to QEMU's gdbstub (the GDB remote serial protocol on
// a unix socket; Config.GDB). The emulated board uses it to stop the guest at
// an exact instruction, which QMP's stop cannot: a write watchpoint on the
// progress word stops the CPU right after each commit, wherever the host's
// scheduler happens to be. QEMU stops the VM when the stub's client
// connects. All-stop mode: commands are sent only while the guest is
// stopped; Continue starts it and Stopped delivers the next stop reply.
type GDB struct {
	conn net.Conn
	rd   *bufio.Reader
	mu   sync.Mutex // one exchange at a time
	// stops receives each stop reply after Continue (T05..., S02...).
	stops    chan string
	running  bool
	stoppedN atomic.Int64 // when the last stop reply came (UnixNano)
}

// GDBSocket is the gdbstub's socket in the machine's folder (with Config.GDB).
func (m *Machine) GDBSocket() string { return m.gdbSock }

// ConnectGDB connects to the machine's gdbstub (QEMU then stops the VM) and
// returns the client once the stub answers.
func (m *Machine) ConnectGDB(ctx context.Context) (*GDB, error) {
	if m.gdbSock == "" {
		return nil, errors.New("qemu: started without Config.GDB")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", m.gdbSock)
	if err != nil {
		return nil, fmt.Errorf("qemu: gdbstub: %w", err)
	}
	g := &GDB{conn: conn, rd: bufio.NewReader(conn), stops: make(chan string, 4)}
	if r, err := g.exchange("?"); err != nil || (len(r) == 0 || (r[0] != 'T' && r[0] != 'S')) {
		conn.Close()
		return nil, fmt.Errorf("qemu: gdbstub: status %q: %v", r, err)
	}
	// The stop at the connection may be reported besides the answer to
	// "?": drop whatever else comes.
	for {
		if _, err := g.read(time.Now().Add(100 * time.Millisecond)); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			conn.Close()
			return nil, fmt.Errorf("qemu: gdbstub: %w", err)
		}
	}
	return g, nil
}

// Close closes the connection (QEMU detaches and lets the guest run).
func (g *GDB) Close() error { return g.conn.Close() }

func checksum(s string) byte {
	var c byte
	for i := 0; i < len(s); i++ {
		c += s[i]
	}
	return c
}

func (g *GDB) write(pkt string) error {
	g.conn.SetWriteDeadline(time.Now().Add(DefaultTimeout))
	_, err := fmt.Fprintf(g.conn, "$%s#%02x", pkt, checksum(pkt))
	return err
}

// read returns the next packet's payload, skipping acknowledgements.
func (g *GDB) read(deadline time.Time) (string, error) {
	g.conn.SetReadDeadline(deadline)
	for {
		b, err := g.rd.ReadByte()
		if err != nil {
			return "", err
		}
		if b != '$' {
			continue // '+', '-' before no-ack mode took hold
		}
		body, err := g.rd.ReadString('#')
		if err != nil {
			return "", err
		}
		var cs [2]byte
		if _, err := g.rd.Read(cs[:1]); err != nil {
			return "", err
		}
		if _, err := g.rd.Read(cs[1:]); err != nil {
			return "", err
		}
		body = body[:len(body)-1]
		if want, err := strconv.ParseUint(string(cs[:]), 16, 8); err != nil || byte(want) != checksum(body) {
			g.conn.Write([]byte("-"))
			return "", fmt.Errorf("qemu: gdbstub: bad checksum on %q", body)
		}
		// Acknowledged (the stub's no-ack mode needs a qSupported
		// handshake; one byte per packet is cheaper than that). A stop
		// reply may come long after the "c" that set the last write
		// deadline: the ack gets a deadline of its own.
		g.conn.SetWriteDeadline(time.Now().Add(DefaultTimeout))
		if _, err := g.conn.Write([]byte("+")); err != nil {
			return "", err
		}
		return body, nil
	}
}

// exchange sends a packet and returns its reply (the guest must be stopped).
func (g *GDB) exchange(pkt string) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running {
		return "", errors.New("qemu: gdbstub: the guest is running")
	}
	if err := g.write(pkt); err != nil {
		return "", err
	}
	return g.read(time.Now().Add(DefaultTimeout))
}

// WatchWrite inserts a write watchpoint on [addr, addr+n).
func (g *GDB) WatchWrite(addr uint32, n int) error {
	r, err := g.exchange(fmt.Sprintf("Z2,%x,%x", addr, n))
	if err != nil {
		return err
	}
	if r != "OK" {
		return fmt.Errorf("qemu: gdbstub: watchpoint at %#x: %q", addr, r)
	}
	return nil
}

// Break inserts a breakpoint at a Thumb instruction (addr's bit 0 is
// ignored, as in an ELF symbol of a Thumb function).
func (g *GDB) Break(addr uint32) error {
	r, err := g.exchange(fmt.Sprintf("Z0,%x,2", addr&^1))
	if err != nil || r != "OK" {
		return fmt.Errorf("qemu: gdbstub: breakpoint at %#x: %q %v", addr, r, err)
	}
	return nil
}

// Unbreak removes a breakpoint inserted by Break.
func (g *GDB) Unbreak(addr uint32) error {
	r, err := g.exchange(fmt.Sprintf("z0,%x,2", addr&^1))
	if err != nil || r != "OK" {
		return fmt.Errorf("qemu: gdbstub: removing the breakpoint at %#x: %q %v", addr, r, err)
	}
	return nil
}

// ReadRegister reads core register n (0..15: r0..r15) of the stopped guest.
// (QEMU's stub answers 'p' only with a target description, so this reads
// the whole core block with 'g': r0..r15 first, 4 bytes each, little-endian.)
func (g *GDB) ReadRegister(n int) (uint32, error) {
	if n < 0 || n > 15 {
		return 0, fmt.Errorf("qemu: gdbstub: no core register %d", n)
	}
	r, err := g.exchange("g")
	if err != nil {
		return 0, err
	}
	b, err := hex.DecodeString(r)
	if err != nil || len(b) < 4*(n+1) {
		return 0, fmt.Errorf("qemu: gdbstub: registers: %q", r)
	}
	b = b[4*n:]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24, nil
}

// Symbol returns the address of a symbol of an ELF file.
func Symbol(elfFile, name string) (uint32, error) {
	f, err := elf.Open(elfFile)
	if err != nil {
		return 0, fmt.Errorf("qemu: %w", err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return 0, fmt.Errorf("qemu: %s: %w", elfFile, err)
	}
	for _, s := range syms {
		if s.Name == name {
			return uint32(s.Value), nil
		}
	}
	return 0, fmt.Errorf("qemu: %s has no symbol %s", elfFile, name)
}

// StepOverWatch executes the store a write watchpoint on [addr, addr+n)
// stopped before (QEMU reports it with the store not done): it removes the
// watchpoint, steps one instruction and inserts it again.
func (g *GDB) StepOverWatch(addr uint32, n int) error {
	if r, err := g.exchange(fmt.Sprintf("z2,%x,%x", addr, n)); err != nil || r != "OK" {
		return fmt.Errorf("qemu: gdbstub: removing the watchpoint at %#x: %q %v", addr, r, err)
	}
	if r, err := g.exchange("s"); err != nil || len(r) == 0 || (r[0] != 'T' && r[0] != 'S') {
		return fmt.Errorf("qemu: gdbstub: step: %q %v", r, err)
	}
	return g.WatchWrite(addr, n)
}

// StepOverBreak executes the instruction at a breakpoint the guest stopped
// at (continuing would stop there again): it removes the breakpoint, steps
// one instruction and inserts it again.
func (g *GDB) StepOverBreak(addr uint32) error {
	if err := g.Unbreak(addr); err != nil {
		return err
	}
	if r, err := g.exchange("s"); err != nil || len(r) == 0 || (r[0] != 'T' && r[0] != 'S') {
		return fmt.Errorf("qemu: gdbstub: step: %q %v", r, err)
	}
	return g.Break(addr)
}

// ReadMemory reads n bytes of guest memory (the guest must be stopped).
func (g *GDB) ReadMemory(addr uint32, n int) ([]byte, error) {
	r, err := g.exchange(fmt.Sprintf("m%x,%x", addr, n))
	if err != nil {
		return nil, err
	}
	b, err := hex.DecodeString(r)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("qemu: gdbstub: read %#x+%d: %q", addr, n, r)
	}
	return b, nil
}

// WriteMemory writes b into guest memory at addr (the guest must be
// stopped).
func (g *GDB) WriteMemory(addr uint32, b []byte) error {
	r, err := g.exchange(fmt.Sprintf("M%x,%x:%s", addr, len(b), hex.EncodeToString(b)))
	if err != nil {
		return err
	}
	if r != "OK" {
		return fmt.Errorf("qemu: gdbstub: write %#x+%d: %q", addr, len(b), r)
	}
	return nil
}

// Continue lets the guest run; its next stop comes on Stopped.
func (g *GDB) Continue() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running {
		return nil
	}
	if err := g.write("c"); err != nil {
		return err
	}
	g.running = true
	go func() {
		r, err := g.read(time.Time{})
		g.stoppedN.Store(time.Now().UnixNano())
		g.mu.Lock()
		g.running = false
		g.mu.Unlock()
		if err != nil {
			r = "E:" + err.Error()
		}
		g.stops <- r
	}()
	return nil
}

// StoppedAt is when the last stop reply after Continue was read: the
// nearest the host sees of the instant the guest stopped, however late
// the reader of Stopped gets to it.
func (g *GDB) StoppedAt() time.Time { return time.Unix(0, g.stoppedN.Load()) }

// Stopped delivers the stop replies: "T05watch:..." at a watchpoint, or
// "E:..." when the connection failed.
func (g *GDB) Stopped() <-chan string { return g.stops }

// Interrupt asks a running guest to stop; its stop reply comes on Stopped.
func (g *GDB) Interrupt() error {
	g.conn.SetWriteDeadline(time.Now().Add(DefaultTimeout))
	_, err := g.conn.Write([]byte{0x03})
	return err
}
